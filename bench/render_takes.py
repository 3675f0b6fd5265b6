"""Render monophonic guitar takes with FluidSynth, each with a JSON file of its known truth.

A *base take* (program, tempo, scale, register, sample rate, seed) is composed once; fault
families (detune, out_of_scale, jitter, noise) derive graded variants from it, level 0 being
the shared clean take.  Faults are drawn once per base and scaled by level, so a higher level
contains the lower one (the same notes bent further, a superset of wrong notes, ...).

    python -m bench.render_takes --set fixtures --out tests/data/takes
    python -m bench.render_takes --set bench --out bench/.cache/takes --jobs 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from itertools import pairwise, repeat
from pathlib import Path
from typing import Any

import mido
import numpy as np
import soundfile as sf

from device.analysis.scales import parse_scale

__all__ = [
    "FAMILIES", "LEVEL_VALUES", "PROGRAMS", "SOUNDFONT", "Base", "Note",
    "apply_fault", "bench_bases", "compose", "fixture_bases", "main", "render_audio", "render_base",
    "top_note", "write_midi",
]

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
PROGRAMS: dict[int, str] = {
    24: "nylon", 25: "steel", 26: "jazz", 27: "clean", 28: "muted", 29: "overdriven", 30: "distortion",
}
LOWEST = 38  # D2: drop-D low string
HIGHEST = 86  # D6: 22nd fret of the high E string
# FluidR3's muted guitar has no sample zone above E6: notes 85+ render as silence.
TOP_NOTE: dict[int, int] = {28: 84}
TONICS = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
KINDS = ("major", "natural minor", "major pentatonic", "minor pentatonic")

FAMILIES = ("detune", "out_of_scale", "jitter", "noise")
# detune: cents; out_of_scale: wrong notes; jitter: ms; noise: SNR in dB (level 0 = clean).
LEVEL_VALUES: dict[str, tuple[float, ...]] = {
    "detune": (0, 15, 30, 45),
    "out_of_scale": (0, 2, 4, 6),
    "jitter": (0, 10, 30, 60),
    "noise": (math.inf, 40, 30, 20),
}
FULL_LADDER: tuple[tuple[str, int], ...] = tuple((f, lv) for f in FAMILIES for lv in (1, 2, 3))

LEAD_IN_S = 0.5
TAIL_S = 1.0
BEND_RANGE = 2  # semitones, set explicitly with RPN 0
TICKS_PER_BEAT = 500  # at the default 120 BPM: one tick per millisecond, FluidSynth's player clock
GAIN = 0.6
MIN_GAP_S = 0.02  # jittered notes are shortened to stay monophonic


@dataclass(frozen=True)
class Note:
    """`onset_s` is the MIDI note-on; FluidSynth's output starts 1.5-7 ms later (measured)."""

    onset_s: float
    midi: int
    detune_cents: float
    in_scale: bool
    duration_s: float
    velocity: int


@dataclass(frozen=True)
class Base:
    base_id: str
    program: int
    bpm: int
    notes_per_beat: int
    scale: str
    sample_rate: int
    low: int  # lowest MIDI note of the phrase's register
    span: int  # semitones above `low` the phrase may use
    n_notes: int
    peak_dbfs: float
    seed: int
    channels: int = 1  # 2: guitar on channel 2 only, like a Scarlett Solo's instrument input
    takes: tuple[tuple[str, int], ...] = FULL_LADDER  # (family, level) besides the clean take


def top_note(program: int) -> int:
    return TOP_NOTE.get(program, HIGHEST)


def _ms(seconds: float) -> float:
    # Truth times sit on the MIDI tick grid, so truth and MIDI agree exactly.
    return round(seconds, 3)


def _walk(pool_len: int, n: int, rng: np.random.Generator) -> list[int]:
    """Scale-degree indices: runs up and down the pool, two repeated notes, one or two leaps."""
    idx = 0 if rng.random() < 0.5 else pool_len - 1
    step = 1 if idx == 0 else -1
    first = int(rng.integers(2, n - 4))
    repeats = {first, int(rng.choice([i for i in range(2, n) if abs(i - first) > 2]))}
    leap_at = [i for i in range(3, n) if i not in repeats and i - 1 not in repeats]
    leaps = {int(i) for i in rng.choice(leap_at, size=int(rng.integers(1, 3)), replace=False)}
    out, pending = [idx], False
    for i in range(1, n):
        if i not in repeats:
            # A leap waits until it fits, so runs still turn only at the register's ends.
            pending |= i in leaps
            size = int(rng.integers(3, 6)) if pending else 1
            if pending and 0 <= idx + step * size < pool_len:
                pending = False
            else:
                size = 1
            if not 0 <= idx + step < pool_len:
                step = -step
            idx += step * size
        out.append(idx)
    return out


def compose(base: Base) -> list[Note]:
    """The clean phrase of a base take."""
    rng = np.random.default_rng(base.seed)
    scale = parse_scale(base.scale)
    top = min(base.low + base.span, top_note(base.program))
    pool = [m for m in range(max(base.low, LOWEST), top + 1) if scale.contains(m)]
    ioi = 60.0 / base.bpm / base.notes_per_beat
    notes = []
    for i, degree in enumerate(_walk(len(pool), base.n_notes, rng)):
        # Note-off before the next onset so repeated pitches re-attack.
        gate = float(rng.uniform(0.85, 0.90))
        velocity = int(rng.integers(70, 111))
        notes.append(Note(_ms(LEAD_IN_S + i * ioi), pool[degree], 0.0, True, _ms(gate * ioi), velocity))
    return notes


def _fault_rng(base: Base, family: str) -> np.random.Generator:
    return np.random.default_rng([base.seed, FAMILIES.index(family) + 1])


def apply_fault(notes: Sequence[Note], base: Base, family: str, level: int) -> list[Note]:
    """The notes of `family` at `level` (noise leaves the notes alone: it is added to the audio)."""
    value = LEVEL_VALUES[family][level]
    rng = _fault_rng(base, family)
    if family == "detune":
        signs = rng.choice((-1.0, 1.0), size=len(notes))
        return [replace(n, detune_cents=float(s * value)) for n, s in zip(notes, signs, strict=True)]
    if family == "out_of_scale":
        scale, top, out = parse_scale(base.scale), top_note(base.program), list(notes)
        changed = 0
        for i in rng.permutation(np.arange(1, len(notes))):
            if changed == value:
                break
            midi = out[i].midi
            options = [m for m in (midi - 1, midi + 1) if LOWEST <= m <= top and not scale.contains(m)]
            if options:
                out[i] = replace(out[i], midi=int(rng.choice(options)), in_scale=False)
                changed += 1
        return out
    if family == "jitter":
        shifts = rng.uniform(-1.0, 1.0, size=len(notes)) * value / 1000.0
        onsets = [_ms(n.onset_s + s) for n, s in zip(notes, shifts, strict=True)]
        if any(b - a < 2 * MIN_GAP_S for a, b in pairwise(onsets)):
            raise ValueError(f"{base.base_id}: jitter {value} ms would reorder notes")
        nexts = [*onsets[1:], math.inf]
        return [
            replace(n, onset_s=on, duration_s=_ms(min(n.duration_s, nxt - on - MIN_GAP_S)))
            for n, on, nxt in zip(notes, onsets, nexts, strict=True)
        ]
    return list(notes)


def _bend(cents: float) -> int:
    # Measured with FluidSynth 2.3: a full bend is 12700 * sens/128 = 198.4 cents for sens=2 (the
    # SF2 default pitch-wheel modulator), and the sounding pitch is floored to whole cents.  So
    # scale by the real range and aim just above the wanted cent: +30 then sounds as +30, not +29.
    per_unit = 12700 * BEND_RANGE / 128 / 8192
    return int(np.clip(math.ceil(cents / per_unit), -8192, 8191))


def write_midi(notes: Sequence[Note], program: int, path: Path) -> None:
    """Alternate two MIDI channels so a note's bend never re-bends the previous note's tail."""
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000)])
    for ch in (0, 1):
        track.append(mido.Message("program_change", channel=ch, program=program))
        for control, value in ((101, 0), (100, 0), (6, BEND_RANGE), (38, 0), (101, 127), (100, 127)):
            track.append(mido.Message("control_change", channel=ch, control=control, value=value))
    events: list[tuple[int, int, mido.Message]] = []
    for i, n in enumerate(notes):
        ch, on = i % 2, round(n.onset_s * 1000)
        off = on + round(n.duration_s * 1000)
        events += [
            (on, 1, mido.Message("pitchwheel", channel=ch, pitch=_bend(n.detune_cents))),
            (on, 2, mido.Message("note_on", channel=ch, note=n.midi, velocity=n.velocity)),
            (off, 0, mido.Message("note_off", channel=ch, note=n.midi, velocity=0)),
        ]
    now = 0
    for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=round(TAIL_S * 1000)))
    midi_file = mido.MidiFile(ticks_per_beat=TICKS_PER_BEAT)
    midi_file.tracks.append(track)
    midi_file.save(path)


def render_audio(notes: Sequence[Note], program: int, sample_rate: int, soundfont: Path) -> np.ndarray:
    """Mono float32 audio lasting until TAIL_S after the last note-off."""
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise FileNotFoundError("fluidsynth not found (apt install fluidsynth fluid-soundfont-gm)")
    with tempfile.TemporaryDirectory() as tmp:
        mid, wav = Path(tmp) / "take.mid", Path(tmp) / "take.wav"
        write_midi(notes, program, mid)
        # Reverb/chorus off keeps tails dry; float output avoids FluidSynth's s16 dither.
        cmd = [exe, "-n", "-i", "-q", "-g", str(GAIN), "-R", "0", "-C", "0", "-r", str(sample_rate),
               "-O", "float", "-T", "wav", "-F", str(wav), str(soundfont), str(mid)]
        subprocess.run(cmd, check=True, capture_output=True)
        audio, rate = sf.read(wav, dtype="float32", always_2d=True)
    if rate != sample_rate:
        raise RuntimeError(f"fluidsynth rendered at {rate} Hz, wanted {sample_rate} Hz")
    length = round((max(n.onset_s + n.duration_s for n in notes) + TAIL_S) * sample_rate)
    mono = audio.mean(axis=1)[:length]
    return np.pad(mono, (0, length - len(mono))).astype(np.float32)


def _noise(length: int, sample_rate: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Unit-RMS mix of pink-ish noise and mains hum with a few harmonics; returns (noise, mains Hz)."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    freqs = np.fft.rfftfreq(length, 1.0 / sample_rate)
    spectrum[1:] /= np.sqrt(freqs[1:])
    spectrum[freqs < 20] = 0.0  # subsonic rumble would take noise power without masking anything
    pink = np.fft.irfft(spectrum, length)
    mains = int(rng.choice((50, 60)))
    t = np.arange(length) / sample_rate
    hum = sum(
        amp * rng.uniform(0.5, 1.0) * np.sin(2 * np.pi * k * mains * t + rng.uniform(0, 2 * np.pi))
        for k, amp in enumerate((1.0, 0.5, 0.35, 0.2, 0.1), start=1)
    )
    share = rng.uniform(0.3, 0.7)  # fraction of the noise power that is hum
    mix = math.sqrt(share) * hum / np.std(hum) + math.sqrt(1 - share) * pink / np.std(pink)
    return mix / np.std(mix), mains


def _peak_dbfs(x: np.ndarray) -> float:
    return round(20 * math.log10(float(np.max(np.abs(x)))), 2)


def _save(out: Path, stem: str, guitar: np.ndarray, base: Base, rng: np.random.Generator) -> None:
    data = guitar
    if base.channels == 2:
        # An empty input is never digital zero: a few LSBs of hiss on channel 1.
        floor = rng.standard_normal(len(guitar)) * 10 ** (-80 / 20)
        data = np.stack([floor, guitar], axis=1)
    sf.write(out / f"{stem}.flac", data, base.sample_rate, subtype="PCM_16")


def _dump_truth(truth: dict[str, Any]) -> str:
    """Indented JSON with one note per line, so a diff of a fixture reads note by note."""
    head = json.dumps({k: v for k, v in truth.items() if k != "notes"}, indent=1).removesuffix("\n}")
    notes = ",\n".join("  " + json.dumps(n) for n in truth["notes"])
    return f'{head},\n "notes": [\n{notes}\n ]\n}}\n'


def _add_noise(audio: np.ndarray, notes: Sequence[Note], base: Base, level: int) -> tuple[np.ndarray, dict[str, Any]]:
    # SNR is against the played span, not the silent lead-in and tail.
    first = round(notes[0].onset_s * base.sample_rate)
    last = round((notes[-1].onset_s + notes[-1].duration_s) * base.sample_rate)
    rms = float(np.sqrt(np.mean(audio[first:last] ** 2)))
    noise, mains = _noise(len(audio), base.sample_rate, _fault_rng(base, "noise"))
    snr = LEVEL_VALUES["noise"][level]
    return audio + noise * rms / 10 ** (snr / 20), {"snr_db": snr, "mains_hz": mains}


def render_base(base: Base, out: Path, soundfont: Path = SOUNDFONT) -> list[dict[str, Any]]:
    """Render the clean take and the requested fault takes of one base; return their truths."""
    clean = compose(base)
    clean_audio = render_audio(clean, base.program, base.sample_rate, soundfont)
    # Every take gets the clean take's gain, so the takes of a base differ only by their fault.
    gain = 10 ** (base.peak_dbfs / 20) / float(np.max(np.abs(clean_audio)))
    truths = []
    for family, level in (("clean", 0), *base.takes):
        notes, noise_info = clean, None
        if family == "clean":
            audio = clean_audio * gain
        elif family == "noise":
            audio, noise_info = _add_noise(clean_audio * gain, clean, base, level)
        else:
            notes = apply_fault(clean, base, family, level)
            audio = render_audio(notes, base.program, base.sample_rate, soundfont) * gain
        # Noise or a fault (different notes, shifted overlaps) can raise the peak: never clip.
        audio = (audio * min(1.0, 0.98 / float(np.max(np.abs(audio))))).astype(np.float32)
        stem = f"{base.base_id}_{family}" if family == "clean" else f"{base.base_id}_{family}{level}"
        _save(out, stem, audio, base, np.random.default_rng([base.seed, 99]))
        truth: dict[str, Any] = {
            "file": f"{stem}.flac", "sample_rate": base.sample_rate, "channels": base.channels,
            "guitar_channel": base.channels, "program": base.program,
            "program_name": PROGRAMS[base.program], "bpm": base.bpm,
            "notes_per_beat": base.notes_per_beat, "scale": base.scale, "base_id": base.base_id,
            "family": family, "level": level,
            "level_value": None if family == "clean" else LEVEL_VALUES[family][level],
            "seed": base.seed, "peak_dbfs": _peak_dbfs(audio), "noise": noise_info,
            "duration_s": round(len(audio) / base.sample_rate, 3),
            "notes": [asdict(n) for n in notes],
        }
        (out / f"{stem}.json").write_text(_dump_truth(truth))
        truths.append(truth)
    return truths


def _n_notes(bpm: int, notes_per_beat: int, seconds: float) -> int:
    ioi = 60.0 / bpm / notes_per_beat
    return int(np.clip(round((seconds - LEAD_IN_S - TAIL_S) / ioi), 16, 24))


def fixture_bases() -> list[Base]:
    """Small committed set: each base pins down one thing the tests or the pedal must handle."""
    specs: list[tuple[str, int, int, int, str, int, int, int, float, tuple[tuple[str, int], ...], int]] = [
        # id, program, bpm, notes/beat, scale, rate, low, span, peak dBFS, fault takes, channels
        ("f01", 27, 100, 2, "A minor pentatonic", 44100, 50, 20, -3.0, (("detune", 2), ("noise", 3)), 1),
        ("f02", 24, 100, 2, "E natural minor", 48000, LOWEST, 14, -6.0, (("out_of_scale", 3),), 1),
        ("f03", 30, 140, 1, "D major", 44100, HIGHEST - 20, 20, -1.0, (("jitter", 3),), 1),
        ("f04", 29, 70, 2, "Bb major pentatonic", 48000, 55, 22, -12.0, (), 2),
        ("f05", 28, 140, 2, "F# natural minor", 44100, 45, 18, -3.0, (), 2),
        ("f06", 26, 100, 2, "G major", 48000, 60, 19, -9.0, (), 1),
        # Steel strings ring on under the next note: yin reads their shared period, octaves low.
        ("f07", 25, 140, 2, "Eb major pentatonic", 44100, 51, 16, -3.0, (), 1),
    ]
    return [
        Base(bid, prog, bpm, npb, scale, rate, low, span, _n_notes(bpm, npb, 7.0), peak, 100 + i, ch, takes)
        for i, (bid, prog, bpm, npb, scale, rate, low, span, peak, takes, ch) in enumerate(specs, 1)
    ]


def bench_bases(count: int = 24, seed: int = 2024) -> list[Base]:
    """Balanced over programs, tempos, sample rates, scale kinds, keys and registers."""
    rng = np.random.default_rng(seed)

    def balanced(options: Sequence[Any]) -> list[Any]:
        return [options[i] for i in rng.permutation(np.resize(np.arange(len(options)), count))]

    programs, tempos, rates = balanced(list(PROGRAMS)), balanced([70, 100, 140]), balanced([44100, 48000])
    kinds, tonics, registers = balanced(KINDS), balanced(TONICS), balanced(["low", "mid", "high"])
    peaks = balanced([-1.0, -3.0, -3.0, -3.0, -6.0, -9.0, -12.0])
    bases = []
    for i in range(count):
        program, bpm = int(programs[i]), int(tempos[i])
        npb = 1 if bpm == 140 and i % 2 else 2
        span, top = int(rng.integers(18, 25)), top_note(program)
        low = {"low": LOWEST, "high": top - span}.get(
            registers[i], int(rng.integers(LOWEST + 3, top - span - 2)))
        bases.append(Base(f"b{i + 1:02d}", program, bpm, npb, f"{tonics[i]} {kinds[i]}", int(rates[i]),
                          low, span, _n_notes(bpm, npb, 10.0), float(peaks[i]), seed + i + 1))
    return bases


def _index(set_name: str, truths: list[dict[str, Any]]) -> dict[str, Any]:
    ladders: dict[str, dict[str, dict[str, str]]] = {}
    for t in truths:
        families = ladders.setdefault(t["base_id"], {f: {} for f in FAMILIES})
        for family in FAMILIES if t["family"] == "clean" else (t["family"],):
            families[family][str(t["level"])] = t["file"].removesuffix(".flac") + ".json"
    # `takes` lists FLAC names (each truth is the same stem + .json); `ladders` maps
    # base -> family -> level -> truth file, level 0 being the shared clean take.
    takes = [t["file"] for t in truths]
    return {"set": set_name, "soundfont": SOUNDFONT.name, "takes": takes, "ladders": ladders}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.render_takes", description=__doc__.split("\n")[0])
    parser.add_argument("--set", choices=("fixtures", "bench"), required=True, dest="set_name")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--bases", type=int, default=24, help="bench set: number of base takes (13 takes each)")
    parser.add_argument("--soundfont", type=Path, default=SOUNDFONT)
    args = parser.parse_args(argv)
    if not args.soundfont.exists():
        parser.error(f"soundfont {args.soundfont} not found (apt install fluid-soundfont-gm)")
    bases = fixture_bases() if args.set_name == "fixtures" else bench_bases(args.bases)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            per_base = list(pool.map(render_base, bases, repeat(args.out), repeat(args.soundfont)))
    else:
        per_base = [render_base(b, args.out, args.soundfont) for b in bases]
    truths = [t for ts in per_base for t in ts]
    (args.out / "index.json").write_text(json.dumps(_index(args.set_name, truths), indent=1) + "\n")
    size = sum((args.out / t["file"]).stat().st_size for t in truths) / 1e6
    midis = [n["midi"] for t in truths for n in t["notes"]]
    print(f"{len(truths)} takes from {len(bases)} bases in {time.monotonic() - start:.1f} s, "
          f"{size:.2f} MB of FLAC, MIDI {min(midis)}-{max(midis)} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
