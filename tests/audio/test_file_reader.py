"""read_audio / iter_audio_blocks against real files written with soundfile (libsndfile), no mocks."""

from __future__ import annotations

import itertools
import os
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from device.audio import (
    GUITAR_DOMINANCE_DB,
    AudioBlocks,
    AudioClip,
    ChannelSpec,
    choose_channel,
    iter_audio_blocks,
    read_audio,
)
from device.errors import AudioFileError, ConfigError, FretCoachError, SilentAudioError

Signal = npt.NDArray[np.float32]


def pluck(sr: int, seconds: float = 1.0, hz: float = 196.0, amp: float = 0.5) -> Signal:
    """A decaying G3 string, the kind of take the pedal scores."""
    t = np.arange(int(sr * seconds)) / sr
    out: Signal = (amp * np.sin(2 * np.pi * hz * t) * np.exp(-3.0 * t)).astype(np.float32)
    return out


def noise(n: int, dbfs: float, seed: int = 0) -> Signal:
    rms = 10.0 ** (dbfs / 20.0)
    out: Signal = (np.random.default_rng(seed).standard_normal(n) * rms).astype(np.float32)
    return out


def write(path: Path, data: npt.ArrayLike, sr: int = 44100, subtype: str = "PCM_16", **kw: str) -> Path:
    sf.write(path, data, sr, subtype=subtype, **kw)
    return path


def cut(path: Path, keep: float | int) -> Path:
    """Keep the first ``keep`` bytes (an int) or that fraction of the file (a float)."""
    data = path.read_bytes()
    n = keep if isinstance(keep, int) else int(len(data) * keep)
    path.write_bytes(data[:n])
    return path


def data_offset(path: Path) -> int:
    return path.read_bytes().index(b"data") + 8


def stereo(left: Signal, right: Signal) -> Signal:
    return np.stack([left, right], axis=1)


# --- formats, rates, channels --------------------------------------------------------------------

FORMATS = [
    ("wav", "PCM_16", 2.0**-15),
    ("wav", "PCM_24", 2.0**-23),
    ("wav", "FLOAT", 0.0),
    ("flac", "PCM_16", 2.0**-15),
    ("flac", "PCM_24", 2.0**-23),
]


@pytest.mark.parametrize("sr", [22050, 44100, 48000])
@pytest.mark.parametrize(("ext", "subtype", "lsb"), FORMATS)
def test_mono_files_read_as_float32_mono_at_their_sample_rate(
    tmp_path: Path, sr: int, ext: str, subtype: str, lsb: float
) -> None:
    tone = pluck(sr)
    clip = read_audio(write(tmp_path / f"take.{ext}", tone, sr, subtype))

    assert isinstance(clip, AudioClip)
    assert (clip.sample_rate, clip.channels, clip.path) == (sr, 1, tmp_path / f"take.{ext}")
    assert clip.samples.dtype == np.float32
    assert clip.samples.ndim == 1
    assert clip.samples.flags.c_contiguous
    assert clip.duration_s == pytest.approx(1.0, abs=1 / sr)
    np.testing.assert_allclose(clip.samples, tone, rtol=0, atol=lsb)


@pytest.mark.parametrize("sr", [22050, 44100, 48000])
@pytest.mark.parametrize(("ext", "subtype", "lsb"), FORMATS)
def test_stereo_files_read_as_one_contiguous_channel(
    tmp_path: Path, sr: int, ext: str, subtype: str, lsb: float
) -> None:
    tone = pluck(sr)
    path = write(tmp_path / f"take.{ext}", stereo(tone, 0.5 * tone), sr, subtype)

    left, right, mixed = (read_audio(path, ch) for ch in (1, 2, "mix"))

    for clip in (left, right, mixed):
        assert (clip.sample_rate, clip.channels) == (sr, 2)
        assert clip.samples.dtype == np.float32
        assert clip.samples.flags.c_contiguous
    np.testing.assert_allclose(left.samples, tone, rtol=0, atol=lsb)
    np.testing.assert_allclose(right.samples, 0.5 * tone, rtol=0, atol=lsb)
    np.testing.assert_allclose(mixed.samples, 0.75 * tone, rtol=0, atol=lsb)


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_every_wav_sample_width_decodes_to_the_same_samples_libsndfile_gives(
    tmp_path: Path, subtype: str
) -> None:
    path = write(tmp_path / "take.wav", stereo(pluck(44100), pluck(44100, hz=247.0)), subtype=subtype)

    expected, _ = sf.read(path, dtype="float32", always_2d=True)

    np.testing.assert_array_equal(read_audio(path, 1).samples, expected[:, 0])
    np.testing.assert_array_equal(read_audio(path, 2).samples, expected[:, 1])


@pytest.mark.parametrize("sr", [8000, 96000, 192000, 384000])
def test_uncommon_but_valid_sample_rates_are_read(tmp_path: Path, sr: int) -> None:
    clip = read_audio(write(tmp_path / "take.wav", pluck(sr, seconds=0.1), sr))
    assert clip.sample_rate == sr
    assert len(clip.samples) == int(sr * 0.1)


@pytest.mark.parametrize("sr", [4000, 7999, 384001])
def test_sample_rates_outside_8k_to_384k_are_refused(tmp_path: Path, sr: int) -> None:
    path = write(tmp_path / "take.wav", pluck(sr, seconds=0.1), sr)
    with pytest.raises(AudioFileError, match=rf"unsupported sample rate {sr} Hz"):
        read_audio(path)
    with pytest.raises(AudioFileError, match="unsupported sample rate"):
        iter_audio_blocks(path, 1024)


def test_rf64_wav_is_read(tmp_path: Path) -> None:
    tone = pluck(48000)
    clip = read_audio(write(tmp_path / "take.wav", tone, 48000, format="RF64"))
    np.testing.assert_allclose(clip.samples, tone, atol=2.0**-15)


def test_wav_from_a_pipe_with_length_unknown_placeholders_is_read_whole(tmp_path: Path) -> None:
    # ffmpeg and sox writing to a pipe cannot seek back, so they leave 0xFFFFFFFF as both sizes.
    tone = pluck(44100)
    path = write(tmp_path / "piped.wav", tone)
    raw = bytearray(path.read_bytes())
    raw[4:8] = b"\xff\xff\xff\xff"
    raw[data_offset(path) - 4 : data_offset(path)] = b"\xff\xff\xff\xff"
    path.write_bytes(raw)

    np.testing.assert_allclose(read_audio(path).samples, tone, atol=2.0**-15)


def test_wav_with_chunks_after_the_audio_is_not_mistaken_for_truncated(tmp_path: Path) -> None:
    tone = pluck(44100)
    path = write(tmp_path / "tagged.wav", tone)
    info = b"INFOISFT" + struct.pack("<I", 6) + b"pedal\x00"
    raw = bytearray(path.read_bytes() + b"LIST" + struct.pack("<I", len(info)) + info)
    raw[4:8] = struct.pack("<I", len(raw) - 8)
    path.write_bytes(raw)

    assert len(read_audio(path).samples) == len(tone)


def test_flac_from_a_streaming_encoder_without_a_length_is_read_to_its_end(tmp_path: Path) -> None:
    # An encoder writing to a pipe leaves STREAMINFO's total-samples at 0 ("unknown"); libsndfile
    # then reports 2**63 - 1 frames, and soundfile's own read() fails at the end of such a stream.
    tone = pluck(44100, seconds=2.0)
    path = write(tmp_path / "piped.flac", tone)
    raw = bytearray(path.read_bytes())
    raw[21] &= 0xF0  # the 36-bit total-samples field: low nibble of byte 21, then bytes 22-25
    raw[22:26] = bytes(4)
    path.write_bytes(raw)
    assert sf.info(path).frames == 2**63 - 1

    clip = read_audio(path)
    blocks = iter_audio_blocks(path, 1000)

    np.testing.assert_allclose(clip.samples, tone, atol=2.0**-15)
    assert blocks.frames is None
    assert blocks.duration_s is None
    np.testing.assert_array_equal(np.concatenate(list(blocks)), clip.samples)


# --- channel choice ------------------------------------------------------------------------------


def test_auto_takes_channel_2_when_channel_1_is_a_near_silent_mic_input(tmp_path: Path) -> None:
    # A Scarlett Solo: mic input (channel 1) open but unused, guitar on the instrument input (2).
    guitar = pluck(48000)
    path = write(tmp_path / "scarlett.wav", stereo(noise(len(guitar), -85.0), guitar), 48000, "PCM_24")

    clip = read_audio(path)

    np.testing.assert_array_equal(clip.samples, read_audio(path, 2).samples)
    assert clip.channels == 2


def test_auto_takes_channel_1_when_the_guitar_is_on_channel_1(tmp_path: Path) -> None:
    guitar = pluck(44100)
    path = write(tmp_path / "take.flac", stereo(guitar, noise(len(guitar), -70.0)))
    np.testing.assert_array_equal(read_audio(path).samples, read_audio(path, 1).samples)


def test_auto_mixes_when_both_channels_carry_the_guitar(tmp_path: Path) -> None:
    guitar = pluck(44100)
    path = write(tmp_path / "take.wav", stereo(guitar, 0.3 * guitar + noise(len(guitar), -40.0)))

    np.testing.assert_array_equal(read_audio(path).samples, read_audio(path, "mix").samples)


def test_auto_mixes_a_multichannel_file_with_two_live_channels(tmp_path: Path) -> None:
    guitar = pluck(44100)
    quiet = noise(len(guitar), -90.0)
    path = write(tmp_path / "interface.wav", np.stack([quiet, guitar, quiet, 0.5 * guitar], axis=1))

    clip = read_audio(path)

    assert clip.channels == 4
    np.testing.assert_array_equal(clip.samples, read_audio(path, "mix").samples)


@pytest.mark.parametrize(
    ("rms", "choice"),
    [
        ([0.3], 1),
        ([0.0], 1),
        ([0.0001, 0.2], 2),
        ([0.2, 0.0001], 1),
        ([0.2, 0.0], 1),
        ([1.0, 0.1], 1),  # exactly 20 dB quieter counts as unused
        ([1.0, 0.1001], "mix"),  # just under 20 dB quieter is a live channel
        ([0.2, 0.1], "mix"),
        ([0.0, 0.0], "mix"),  # nothing anywhere: mix, and let the silence check speak
        ([0.001, 0.3, 0.002, 0.0], 3 - 1),
        ([0.2, 0.2, 0.001], "mix"),
    ],
)
def test_choose_channel_picks_a_dominant_channel_else_mixes(rms: list[float], choice: int | str) -> None:
    assert choose_channel(rms) == choice


def test_choose_channel_threshold_is_20_db() -> None:
    assert GUITAR_DOMINANCE_DB == 20.0


def test_choose_channel_needs_at_least_one_channel() -> None:
    with pytest.raises(ValueError, match="no channels"):
        choose_channel([])


def test_explicit_channel_past_the_last_one_is_an_error_naming_both_numbers(tmp_path: Path) -> None:
    path = write(tmp_path / "take.wav", stereo(pluck(44100), pluck(44100)))
    for call in (lambda: read_audio(path, 3), lambda: iter_audio_blocks(path, 512, 3)):
        with pytest.raises(AudioFileError) as err:
            call()
        assert str(err.value) == f"{path}: channel 3 requested but the file has only 2 channels"


def test_explicit_channel_2_of_a_mono_file_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "take.wav", pluck(44100))
    with pytest.raises(AudioFileError, match=r"channel 2 requested but the file has only 1 channel$"):
        read_audio(path, 2)


@pytest.mark.parametrize("channel", [0, -1, True, "left", "2", 1.0, None])
def test_malformed_channel_spec_is_a_config_error(tmp_path: Path, channel: object) -> None:
    path = write(tmp_path / "take.wav", pluck(44100))
    with pytest.raises(ConfigError, match="channel must be 'auto', 'mix' or a channel number"):
        read_audio(path, channel)  # type: ignore[arg-type]


# --- errors: every failure is one line that starts with the path ---------------------------------


def _missing(tmp: Path) -> Path:
    return tmp / "take.wav"


def _empty(tmp: Path) -> Path:
    (tmp / "take.wav").touch()
    return tmp / "take.wav"


def _text_as_wav(tmp: Path) -> Path:
    (tmp / "notes.wav").write_text("E A D G B E\nplay the blues scale at 90 bpm\n")
    return tmp / "notes.wav"


def _wav_cut_in_half(tmp: Path) -> Path:
    return cut(write(tmp / "take.wav", pluck(44100)), 0.5)


def _stereo_24_bit_wav_cut_in_half(tmp: Path) -> Path:
    return cut(write(tmp / "take.wav", stereo(pluck(48000), pluck(48000)), 48000, "PCM_24"), 0.5)


def _wav_missing_its_last_sample(tmp: Path) -> Path:
    path = write(tmp / "take.wav", pluck(44100))
    return cut(path, path.stat().st_size - 2)


def _rf64_cut_in_half(tmp: Path) -> Path:
    return cut(write(tmp / "take.wav", pluck(44100), format="RF64"), 0.5)


def _wav_cut_inside_its_header(tmp: Path) -> Path:
    return cut(write(tmp / "take.wav", pluck(44100)), 30)


def _wav_cut_right_after_its_header(tmp: Path) -> Path:
    path = write(tmp / "take.wav", pluck(44100))
    return cut(path, data_offset(path))


def _wav_of_a_recorder_that_died(tmp: Path) -> Path:
    # libsndfile only writes the real sizes on close(): a copy taken before that is what a
    # recorder killed mid-take (or a power cut) leaves behind.
    with sf.SoundFile(tmp / "recording.wav", "w", 44100, 1, "PCM_16") as live:
        live.write(pluck(44100))
        live.flush()
        shutil.copy(tmp / "recording.wav", tmp / "take.wav")
    return tmp / "take.wav"


def _flac_cut_in_half(tmp: Path) -> Path:
    return cut(write(tmp / "take.flac", pluck(44100, seconds=2.0)), 0.5)


def _flac_missing_its_last_byte(tmp: Path) -> Path:
    path = write(tmp / "take.flac", pluck(44100, seconds=2.0))
    return cut(path, path.stat().st_size - 1)


def _flac_cut_inside_its_header(tmp: Path) -> Path:
    return cut(write(tmp / "take.flac", pluck(44100)), 20)


def _flac_corrupted_in_the_middle(tmp: Path) -> Path:
    path = write(tmp / "take.flac", pluck(44100, seconds=2.0) + noise(88200, -30.0))
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 16] = bytes(b ^ 0xFF for b in raw[middle : middle + 16])
    path.write_bytes(raw)
    return path


def _wav_without_frames(tmp: Path) -> Path:
    return write(tmp / "take.wav", np.zeros(0, np.float32))


def _float_wav_with_nan(tmp: Path) -> Path:
    tone = pluck(44100)
    tone[1000] = np.nan
    return write(tmp / "take.wav", tone, subtype="FLOAT")


ERROR_CASES: list[tuple[Callable[[Path], Path], str]] = [
    (_missing, "no such file"),
    (_empty, "file is empty (0 bytes)"),
    (_text_as_wav, "not a WAV or FLAC audio file"),
    (_wav_cut_in_half, "truncated: header promises 44100 frames, only "),
    (_stereo_24_bit_wav_cut_in_half, "truncated: header promises 48000 frames, only "),
    (_wav_missing_its_last_sample, "truncated: header promises 44100 frames, only 44099 present"),
    (_rf64_cut_in_half, "truncated: header promises 44100 frames, only"),
    (_wav_cut_inside_its_header, "truncated: file ends inside the WAV header (30 bytes)"),
    (_wav_cut_right_after_its_header, "truncated: header promises 44100 frames, only 0 present"),
    (_wav_of_a_recorder_that_died, "truncated: the WAV header was never finalised"),
    (_flac_cut_in_half, "corrupt or truncated audio data: header promises 88200 frames, only"),
    (_flac_missing_its_last_byte, "corrupt or truncated audio data: header promises 88200 frames, only"),
    (_flac_cut_inside_its_header, "corrupt or truncated audio data ("),
    (_flac_corrupted_in_the_middle, "corrupt or truncated audio data"),
    (_wav_without_frames, "no audio frames"),
    (_float_wav_with_nan, "contains NaN or infinite samples"),
]

ERROR_IDS = [make.__name__.strip("_") for make, _ in ERROR_CASES]


@pytest.mark.parametrize(("make", "message"), ERROR_CASES, ids=ERROR_IDS)
def test_unreadable_files_raise_audio_file_error_with_one_line_starting_with_the_path(
    tmp_path: Path, make: Callable[[Path], Path], message: str
) -> None:
    path = make(tmp_path)

    with pytest.raises(AudioFileError) as err:
        read_audio(path)

    text = str(err.value)
    assert text.startswith(f"{path}: {message}"), text
    assert "\n" not in text
    assert isinstance(err.value, FretCoachError)
    assert isinstance(err.value, OSError)  # callers that only know the built-ins still catch it


@pytest.mark.parametrize(("make", "message"), ERROR_CASES, ids=ERROR_IDS)
def test_streaming_refuses_the_same_files_before_or_while_yielding(
    tmp_path: Path, make: Callable[[Path], Path], message: str
) -> None:
    path = make(tmp_path)
    with pytest.raises(AudioFileError) as err:
        for _ in iter_audio_blocks(path, 4096):
            pass
    assert str(err.value).startswith(f"{path}: ")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "make",
    [_wav_cut_in_half, _wav_of_a_recorder_that_died, _flac_cut_in_half, _flac_missing_its_last_byte],
)
def test_truncated_files_are_refused_before_a_single_block_is_yielded(
    tmp_path: Path, make: Callable[[Path], Path]
) -> None:
    with pytest.raises(AudioFileError, match="truncated"):
        iter_audio_blocks(make(tmp_path), 512, channel=1)


@pytest.mark.parametrize(
    ("channels", "subtype", "frame_bytes"), [(1, "PCM_16", 2), (2, "PCM_24", 6), (2, "FLOAT", 8)]
)
def test_truncated_wav_message_counts_the_frames_actually_present(
    tmp_path: Path, channels: int, subtype: str, frame_bytes: int
) -> None:
    # libsndfile alone would not notice: it clamps the length to the bytes present and reads those.
    tone = pluck(44100)
    path = write(tmp_path / "take.wav", tone if channels == 1 else stereo(tone, tone), subtype=subtype)
    cut(path, 0.5)
    present = (path.stat().st_size - data_offset(path)) // frame_bytes
    assert sf.info(path).frames == present

    with pytest.raises(AudioFileError) as err:
        read_audio(path)

    assert str(err.value) == f"{path}: truncated: header promises 44100 frames, only {present} present"


def test_truncated_flac_message_keeps_libsndfile_reason_and_cause(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError) as err:
        read_audio(_flac_cut_in_half(tmp_path))
    assert str(err.value).endswith("(flac decoder lost sync)")
    assert isinstance(err.value.__cause__, sf.LibsndfileError)


def test_directory_is_an_error_named_as_the_caller_spelled_it(tmp_path: Path) -> None:
    (tmp_path / "takes").mkdir()
    spelled = f"{tmp_path}/takes/"
    with pytest.raises(AudioFileError) as err:
        read_audio(spelled)
    assert str(err.value) == f"{spelled}: is a directory"


def test_unreadable_file_is_permission_denied(tmp_path: Path) -> None:
    path = write(tmp_path / "take.wav", pluck(44100))
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("this user reads files regardless of their mode (root)")
        with pytest.raises(AudioFileError) as err:
            read_audio(path)
        assert str(err.value) == f"{path}: permission denied"
    finally:
        path.chmod(0o644)


def test_a_file_name_with_a_newline_still_gives_a_one_line_message(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError) as err:
        read_audio(tmp_path / "take\n2.wav")
    assert "\n" not in str(err.value)
    assert str(err.value).endswith("take\\n2.wav: no such file")


def test_low_level_error_is_kept_as_the_cause(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError) as err:
        read_audio(_missing(tmp_path))
    assert isinstance(err.value.__cause__, FileNotFoundError)


# --- silence ---------------------------------------------------------------------------------------


def test_all_zero_take_is_silent_at_minus_infinity(tmp_path: Path) -> None:
    path = write(tmp_path / "take.wav", np.zeros(44100, np.float32))
    with pytest.raises(SilentAudioError) as err:
        read_audio(path)
    assert str(err.value) == f"{path}: silent (peak -inf dBFS, below -70 dBFS)"
    assert isinstance(err.value, FretCoachError)


def test_take_peaking_below_the_threshold_is_silent_and_reports_its_peak(tmp_path: Path) -> None:
    path = write(tmp_path / "take.wav", np.full(4410, 10 ** (-80 / 20), np.float32), subtype="FLOAT")
    with pytest.raises(SilentAudioError, match=r"silent \(peak -80\.0 dBFS, below -70 dBFS\)$"):
        read_audio(path)


def test_silence_threshold_is_adjustable(tmp_path: Path) -> None:
    path = write(tmp_path / "take.wav", pluck(44100, amp=10 ** (-60 / 20)), subtype="FLOAT")
    assert len(read_audio(path).samples) == 44100
    with pytest.raises(SilentAudioError, match="below -50 dBFS"):
        read_audio(path, silence_dbfs=-50.0)


def test_silence_is_judged_on_the_chosen_channel(tmp_path: Path) -> None:
    guitar = pluck(44100)
    path = write(tmp_path / "take.wav", stereo(np.zeros_like(guitar), guitar))
    assert len(read_audio(path, 2).samples) == len(guitar)
    with pytest.raises(SilentAudioError):
        read_audio(path, 1)


# --- streaming -------------------------------------------------------------------------------------

STREAM_CASES: list[tuple[str, str, int, ChannelSpec]] = [
    ("mono.wav", "PCM_16", 1, "auto"),
    ("mic_and_guitar.flac", "PCM_24", 2, "auto"),
    ("both_live.wav", "FLOAT", 2, "auto"),
    ("both_live.flac", "PCM_16", 2, "mix"),
    ("pick.wav", "PCM_24", 2, 1),
]


@pytest.mark.parametrize("block_frames", [1, 7, 512, 4096, 65536, 65537, 200_000])
@pytest.mark.parametrize("case", STREAM_CASES, ids=[f"{c[0]}-{c[3]}" for c in STREAM_CASES])
def test_blocks_concatenated_equal_read_audio_exactly(
    tmp_path: Path, block_frames: int, case: tuple[str, str, int, ChannelSpec]
) -> None:
    name, subtype, channels, channel = case
    guitar = pluck(48000, seconds=2.5)
    other = noise(len(guitar), -80.0) if name.startswith("mic") else 0.4 * pluck(48000, seconds=2.5, hz=247.0)
    data = guitar if channels == 1 else stereo(other, guitar)
    path = write(tmp_path / name, data, 48000, subtype)

    blocks = iter_audio_blocks(path, block_frames, channel)
    whole = read_audio(path, channel)
    got = list(blocks)

    np.testing.assert_array_equal(np.concatenate(got), whole.samples)
    assert all(len(b) == block_frames for b in got[:-1])
    assert 0 < len(got[-1]) <= block_frames
    assert all(b.dtype == np.float32 and b.ndim == 1 and b.flags.c_contiguous for b in got)


def test_blocks_expose_sample_rate_length_and_the_channel_auto_chose(tmp_path: Path) -> None:
    guitar = pluck(48000)
    path = write(tmp_path / "scarlett.flac", stereo(noise(len(guitar), -85.0), guitar), 48000, "PCM_24")

    blocks = iter_audio_blocks(path, 1024)

    assert isinstance(blocks, AudioBlocks)
    assert (blocks.sample_rate, blocks.channels, blocks.frames, blocks.channel) == (48000, 2, 48000, 2)
    assert blocks.duration_s == pytest.approx(1.0)
    assert blocks.path == path


def test_blocks_can_be_iterated_more_than_once(tmp_path: Path) -> None:
    blocks = iter_audio_blocks(write(tmp_path / "take.wav", pluck(44100)), 1000)
    first, second = np.concatenate(list(blocks)), np.concatenate(list(blocks))
    np.testing.assert_array_equal(first, second)


def test_yielded_blocks_are_independent_arrays(tmp_path: Path) -> None:
    # Consumers may keep blocks (overlapping analysis windows): no buffer may be reused under them.
    blocks = list(iter_audio_blocks(write(tmp_path / "take.wav", pluck(44100)), 1000))
    assert not any(np.shares_memory(a, b) for a, b in itertools.pairwise(blocks))


@pytest.mark.parametrize("block_frames", [0, -1, 1.5, True])
def test_block_size_must_be_a_positive_integer(tmp_path: Path, block_frames: object) -> None:
    with pytest.raises(ValueError, match="block_frames must be a positive integer"):
        iter_audio_blocks(write(tmp_path / "take.wav", pluck(44100)), block_frames)  # type: ignore[arg-type]


def test_file_removed_after_checking_is_reported_when_iterated(tmp_path: Path) -> None:
    path = write(tmp_path / "take.wav", pluck(44100))
    blocks = iter_audio_blocks(path, 1000)
    path.unlink()
    with pytest.raises(AudioFileError, match="no such file"):
        list(blocks)
