"""Read guitar takes from WAV/FLAC files as float32 mono, refusing anything truncated, corrupt or silent.

libsndfile (1.2.2 through soundfile 0.14) is forgiving in ways that would quietly spoil a score:

* A WAV whose ``data`` chunk is cut short opens without error: libsndfile clamps the frame count to
  the bytes present (only its log says ``data : 176400 (should be 88178)``) and returns the shorter
  audio, so ``sf.info().frames`` always equals the frames read and comparing them proves nothing.
  The RIFF header's data size is compared with the file size here instead.
* A FLAC cut anywhere opens fine (STREAMINFO still promises the full length), then fails on decode
  ("flac decoder lost sync"); it is never padded or returned short in silence. Seeking to the last
  promised frame failed at every one of ~2,400 cut points tried and costs ~2 ms, so both readers
  refuse such a file before decoding it, the streaming one before yielding anything.
* A FLAC from a streaming encoder records no length; libsndfile reports 2**63 - 1 frames for it,
  which must be read to the end rather than allocated.
* ``SoundFile.read`` calls ``tell()`` and ``seek()`` around every read. On FLAC that repositions the
  decoder each time (512-frame blocks read 14x slower), turns decode errors into "Internal
  psf_fseek() failed." and breaks at the end of a length-less FLAC. Frames are therefore read with
  libsndfile's ``sf_readf_float`` through soundfile's own cffi handle, falling back to the public
  ``read`` should a soundfile release rename those internals.

Every failure is an :class:`AudioFileError` (or :class:`SilentAudioError`) whose message is one line
starting with the path, so the CLI prints it as is.
"""

from __future__ import annotations

import math
import os
import stat
import struct
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
import soundfile as sf

from device.analysis.settings import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
from device.errors import AudioError, AudioFileError, ConfigError, SilentAudioError

__all__ = [
    "GUITAR_DOMINANCE_DB",
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "AudioBlocks",
    "AudioClip",
    "ChannelSpec",
    "choose_channel",
    "iter_audio_blocks",
    "read_audio",
]

ChannelSpec: TypeAlias = int | Literal["auto", "mix"]
"""``"auto"``, ``"mix"`` (the mean of all channels) or a 1-based channel number."""

Samples: TypeAlias = npt.NDArray[np.float32]


# A channel at least this far below the loudest is taken as unused (the empty mic input of a
# Scarlett Solo whose guitar is on channel 2); mixing it in would only add its noise.
GUITAR_DOMINANCE_DB: Final = 20.0
_DOMINANCE_RATIO: Final = 10.0 ** (-GUITAR_DOMINANCE_DB / 20.0)

# libsndfile's "length unknown" frame count (SF_COUNT_MAX).
_UNKNOWN_FRAMES: Final = 2**63 - 1

# Block size for reads of unknown length and for the channel-energy pass. read_audio and
# iter_audio_blocks both sum energy over blocks of this size, so they add the same partial sums and
# choose the same channel for a file.
_CHUNK_FRAMES: Final = 1 << 16

# soundfile's private cffi bindings; the module docstring says why reads bypass SoundFile.read.
_SF_LIB: Final[Any] = getattr(sf, "_snd", None)
_SF_FFI: Final[Any] = getattr(sf, "_ffi", None)

_WAV_BYTE_ORDER: Final = {b"RIFF": "<", b"RIFX": ">", b"RF64": "<", b"BW64": "<"}
# Data sizes written by recorders that cannot seek back to finish the header (ffmpeg and sox to a
# pipe write 0xFFFFFFFF, arecord 0x7FFFFFFF or 0x7FFFFF00): such a header promises no length, so
# nothing can be missing from it.
_WAV_UNKNOWN_SIZES: Final = frozenset({0xFFFFFFFF, 0x7FFFFFFF, 0x7FFFFF00})
# Encodings in which every frame is block_align bytes, so byte counts convert to frames.
_FIXED_FRAME_TAGS: Final = frozenset({0x0001, 0x0003, 0x0006, 0x0007})  # PCM, float, A-law, mu-law
_WAVE_FORMAT_EXTENSIBLE: Final = 0xFFFE


@dataclass(frozen=True, slots=True, eq=False)
class AudioClip:
    """A whole take, reduced to the one channel that is analysed.

    ``samples`` is float32 mono, C-contiguous, full scale about -1..1; ``channels`` counts the
    channels in the file. (``eq=False``: arrays have no single truth value, so field-wise equality
    and hashing cannot work.)
    """

    samples: Samples
    sample_rate: int
    channels: int
    path: Path

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True, slots=True, eq=False)
class AudioBlocks:
    """A take as float32 mono blocks; iterate it (as often as you like).

    Made by :func:`iter_audio_blocks`, which has already checked the file, so nearly every failure
    surfaces there. Damage in the middle of a compressed stream is only found by decoding it and is
    raised during iteration, after the blocks before it: treat the whole take as failed then.
    """

    path: Path
    sample_rate: int
    channels: int
    frames: int | None
    """Frames in the file; ``None`` when its header does not record the length."""
    block_frames: int
    channel: int | Literal["mix"]
    """The channel read (1-based) or ``"mix"``; ``"auto"`` is already resolved."""
    _display: str = field(repr=False)

    @property
    def duration_s(self) -> float | None:
        return None if self.frames is None else self.frames / self.sample_rate

    def __iter__(self) -> Iterator[Samples]:
        with _reopened(self) as (f, src):
            for block in _blocks(f, self.block_frames, src):
                mono = _select(block, self.channel)
                _check_finite(mono, self._display)
                yield mono


def choose_channel(channel_rms: Sequence[float]) -> int | Literal["mix"]:
    """The ``"auto"`` rule: the loudest channel (1-based) when every other channel is at least
    :data:`GUITAR_DOMINANCE_DB` quieter, else ``"mix"``.

    One loud channel is an instrument input beside idle ones (mic, second input); two loud ones are
    the same guitar recorded twice or in stereo, where the mean loses nothing.
    """
    if not channel_rms:
        raise ValueError("no channels to choose from")
    if len(channel_rms) == 1:
        return 1
    loudest = max(range(len(channel_rms)), key=lambda i: channel_rms[i])
    top = channel_rms[loudest]
    quiet = top * _DOMINANCE_RATIO
    if top > 0.0 and all(r <= quiet for i, r in enumerate(channel_rms) if i != loudest):
        return loudest + 1
    return "mix"


def read_audio(
    path: str | os.PathLike[str], channel: ChannelSpec = "auto", *, silence_dbfs: float = -70.0
) -> AudioClip:
    """Read a whole take.

    Raises :class:`AudioFileError` when the file is missing, unreadable, not audio, truncated,
    corrupt, without frames, at an unsupported sample rate or short of the channel asked for;
    :class:`SilentAudioError` when the chosen samples peak below ``silence_dbfs``;
    :class:`ConfigError` for a malformed ``channel``.
    """
    spec = _check_spec(channel)
    with _checked_open(path) as (f, src):
        # An explicit channel is checked before decoding, so a wrong number fails fast.
        choice = None if spec == "auto" else _resolve(spec, src, ())
        data = _read_all(f, src)
    if len(data) == 0:
        raise _error(src.display, "no audio frames")
    if choice is None:
        slices = (data[i : i + _CHUNK_FRAMES] for i in range(0, len(data), _CHUNK_FRAMES))
        choice = _resolve(spec, src, slices)
    samples = _select(data, choice)
    _check_level(samples, silence_dbfs, src.display)
    return AudioClip(samples=samples, sample_rate=src.sample_rate, channels=src.channels, path=src.path)


def iter_audio_blocks(
    path: str | os.PathLike[str], block_frames: int, channel: ChannelSpec = "auto"
) -> AudioBlocks:
    """Check a take and return it as blocks of ``block_frames`` frames (the last may be shorter).

    The blocks concatenated equal ``read_audio(path, channel).samples``. ``"auto"`` on a
    multi-channel file needs every channel's energy first, so it decodes the file once here, which
    also surfaces any damage before the first block. The silence check is ``read_audio``'s alone: a
    stream cannot know it was silent until it ends.
    """
    if isinstance(block_frames, bool) or not isinstance(block_frames, int) or block_frames < 1:
        raise ValueError(f"block_frames must be a positive integer, got {block_frames!r}")
    spec = _check_spec(channel)
    with _checked_open(path) as (f, src):
        if src.frames == 0:
            raise _error(src.display, "no audio frames")
        choice = _resolve(spec, src, _blocks(f, _CHUNK_FRAMES, src))
    return AudioBlocks(
        path=src.path,
        sample_rate=src.sample_rate,
        channels=src.channels,
        frames=src.frames,
        block_frames=block_frames,
        channel=choice,
        _display=src.display,
    )


# --- opening and checking ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Source:
    path: Path
    display: str
    sample_rate: int
    channels: int
    frames: int | None


@dataclass(frozen=True, slots=True)
class _WavData:
    """Where a WAV's ``data`` chunk starts and how big its header says it is."""

    offset: int
    declared: int | None  # None: the writer left a "length unknown" placeholder
    present: int
    block_align: int | None  # None: frames are not fixed-size (ADPCM and the like)
    riff_end: int | None  # where the RIFF header says the file ends; None if it does not say


def _error(display: str, message: str) -> AudioFileError:
    return AudioFileError(f"{display}: {_one_line(message)}")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _display_name(path: str | os.PathLike[str]) -> str:
    # As the caller spelled it ("dir/" stays "dir/"); escaping keeps odd names on one line.
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in os.fspath(path))


def _reason(exc: BaseException) -> str:
    text = _one_line(str(getattr(exc, "error_string", None) or exc) or type(exc).__name__)
    return text.removeprefix("Error : ").removesuffix(".")


def _check_spec(channel: object) -> ChannelSpec:
    if isinstance(channel, str) and channel in ("auto", "mix"):
        return "auto" if channel == "auto" else "mix"
    if isinstance(channel, int) and not isinstance(channel, bool) and channel >= 1:
        return channel
    raise ConfigError(f"channel must be 'auto', 'mix' or a channel number from 1, got {channel!r}")


def _file_size(path: str | os.PathLike[str], display: str) -> int:
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise _error(display, "no such file") from exc
    except NotADirectoryError as exc:
        raise _error(display, "no such file (a parent is not a directory)") from exc
    except PermissionError as exc:
        raise _error(display, "permission denied") from exc
    except OSError as exc:
        raise _error(display, f"cannot access ({exc.strerror or exc})") from exc
    if stat.S_ISDIR(st.st_mode):
        raise _error(display, "is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise _error(display, "not a regular file")
    if st.st_size == 0:
        raise _error(display, "file is empty (0 bytes)")
    return st.st_size


@contextmanager
def _checked_open(path: str | os.PathLike[str]) -> Iterator[tuple[Any, _Source]]:
    """``path`` opened with libsndfile, after every check that needs no full decode."""
    display = _display_name(path)
    size = _file_size(path, display)
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            # A header cut before "WAVE" is still a WAV, just a truncated one.
            is_wav = head[:4] in _WAV_BYTE_ORDER and b"WAVE".startswith(head[8:12])
            wav = _find_wav_data(fh, size, _WAV_BYTE_ORDER[head[:4]]) if is_wav else None
    except PermissionError as exc:
        raise _error(display, "permission denied") from exc
    except OSError as exc:
        raise _error(display, f"read error ({exc.strerror or exc})") from exc
    if wav is not None:
        _check_wav_extent(wav, display)
    header_cut = f"truncated: file ends inside the WAV header ({size} bytes)"

    try:
        f = sf.SoundFile(os.fspath(path))
    except (sf.SoundFileError, RuntimeError) as exc:
        if is_wav and wav is None:
            raise _error(display, header_cut) from exc
        if is_wav or head[:4] == b"fLaC":
            raise _error(display, f"corrupt or truncated audio data ({_reason(exc)})") from exc
        raise _error(display, "not a WAV or FLAC audio file") from exc
    with f, _decode_errors(display):
        if not MIN_SAMPLE_RATE <= f.samplerate <= MAX_SAMPLE_RATE:
            raise _error(
                display,
                f"unsupported sample rate {f.samplerate} Hz "
                f"(expected {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz)",
            )
        frames: int | None = None if f.frames >= _UNKNOWN_FRAMES else int(f.frames)
        if is_wav and wav is None and frames == 0:
            raise _error(display, header_cut)
        src = _Source(Path(path), display, int(f.samplerate), int(f.channels), frames)
        if f.format == "FLAC" and frames:
            _check_flac_end(src, frames)
        yield f, src


@contextmanager
def _decode_errors(display: str) -> Iterator[None]:
    try:
        yield
    except AudioError:
        raise
    except (sf.SoundFileError, RuntimeError) as exc:
        raise _error(display, f"corrupt or truncated audio data ({_reason(exc)})") from exc


@contextmanager
def _reopened(blocks: AudioBlocks) -> Iterator[tuple[Any, _Source]]:
    """The file behind ``blocks`` opened again, provided it still looks as it did when checked."""
    display = blocks._display
    _file_size(blocks.path, display)
    try:
        f = sf.SoundFile(os.fspath(blocks.path))
    except (sf.SoundFileError, RuntimeError) as exc:
        raise _error(display, f"cannot reopen ({_reason(exc)})") from exc
    with f:
        if (f.samplerate, f.channels) != (blocks.sample_rate, blocks.channels):
            raise _error(display, "file changed since it was checked")
        yield f, _Source(blocks.path, display, blocks.sample_rate, blocks.channels, blocks.frames)


def _find_wav_data(fh: BinaryIO, file_size: int, order: str) -> _WavData | None:
    """Walk the RIFF chunks to ``data``; ``None`` if the file ends first."""
    fh.seek(4)
    raw = fh.read(4)
    riff_size: int | None = int(struct.unpack(order + "I", raw)[0]) if len(raw) == 4 else None
    pos = 12
    block_align: int | None = None
    ds64_riff: int | None = None
    ds64_data: int | None = None
    while True:
        fh.seek(pos)
        header = fh.read(8)
        if len(header) < 8:
            return None
        chunk_id, size = header[:4], int(struct.unpack(order + "I", header[4:])[0])
        body = pos + 8
        if chunk_id == b"ds64":
            # RF64/BW64 keep the real 64-bit sizes here and write 0xFFFFFFFF in the 32-bit fields.
            sizes = fh.read(16)
            if len(sizes) == 16:
                ds64_riff, ds64_data = (int(v) for v in struct.unpack(order + "QQ", sizes))
        elif chunk_id == b"fmt ":
            block_align = _fmt_block_align(fh.read(min(size, 40)), order)
        elif chunk_id == b"data":
            declared: int | None = size
            if size == 0xFFFFFFFF and ds64_data is not None:
                declared = ds64_data
            elif size in _WAV_UNKNOWN_SIZES:
                declared = None
            if riff_size == 0xFFFFFFFF and ds64_riff is not None:
                riff_size = ds64_riff
            riff_end = None if riff_size is None or riff_size in _WAV_UNKNOWN_SIZES else riff_size + 8
            return _WavData(body, declared, file_size - body, block_align, riff_end)
        pos = body + size + (size & 1)  # chunks are padded to an even length


def _fmt_block_align(fmt: bytes, order: str) -> int | None:
    if len(fmt) < 16:
        return None
    tag, _, _, _, block_align = (int(v) for v in struct.unpack(order + "HHIIH", fmt[:14]))
    if tag == _WAVE_FORMAT_EXTENSIBLE and len(fmt) >= 26:
        tag = int(struct.unpack(order + "H", fmt[24:26])[0])  # leading bytes of the sub-format GUID
    return block_align if tag in _FIXED_FRAME_TAGS and block_align > 0 else None


def _check_wav_extent(wav: _WavData, display: str) -> None:
    ba = wav.block_align

    def count(n_bytes: int) -> int:
        return n_bytes // ba if ba else n_bytes

    unit = "frames" if ba else "data bytes"
    if wav.declared is None:
        return
    riff_stale = wav.riff_end is None or wav.riff_end <= wav.offset
    if wav.declared == 0 and wav.present >= (ba or 1) and riff_stale:
        # libsndfile writes a zero data size until close(); a recorder that died mid-take leaves it
        # so, and libsndfile then reads whatever follows as audio. Both sizes stale means exactly
        # that, whereas a RIFF size covering the bytes after an empty data chunk makes them chunks.
        raise _error(
            display,
            f"truncated: the WAV header was never finalised (it says 0 {unit}, "
            f"{count(wav.present)} follow); the recording was interrupted",
        )
    if wav.declared > wav.present:
        raise _error(
            display,
            f"truncated: header promises {count(wav.declared)} {unit}, only {count(wav.present)} present",
        )


def _check_flac_end(src: _Source, frames: int) -> None:
    """Refuse a FLAC whose last promised frame does not decode, saying how much of it does."""
    try:
        with sf.SoundFile(os.fspath(src.path)) as f:
            f.seek(frames - 1)
            last, err = _decode(f, 1, src.channels)
            if err is None and len(last) == 1:
                return
    except (sf.SoundFileError, RuntimeError):
        pass  # a failed seek can leave the decoder unusable: count on a fresh handle
    # Only damaged files get here, so decoding them twice costs nothing that matters.
    decodable = 0
    with sf.SoundFile(os.fspath(src.path)) as f:
        while True:
            block, err = _decode(f, _CHUNK_FRAMES, src.channels)
            decodable += len(block)
            if err is not None or len(block) == 0:
                break
    if decodable < frames:
        reason = "stream ends early" if err is None else _reason(err)
        raise _error(
            src.display,
            f"corrupt or truncated audio data: header promises {frames} frames, "
            f"only {decodable} decodable ({reason})",
        ) from err
    # Every promised frame decodes from the start and only the seek failed: the audio is whole.


# --- reading -------------------------------------------------------------------------------------


def _decode(f: Any, n: int, channels: int) -> tuple[npt.NDArray[np.float32], Exception | None]:
    """Up to ``n`` frames as an (n, channels) float32 array, decoded straight into it (empty at the
    end), and the error libsndfile stopped on, if any, which may follow some good frames."""
    handle = getattr(f, "_file", None)
    if _SF_LIB is None or _SF_FFI is None or handle is None:
        try:
            block: npt.NDArray[np.float32] = f.read(n, dtype="float32", always_2d=True)
        except (sf.SoundFileError, RuntimeError) as exc:
            return np.empty((0, channels), np.float32), exc
        return block, None
    out = np.empty((n, channels), np.float32)
    got = int(_SF_LIB.sf_readf_float(handle, _SF_FFI.cast("float *", out.ctypes.data), n))
    code = int(_SF_LIB.sf_error(handle))
    return out[:got], (sf.LibsndfileError(code) if code else None)


def _read_block(f: Any, n: int, done: int, src: _Source) -> npt.NDArray[np.float32]:
    block, err = _decode(f, n, src.channels)
    if err is not None:
        of = "" if src.frames is None else f" of {src.frames}"
        raise _error(
            src.display,
            f"corrupt or truncated audio data after frame {done + len(block)}{of} ({_reason(err)})",
        ) from err
    return block


def _check_complete(decoded: int, src: _Source) -> None:
    if src.frames is not None and decoded < src.frames:
        raise _error(src.display, f"truncated: header promises {src.frames} frames, only {decoded} decoded")


def _blocks(f: Any, n: int, src: _Source) -> Iterator[npt.NDArray[np.float32]]:
    """(≤n, channels) blocks to the end of the stream, which must hold every promised frame."""
    done = 0
    while len(block := _read_block(f, n, done, src)):
        done += len(block)
        yield block
    _check_complete(done, src)


def _read_all(f: Any, src: _Source) -> npt.NDArray[np.float32]:
    """Every frame as one (frames, channels) float32 array."""
    if src.frames is not None:
        data = _read_block(f, src.frames, 0, src)
        _check_complete(len(data), src)
        return data
    parts = list(_blocks(f, _CHUNK_FRAMES, src))
    return np.concatenate(parts) if parts else np.empty((0, src.channels), np.float32)


def _resolve(
    spec: ChannelSpec, src: _Source, blocks: Iterable[npt.NDArray[np.float32]]
) -> int | Literal["mix"]:
    """``spec`` made concrete for this file; ``blocks`` are only consumed for ``"auto"``."""
    if spec == "mix":
        return "mix"
    if spec == "auto":
        return 1 if src.channels == 1 else choose_channel(_channel_rms(blocks, src))
    if spec > src.channels:
        have = f"{src.channels} channel" + ("s" if src.channels != 1 else "")
        raise _error(src.display, f"channel {spec} requested but the file has only {have}")
    return spec


def _channel_rms(blocks: Iterable[npt.NDArray[np.float32]], src: _Source) -> list[float]:
    # BLAS dot per column and block (10x faster than einsum), summed across blocks in float64 so the
    # total does not drift over a long take.
    sumsq = [0.0] * src.channels
    n = 0
    for block in blocks:
        for k in range(src.channels):
            column = block[:, k]
            sumsq[k] += float(np.dot(column, column))
        n += len(block)
    if not all(math.isfinite(s) for s in sumsq):
        raise _error(src.display, "contains NaN or infinite samples")
    return [math.sqrt(s / n) if n else 0.0 for s in sumsq]


def _select(data: npt.NDArray[np.float32], choice: int | Literal["mix"]) -> Samples:
    """One channel (1-based) or the mean of all, as a C-contiguous 1-D array.

    Purely per frame, so selecting block by block gives exactly the samples of selecting at once.
    """
    channels = data.shape[1]
    if choice != "mix" or channels == 1:
        # A mono file's single column is already contiguous and comes back without a copy.
        return np.ascontiguousarray(data[:, 0 if choice == "mix" else choice - 1])
    mixed = data[:, 0].copy()
    for k in range(1, channels):
        mixed += data[:, k]
    mixed *= np.float32(1.0 / channels)
    return mixed


def _check_finite(samples: Samples, display: str) -> tuple[float, float]:
    # Only float files can hold NaN/inf; max and min propagate them, so this is two passes, no copy.
    hi, lo = (float(samples.max()), float(samples.min())) if len(samples) else (0.0, 0.0)
    if not (math.isfinite(hi) and math.isfinite(lo)):
        raise _error(display, "contains NaN or infinite samples")
    return hi, lo


def _check_level(samples: Samples, silence_dbfs: float, display: str) -> None:
    hi, lo = _check_finite(samples, display)
    peak = max(hi, -lo)
    peak_dbfs = 20.0 * math.log10(peak) if peak > 0.0 else -math.inf
    if peak_dbfs < silence_dbfs:
        raise SilentAudioError(f"{display}: silent (peak {peak_dbfs:.1f} dBFS, below {silence_dbfs:g} dBFS)")
