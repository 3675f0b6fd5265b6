"""RingBuffer: exact order, wraparound, drop-oldest overflow, and a writer that never waits."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pytest

from device.audio import RingBuffer

Frames = npt.NDArray[np.float32]


def ramp(start: int, n: int, channels: int = 1) -> Frames:
    """Frames whose channel 0 holds their own index (exact in float32 below 2**24), channel k holds -k·index."""
    idx = np.arange(start, start + n, dtype=np.float32)
    return np.stack([idx * (1 - 2 * min(k, 1)) * max(k, 1) for k in range(channels)], axis=1)


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Make the interpreter switch threads as often as it can, so reader and writer interleave."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def test_reads_back_what_was_written_across_the_wraparound() -> None:
    ring = RingBuffer(10)
    ring.write(ramp(0, 7))
    first = ring.read(5)
    ring.write(ramp(7, 6))  # occupies slots 7, 8, 9, 0, 1, 2
    second = ring.read(100)
    assert first.frames[:, 0].tolist() == [0, 1, 2, 3, 4]
    assert second.frames[:, 0].tolist() == list(range(5, 13))
    assert (first.start, second.start) == (0, 5)
    assert ring.available == 0 and ring.overruns == 0 and ring.dropped_frames == 0


def test_exact_sample_order_across_random_block_sizes() -> None:
    rng = np.random.default_rng(1)
    ring = RingBuffer(1009, channels=2)
    written = read = 0
    got: list[Frames] = []
    for _ in range(3000):
        n = int(rng.integers(1, 400))
        if ring.free >= n:
            written += ring.write(ramp(written, n, 2))
        chunk = ring.read(int(rng.integers(1, 600)))
        assert chunk.start == read and chunk.dropped == 0
        read += len(chunk.frames)
        got.append(chunk.frames)
    got.append(ring.read(10_000).frames)
    out = np.concatenate(got)
    np.testing.assert_array_equal(out, ramp(0, written, 2))
    assert written > 300_000 and ring.overruns == 0


def test_full_ring_drops_the_oldest_frames_and_counts_them() -> None:
    ring = RingBuffer(100)
    for start in range(0, 250, 25):
        ring.write(ramp(start, 25))
    # Writes 5..10 (frames 100..249) each overwrote unread frames.
    assert ring.overruns == 6
    got = ring.read(1000)
    assert got.start == 150 and got.dropped == 150
    np.testing.assert_array_equal(got.frames[:, 0], np.arange(150, 250, dtype=np.float32))
    assert ring.dropped_frames == 150
    assert ring.frames_written == 250
    # After the overflow it carries on normally.
    ring.write(ramp(250, 10))
    assert ring.read(1000).frames[:, 0].tolist() == list(range(250, 260))


def test_a_block_longer_than_the_ring_keeps_its_newest_frames() -> None:
    ring = RingBuffer(64)
    ring.write(ramp(0, 200))
    got = ring.read(1000)
    assert got.start == 136 and got.dropped == 136
    np.testing.assert_array_equal(got.frames[:, 0], np.arange(136, 200, dtype=np.float32))


def test_int16_columns_are_scaled_straight_into_the_ring() -> None:
    ring = RingBuffer(32)
    interleaved = np.array([[1, -32768], [2, 16384], [3, 32767]], dtype=np.int16)
    ring.write(interleaved[:, 1:2], scale=1 / 32768)  # a strided view of channel 2
    got = ring.read(10).frames
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got[:, 0], np.array([-1.0, 0.5, 32767 / 32768], dtype=np.float32))


def test_reads_stop_at_a_splice_point() -> None:
    ring = RingBuffer(100)
    ring.write(ramp(0, 30))
    assert len(ring.read(100, stop_at=20).frames) == 20
    assert ring.read(100, stop_at=20).start == 20  # at the splice: reads on past it
    assert ring.available == 0


def test_stamp_pairs_the_last_frame_written_with_its_time() -> None:
    ring = RingBuffer(100)
    ring.write(ramp(0, 10), timestamp=5.0)
    ring.write(ramp(10, 4), timestamp=6.0)
    assert ring.stamp == (14, 6.0)


def test_wrong_shape_and_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="capacity"):
        RingBuffer(0)
    with pytest.raises(ValueError, match="channels"):
        RingBuffer(10, channels=0)
    with pytest.raises(ValueError, match="shape"):
        RingBuffer(10, channels=2).write(ramp(0, 4, 1))


def test_waits_time_out_and_wake_up() -> None:
    ring = RingBuffer(16)
    t0 = time.monotonic()
    assert not ring.wait_readable(0.05)
    assert time.monotonic() - t0 >= 0.04
    ring.write(ramp(0, 16))
    assert ring.wait_readable(0)
    assert not ring.wait_writable(1, 0.01)
    reader = threading.Timer(0.05, lambda: ring.read(8))
    reader.start()
    assert ring.wait_writable(8, 2.0)
    reader.join()


def test_lossless_producer_and_consumer_threads_agree_on_ten_seconds_of_audio(fast_switching: None) -> None:
    rate, seconds = 48_000, 10
    total = rate * seconds
    rng = np.random.default_rng(7)
    audio = rng.uniform(-1, 1, (total, 2)).astype(np.float32)
    ring = RingBuffer(4096, channels=2)

    def produce() -> None:
        pos = 0
        sizes = np.random.default_rng(3).integers(1, 1024, total)
        for size in sizes:
            if pos >= total:
                break
            n = min(int(size), total - pos)
            while not ring.wait_writable(n, 1.0):
                pass
            ring.write(audio[pos : pos + n])
            pos += n

    producer = threading.Thread(target=produce)
    producer.start()
    parts: list[Frames] = []
    got = 0
    deadline = time.monotonic() + 15
    while got < total and time.monotonic() < deadline:
        ring.wait_readable(0.1)
        chunk = ring.read(int(rng.integers(1, 2048))).frames
        parts.append(chunk)
        got += len(chunk)
    producer.join()
    out = np.concatenate(parts)
    assert ring.overruns == 0 and ring.dropped_frames == 0
    assert out.shape == audio.shape
    # The checksum, then the exact comparison it summarises.
    assert float(out.astype(np.float64).sum()) == float(audio.astype(np.float64).sum())
    np.testing.assert_array_equal(out, audio)


def test_a_writer_that_never_waits_never_hands_the_reader_torn_frames(fast_switching: None) -> None:
    """Ten seconds pushed as fast as possible into a small ring with a slow reader: every frame
    the reader gets is the frame it claims to be, and written = read + dropped + left."""
    total = 480_000
    ring = RingBuffer(2000, channels=2)
    done = threading.Event()

    def produce() -> None:
        pos = 0
        sizes = np.random.default_rng(5).integers(64, 700, total)
        for size in sizes:
            if pos >= total:
                break
            n = min(int(size), total - pos)
            ring.write(ramp(pos, n, 2))
            pos += n
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    delivered = dropped = 0
    reads = 0
    while not (done.is_set() and ring.available == 0):
        chunk = ring.read(1500)
        n = len(chunk.frames)
        np.testing.assert_array_equal(chunk.frames, ramp(chunk.start, n, 2))
        assert chunk.start == delivered + dropped + chunk.dropped
        delivered += n
        dropped += chunk.dropped
        reads += 1
        if reads % 8 == 0:
            time.sleep(0.0005)  # the reader falls behind now and then
    producer.join()
    assert ring.frames_written == total
    assert delivered + dropped == total
    assert ring.dropped_frames == dropped > 0
    assert ring.overruns > 0
