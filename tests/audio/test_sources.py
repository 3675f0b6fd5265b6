"""File and demo sources: the same ring and consumer API as a live input, at real-time pace or faster."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from device.audio import (
    AudioBlock,
    AudioSource,
    DemoSource,
    FileSource,
    RingSource,
    open_source,
    read_audio,
)
from device.audio.assets import DEMO_TAKE
from device.errors import AudioFileError, ConfigError

Signal = npt.NDArray[np.float32]


def pluck(sr: int, seconds: float, hz: float = 196.0, amp: float = 0.5) -> Signal:
    t = np.arange(int(sr * seconds)) / sr
    out: Signal = (amp * np.sin(2 * np.pi * hz * t) * np.exp(-2.0 * t)).astype(np.float32)
    return out


def write_wav(path: Path, data: Signal, sr: int) -> Path:
    sf.write(path, data, sr, subtype="FLOAT")
    return path


def drain(source: RingSource, max_frames: int = 4096, limit_s: float = 10.0) -> tuple[Signal, list[AudioBlock]]:
    """Read until the source ends; the samples and the non-empty blocks."""
    blocks: list[AudioBlock] = []
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        block = source.read(max_frames, timeout=0.5)
        if len(block):
            blocks.append(block)
        if block.ended:
            break
    else:
        pytest.fail("the source did not end")
    samples = np.concatenate([b.samples for b in blocks]) if blocks else np.zeros(0, np.float32)
    return samples, blocks


def test_a_file_at_full_speed_gives_exactly_its_samples_in_order(tmp_path: Path) -> None:
    data = np.random.default_rng(2).uniform(-0.8, 0.8, 100_003).astype(np.float32)
    path = write_wav(tmp_path / "take.wav", data, 44_100)
    # A small ring and odd block sizes: the unpaced producer must wait for room, never drop.
    with open_source("file", path=path, speed=math.inf, block_frames=777, capacity_s=0.05) as source:
        assert source.state == "running" and source.sample_rate == 44_100
        parts = []
        rng = np.random.default_rng(4)
        while True:
            block = source.read(int(rng.integers(1, 5000)), timeout=1.0)
            parts.append(block.samples)
            if block.ended:
                break
        assert source.state == "ended"
        assert source.overflows == 0 and source.dropped_frames == 0
        assert source.frames_read == source.frames_captured == len(data)
    np.testing.assert_array_equal(np.concatenate(parts), data)
    assert source.state == "closed"


def test_the_demo_take_streams_exactly_as_the_file_reader_reads_it() -> None:
    with DemoSource(speed=0, loop=False) as source:
        samples, blocks = drain(source)
    np.testing.assert_array_equal(samples, read_audio(DEMO_TAKE).samples)
    assert not any(b.gap for b in blocks)
    assert [b.frame for b in blocks] == list(np.cumsum([0] + [len(b) for b in blocks[:-1]]))


def test_the_demo_loops_seamlessly() -> None:
    take = read_audio(DEMO_TAKE).samples
    with open_source("demo", speed=math.inf) as source:
        assert source.loop
        got = 0
        parts = []
        while got < len(take) + 50_000:
            block = source.read(8192, timeout=1.0)
            assert not block.ended and not block.gap
            parts.append(block.samples)
            got += len(block)
    out = np.concatenate(parts)
    np.testing.assert_array_equal(out[: len(take)], take)
    np.testing.assert_array_equal(out[len(take) : len(take) + 50_000], take[:50_000])


def test_real_time_pace_takes_about_the_clips_duration(tmp_path: Path) -> None:
    sr = 48_000
    path = write_wav(tmp_path / "one_second.wav", pluck(sr, 1.0), sr)
    with FileSource(path, speed=1.0) as source:
        t0 = time.monotonic()
        samples, blocks = drain(source)
        elapsed = time.monotonic() - t0
    assert len(samples) == sr
    assert 0.9 <= elapsed <= 1.6
    # Blocks come as a live input's would: small and spread over the second.
    assert len(blocks) > 20
    # Each block's time is when its first sample "arrived", i.e. t0 + frame / rate.
    lag = [b.time - (t0 + b.frame / sr) for b in blocks]
    assert max(abs(x) for x in lag) < 0.15
    assert source.time_of(sr // 2) == pytest.approx(blocks[0].time + 0.5, abs=0.01)


def test_double_speed_takes_half_the_time(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "one_second.wav", pluck(44_100, 1.0), 44_100)
    with FileSource(path, speed=2.0) as source:
        t0 = time.monotonic()
        drain(source)
        assert 0.4 <= time.monotonic() - t0 <= 1.0


def test_the_guitar_channel_of_a_two_channel_file_is_picked(tmp_path: Path) -> None:
    sr = 44_100
    guitar = pluck(sr, 0.5)
    mic = (np.random.default_rng(0).standard_normal(len(guitar)) * 1e-4).astype(np.float32)
    path = write_wav(tmp_path / "solo.wav", np.stack([mic, guitar], axis=1), sr)
    for channel in ("auto", 2):
        with open_source("file", path=path, channel=channel, speed=0) as source:
            assert source.channel == 2
            samples, _ = drain(source)
        np.testing.assert_array_equal(samples, guitar)
    with open_source("file", path=path, channel="mix", speed=0) as source:
        samples, _ = drain(source)
    np.testing.assert_allclose(samples, (mic + guitar) / 2, atol=1e-7)


def test_a_paced_file_that_is_not_read_drops_the_oldest_audio_like_a_live_input(tmp_path: Path) -> None:
    sr = 44_100
    data = np.arange(sr, dtype=np.float32) / sr  # sample value = its position in the file
    path = write_wav(tmp_path / "ramp.wav", data, sr)
    with FileSource(path, speed=4.0, capacity_s=0.1) as source:
        time.sleep(0.15)  # 0.6 s of audio arrives; the ring holds 0.1 s
        assert source.overflows > 0
        skipped = 0
        for block in drain(source)[1]:
            skipped += block.dropped
            # Delivered frame + everything dropped before it = the position in the file.
            np.testing.assert_array_equal(
                block.samples, data[block.frame + skipped : block.frame + skipped + len(block)]
            )
    assert skipped == source.dropped_frames > 0.4 * sr
    assert source.frames_read + source.dropped_frames == sr


def test_sources_satisfy_the_protocol_and_close_their_thread(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "t.wav", pluck(8000, 0.2), 8000)
    source = FileSource(path, speed=1.0)
    assert isinstance(source, AudioSource)
    assert source.state == "idle"
    assert source.read(10, timeout=0).samples.size == 0  # nothing before start, no wait
    source.start()
    source.start()  # idempotent
    thread = source._thread
    assert thread is not None and thread.is_alive()
    source.close()
    source.close()
    assert not thread.is_alive() and source.state == "closed"
    block = source.read(10, timeout=None)  # a closed source never blocks
    assert block.samples.size == 0 and block.ended
    with pytest.raises(RuntimeError, match="closed"):
        source.start()


def test_bad_arguments_fail_with_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown audio source"):
        open_source("tape")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="needs a path"):
        open_source("file")
    with pytest.raises(ConfigError, match="speed"):
        open_source("demo", speed=-1)
    with pytest.raises(AudioFileError, match="no such file"):
        open_source("file", path=tmp_path / "missing.wav")
    path = write_wav(tmp_path / "mono.wav", pluck(8000, 0.1), 8000)
    with pytest.raises(AudioFileError, match="only 1 channel"):
        open_source("file", path=path, channel=2)
    with pytest.raises(ValueError, match="max_frames"):
        FileSource(path).read(0)
