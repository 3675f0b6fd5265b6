"""Guitar audio → notes, as a stream: aubio pitch and onsets, segmentation, intonation.

Segmentation runs on a decimated stream (~11–12 kHz): cheap per frame, and plenty for
fundamentals up to 1.4 kHz. Intonation is measured per note on the native-rate signal, where
yin's parabolic interpolation is sub-cent accurate (at 11 kHz it reads 1.2 kHz ~12 cents sharp).
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field

import aubio
import numpy as np

from device.analysis.decimator import Decimator, decimation_factor
from device.analysis.notes import Note, Sounding, hz_to_midi_float, midi_to_hz
from device.analysis.octave import settle_register
from device.analysis.scales import Scale
from device.analysis.settings import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, TrackerSettings
from device.errors import AnalysisError

__all__ = ["NoteTracker", "track_notes"]

_NATIVE_HISTORY_S = 4.0
_ATTACK_SKIP_S = 0.02  # the pick's transient is sharp and noisy: keep it out of intonation
_RELEASE_GAP_S = 0.09  # this long without pitch ends a note
_BEFORE_GAP_S = 0.03
_REF_SPREAD = 0.5  # semitones
# The screen's first guess at a new note (see NoteTracker.sounding): an attack (the level this
# far above its minimum over the last few frames) with a new pitch in the short yin window,
# shown at once when that confident, else once the next frame agrees; the same pitch again
# needs a firmer attack. A guess no note follows within a few frames was not a note. Chosen
# on the 312 rendered benchmark takes: against showing each note from its first frame, the
# name is on screen ~12 ms sooner (median), and a wrong name shows less often (0.24 vs 0.31
# per note) and for less time.
_EARLY_RISE_DB = 3.0
_EARLY_REPICK_DB = 6.0
_EARLY_SURE_CONF = 0.85
_EARLY_LEVEL_FRAMES = 4
_EARLY_HOLD_FRAMES = 8


@dataclass(slots=True)
class _Frame:
    t: float  # centre of the pitch window, seconds on the input timeline
    midi: float
    conf: float


@dataclass(slots=True)
class _OpenNote:
    onset_s: float
    frames: list[_Frame] = field(default_factory=list)
    peak_db: float = -200.0
    ref: float | None = None  # reference pitch (MIDI, fractional) once established
    last_voiced_t: float = -1.0
    born: int = -1  # index of the frame that opened it


@dataclass(slots=True)
class _Early:
    """A new pitch after an attack, heard before the onset detector or the legato rule has
    made it a note: for the screen only, never scored."""

    onset_s: float
    frame: int
    midis: list[float]
    sure: bool  # confident enough to show before a second frame agrees


class NoteTracker:
    """Feed mono float samples in any block sizes; get each note once it has ended.

    ``feed`` and ``flush`` together give exactly the notes :func:`track_notes` gives for the
    same samples, whatever the block sizes.
    """

    def __init__(
        self,
        sample_rate: int,
        settings: TrackerSettings | None = None,
        scale: Scale | None = None,
    ) -> None:
        if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
            raise AnalysisError(f"unsupported sample rate {sample_rate} Hz ({MIN_SAMPLE_RATE}–{MAX_SAMPLE_RATE})")
        s = settings or TrackerSettings()
        self.settings = s
        self.scale = scale
        self.sample_rate = sample_rate
        self._decimator = Decimator(decimation_factor(sample_rate))
        self._factor = self._decimator.factor
        self.track_rate = sample_rate / self._factor
        self._win = 512 if self.track_rate < 14000 else 1024
        self._hop = self._win // 4
        track_rate = int(self.track_rate)
        self._pitch = self._yin(self._win, self._hop, track_rate, s.gate_dbfs - 20.0)
        # A second, shorter yin: its lag range stops near the guitar's low E, so beating
        # between strings cannot pull it to a period several octaves down (FluidR3's steel
        # strings do that to the long window, reading a 349 Hz note as 44 Hz).
        self._pitch_short = self._yin(self._win // 2, self._hop, track_rate, s.gate_dbfs - 20.0)
        self._onset = aubio.onset(s.onset_method, s.onset_window, self._hop, track_rate)
        self._onset.set_threshold(s.onset_threshold)
        self._onset.set_minioi_s(s.min_ioi_s)
        self._onset.set_silence(s.gate_dbfs)
        self._native_pitch: dict[int, aubio.pitch] = {}

        self._pending = np.zeros(0, dtype=np.float32)  # decimated samples not yet framed
        self._frames_done = 0
        self._native = np.zeros(int(_NATIVE_HISTORY_S * sample_rate), dtype=np.float32)
        self._native_written = 0  # total native samples ever written
        self._hop_s = self._hop / self.track_rate
        self._delay_s = self._decimator.delay_samples / sample_rate
        self._legato_frames = max(2, math.ceil(s.legato_s / self._hop_s))
        self._release_frames = max(2, math.ceil(_RELEASE_GAP_S / self._hop_s))
        self._min_frames = max(2, math.ceil(s.min_note_s / self._hop_s))

        self._note: _OpenNote | None = None
        self._cand: list[_Frame] = []  # a run of frames at a new pitch (legato candidate)
        self._gate_db = s.gate_dbfs  # read every frame: a property would recompute it
        self._floor_db = self._gate_db - 20.0
        self._gap = 0
        self._released: float | None = None  # pitch of the note that last faded out
        self._flushed = False
        self._early: _Early | None = None
        self._levels: deque[float] = deque(maxlen=_EARLY_LEVEL_FRAMES)

    def _yin(self, win: int, hop: int, rate: int, silence_db: float | None = None) -> aubio.pitch:
        """An aubio pitch object with the settings' method and tolerance, reporting Hz."""
        pitch = aubio.pitch(self.settings.pitch_method, win, hop, rate)
        pitch.set_unit("Hz")
        pitch.set_tolerance(self.settings.pitch_tolerance)
        if silence_db is not None:
            pitch.set_silence(silence_db)
        return pitch

    # -- public ----------------------------------------------------------------------------

    def feed(self, samples: np.ndarray) -> list[Note]:
        """Analyse more samples; return the notes that ended within them."""
        if self._flushed:
            raise AnalysisError("tracker already flushed")
        block = np.asarray(samples, dtype=np.float32).ravel()
        self._remember_native(block)
        dec = self._decimator.process(block)
        if len(self._pending):
            dec = np.concatenate((self._pending, dec))
        out: list[Note] = []
        hop = self._hop
        n_frames = len(dec) // hop
        if n_frames:
            framed = dec[: n_frames * hop].reshape(n_frames, hop)
            levels = 10.0 * np.log10(np.einsum("ij,ij->i", framed, framed) / hop + 1e-20)
            for k in range(n_frames):
                self._frame(framed[k], float(levels[k]), out)
        self._pending = dec[n_frames * hop :].copy()
        return out

    @property
    def sounding(self) -> Sounding | None:
        """The note being played, as soon as an attack brings a confident new pitch.

        The screen wants the note within a blink. The onset detector confirms an attack only
        ~50 ms after it (aubio's peak picking looks ahead), so a new pitch the half-length yin
        window hears right after an attack is shown at once (or, less confident, once the next
        frame agrees), until the note that follows reads the same; a guess no note follows is
        dropped within ~90 ms. The name may change while the pitch settles: the finished
        :class:`Note` is what counts.
        """
        note = self._note
        early = self._early
        if early is not None and (early.sure or len(early.midis) > 1):
            return self._sounding(early.onset_s, early.midis[-4:])
        if note is None or not note.frames:
            return None
        return self._sounding(note.onset_s, [f.midi for f in note.frames[-4:]])

    def _sounding(self, onset_s: float, midis: list[float]) -> Sounding:
        recent = statistics.median(midis)  # of ≤ 4 numbers: numpy's costs ~30× more
        midi = round(float(recent))
        in_scale = None if self.scale is None else self.scale.contains(midi)
        return Sounding(onset_s, midi, round(float(recent - midi) * 100.0, 1), in_scale)

    def flush(self) -> list[Note]:
        """End of stream: push the filter's tail through and close the last note."""
        tail = np.zeros(len(self._decimator.taps) + self._hop * self._factor, dtype=np.float32)
        out = self.feed(tail)
        self._flushed = True
        self._end_current(out)
        return out

    # -- per frame -------------------------------------------------------------------------

    def _time_of(self, dec_index: float) -> float:
        return dec_index * self._factor / self.sample_rate - self._delay_s

    def _frame(self, frame: np.ndarray, level: float, out: list[Note]) -> None:
        s = self.settings
        i = self._frames_done
        self._frames_done += 1
        hz = float(self._pitch(frame)[0])
        conf = float(self._pitch.get_confidence())
        hz_short = float(self._pitch_short(frame)[0])
        conf_short = float(self._pitch_short.get_confidence())
        if hz < s.min_hz <= hz_short:
            hz, conf = hz_short, conf_short
        onset = bool(self._onset(frame)[0])
        # Pitch window ends at the end of this frame.
        t = self._time_of((i + 1) * self._hop - self._win / 2)
        self._segment(i, t, hz=hz, conf=conf, onset=onset, level=level, out=out)
        self._watch_attack(i, level, (hz_short, conf_short))

    def _segment(self, i: int, t: float, *, hz: float, conf: float, onset: bool, level: float, out: list[Note]) -> None:
        """Notes from one frame's pitch, onset and level."""
        s = self.settings
        # A slowly rising floor: hum and noise are steady, notes are not.
        if level < self._floor_db:
            self._floor_db = level
        else:
            self._floor_db += 0.2 * self._hop_s

        if onset:
            t_on = max(0.0, self._time_of(float(self._onset.get_last())))
            self._start(t_on, out, i)

        voiced = s.min_hz <= hz <= s.max_hz and conf >= s.min_confidence and level > self._gate_db - 20.0
        note = self._note
        if note is None:
            midi = hz_to_midi_float(hz, s.a4_hz) if voiced else 0.0
            # Without an attack, only a clearly sounding new pitch starts a note: the tail of
            # the note that just released, or hum under the gate, must not.
            if (
                voiced
                and level >= max(self._gate_db, self._floor_db + s.floor_margin_db)
                and (self._released is None or abs(midi - self._released) > s.legato_semitones)
            ):
                self._grow_candidate(_Frame(t, midi, conf))
                if len(self._cand) >= self._legato_frames:
                    start = max(0.0, self._cand[0].t - self._win / 2 / self.track_rate)
                    self._note = self._note_from_candidate(start, level, i)
            else:
                self._cand = []
            return

        note.peak_db = max(note.peak_db, level)
        if not voiced:
            self._gap += 1
            if self._gap >= self._release_frames:
                self._end_current(out)
            return
        self._gap = 0
        if level < note.peak_db - s.release_db:
            self._end_current(out)
            return
        f = _Frame(t, hz_to_midi_float(hz, s.a4_hz), conf)
        if note.ref is None or abs(f.midi - note.ref) <= s.legato_semitones:
            self._cand = []
            self._add(note, f, level)
            return
        # Off the note's pitch: an octave slip of the detector, a slide passing through, or
        # a new note played legato once the new pitch holds long enough.
        if abs(abs(f.midi - note.ref) - 12.0) < 0.5:
            return  # a detector slip, not a legato octave leap (those come with an attack)
        self._grow_candidate(f)
        if len(self._cand) >= self._legato_frames:
            self._close(note, self._cand[0].t, out)
            self._note = self._note_from_candidate(self._cand[0].t, level, i)

    def _note_from_candidate(self, onset_s: float, level: float, frame: int) -> _OpenNote:
        """The held run of frames at a new pitch becomes a note of its own."""
        note = _OpenNote(onset_s=onset_s, born=frame)
        for f in self._cand:
            self._add(note, f, level)
        self._cand = []
        return note

    def _grow_candidate(self, f: _Frame) -> None:
        if self._cand and abs(f.midi - self._cand[0].midi) > 0.5:
            self._cand = []
        self._cand.append(f)

    def _add(self, note: _OpenNote, f: _Frame, level: float) -> None:
        if f.t >= note.onset_s + _ATTACK_SKIP_S or note.ref is None:
            note.frames.append(f)
        note.peak_db = max(note.peak_db, level)
        note.last_voiced_t = f.t
        if note.ref is None and len(note.frames) >= 3:
            # The median of three frames in a row once another agrees with it: right after an
            # attack over ringing strings yin wanders (FluidR3's steel reads 44, 51, 63 for an
            # E♭4), and a reference from three frames that all disagree would reject the note's
            # own frames as octave slips.
            mid = statistics.median(g.midi for g in note.frames[-3:])
            if sum(abs(g.midi - mid) <= _REF_SPREAD for g in note.frames[-3:]) >= 2:
                note.ref = mid

    def _start(self, t_on: float, out: list[Note], frame: int) -> None:
        """An attack: the open note ends here and a new one begins."""
        self._cand = []
        self._released = None
        self._gap = 0
        old = self._note
        new = _OpenNote(onset_s=t_on, born=frame)
        if old is not None:
            # Frames the onset detector had not yet flagged belong to the new note.
            keep = [f for f in old.frames if f.t < t_on]
            new.frames = [f for f in old.frames if f.t >= t_on + _ATTACK_SKIP_S]
            old.frames = keep
            self._close(old, t_on, out)
        self._note = new

    def _end_current(self, out: list[Note]) -> None:
        note = self._note
        if note is not None:
            self._close(note, note.last_voiced_t + self._hop_s, out)
            self._released = note.ref
        self._note = None
        self._cand = []
        self._gap = 0

    def _watch_attack(self, i: int, level: float, short: tuple[float, float]) -> None:
        """Keep the screen's early guess (:attr:`sounding`): start, extend, hand over or drop it.

        Reads the segmentation's state and never changes it, so notes are the same with or
        without the guess.
        """
        s = self.settings
        levels = self._levels
        floor = min(levels) if levels else level
        # Frames since the quietest recent one, whose end the attack came after.
        since_quietest = len(levels) - list(levels).index(floor) if levels else 0
        rise = level - floor
        levels.append(level)
        note = self._note
        early = self._early
        if early is not None:
            newer = note if note is not None and note.born >= early.frame and note.frames else None
            # Hand over once the note that followed reads the same (its first frames straddle
            # the attack and often slip an octave); drop a guess no note followed.
            agrees = newer is not None and round(_median_midi(newer)) == round(early.midis[0])
            if agrees or i - early.frame >= _EARLY_HOLD_FRAMES:
                self._early = early = None
        # The half-length window settles on a new pitch a frame or two before the long one
        # (which, straddling the attack, is mostly wrong when confident that early).
        hz, conf = short
        if not (s.min_hz <= hz <= s.max_hz and conf >= s.min_confidence) or level < self._gate_db:
            return
        midi = hz_to_midi_float(hz, s.a4_hz)
        if early is not None:
            if abs(midi - early.midis[0]) <= s.legato_semitones:
                early.midis.append(midi)
                return
            self._early = None  # contradicted: it was no note
        if rise < _EARLY_RISE_DB:
            return
        if note is not None and note.frames:
            shown = _median_midi(note)
            if abs(abs(midi - shown) - 12.0) < 0.5:
                return  # an octave slip of the detector
            # The same pitch again: only a firm attack, with the short window (this frame and
            # the one before) all after it, so the note still ringing is not taken for a new one.
            if abs(midi - shown) <= s.legato_semitones and (rise < _EARLY_REPICK_DB or since_quietest < 2):
                return
        onset_s = max(0.0, self._time_of((i - since_quietest + 1) * self._hop))
        self._early = _Early(onset_s, i, [midi], conf >= _EARLY_SURE_CONF)

    # -- closing a note --------------------------------------------------------------------

    def _close(self, note: _OpenNote, end_s: float, out: list[Note]) -> None:
        s = self.settings
        if len(note.frames) < self._min_frames or note.peak_db < self._gate_db:
            return
        # statistics.median: of a few dozen numbers, numpy's costs ~10× more.
        midis = [f.midi for f in note.frames]
        centre = statistics.median(midis)
        # Octave slips of the detector do not vote on the note's pitch.
        near = [m for m in midis if abs(m - centre) < 0.5]
        if len(near) < self._min_frames:
            return
        centre = statistics.median(near)
        centre += self._bias(note, centre, end_s) + self._register_shift(note, centre, end_s)
        midi = round(centre)
        conf = statistics.median(f.conf for f in note.frames)
        out.append(
            Note(
                onset_s=round(note.onset_s, 4),
                midi=midi,
                cents=round((centre - midi) * 100.0, 2),
                duration_s=round(max(end_s - note.onset_s, self._hop_s), 4),
                in_scale=True if self.scale is None else self.scale.contains(midi),
                confidence=round(conf, 3),
                frequency_hz=round(midi_to_hz(centre, s.a4_hz), 3),
                level_db=round(note.peak_db, 1),
            )
        )

    # -- intonation on the native-rate signal ----------------------------------------------

    def _remember_native(self, block: np.ndarray) -> None:
        n = len(self._native)
        if len(block) >= n:
            self._native[:] = block[-n:]
            self._native = np.roll(self._native, self._native_written + len(block))
        else:
            start = (self._native_written) % n
            first = min(len(block), n - start)
            self._native[start : start + first] = block[:first]
            self._native[: len(block) - first] = block[first:]
        self._native_written += len(block)

    def _native_window(self, start: int, size: int) -> np.ndarray | None:
        n = len(self._native)
        if start < 0 or start + size > self._native_written or start < self._native_written - n:
            return None
        i = start % n
        if i + size <= n:
            return self._native[i : i + size]
        return np.concatenate((self._native[i:], self._native[: i + size - n]))

    def _register_shift(self, note: _OpenNote, centre: float, end_s: float) -> float:
        """Semitones to add when yin read the note in the wrong register (see octave.py)."""
        s = self.settings
        start_s = note.onset_s + _ATTACK_SKIP_S
        span = min(end_s - start_s, 0.12)
        if span < 0.03:
            return 0.0
        size = round(span * self.sample_rate)
        win = self._native_window(round(start_s * self.sample_rate), size)
        if win is None:
            return 0.0
        # As long as the window, ending a little before the onset the detector reports (it
        # may be late by a frame or two): what was already sounding.
        before_end = round((note.onset_s - _BEFORE_GAP_S) * self.sample_rate)
        before = self._native_window(before_end - size, size)
        factor = settle_register(
            win, before, self.sample_rate, midi_to_hz(centre, s.a4_hz), min_hz=s.min_hz, max_hz=s.max_hz
        )
        return 12.0 * math.log2(factor)

    def _bias(self, note: _OpenNote, centre: float, end_s: float) -> float:
        """The decimated track's pitch error (semitones), from up to two native-rate yin
        windows in the note's steady part; 0 when none fits."""
        s = self.settings
        hz = midi_to_hz(centre, s.a4_hz)
        # Yin needs the lag range to reach past one period: a window of ≥ 3 periods.
        size = 1 << max(8, math.ceil(math.log2(3.0 * self.sample_rate / hz)))
        half_s = size / 2 / self.sample_rate
        lo, hi = note.onset_s + _ATTACK_SKIP_S + half_s, end_s - half_s
        steady = [f for f in note.frames if abs(f.midi - centre) < 0.35 and lo <= f.t <= hi]
        if not steady:
            return 0.0
        picks = sorted({len(steady) // 3, (2 * len(steady)) // 3})
        pitch = self._native_pitch.get(size)
        if pitch is None:
            pitch = self._native_pitch[size] = self._yin(size, size, self.sample_rate, s.gate_dbfs - 20.0)
        found: list[float] = []
        for k in picks:
            f = steady[k]
            start = round(f.t * self.sample_rate) - size // 2
            win = self._native_window(start, size)
            if win is None:
                continue
            est = float(pitch(win)[0])
            if est > 0 and pitch.get_confidence() >= s.min_confidence:
                m = hz_to_midi_float(est, s.a4_hz)
                if abs(m - f.midi) < 0.5:
                    found.append(m - f.midi)
        # The native windows correct the decimated track's bias; the median over all of the
        # note's frames stays the estimate, so vibrato averages out.
        return statistics.median(found) if found else 0.0


def _median_midi(note: _OpenNote) -> float:
    """The pitch the screen shows for ``note``: the median of its last few frames."""
    return float(statistics.median([f.midi for f in note.frames[-4:]]))


def track_notes(
    samples: np.ndarray,
    sample_rate: int,
    settings: TrackerSettings | None = None,
    scale: Scale | None = None,
    block: int = 16384,
) -> list[Note]:
    """All notes of a whole recording: the streaming tracker fed block by block."""
    tracker = NoteTracker(sample_rate, settings, scale)
    notes: list[Note] = []
    for i in range(0, len(samples), block):
        notes.extend(tracker.feed(samples[i : i + block]))
    notes.extend(tracker.flush())
    return notes
