import numpy as np
import pytest

from device.analysis.decimator import Decimator, decimation_factor


@pytest.mark.parametrize(("rate", "factor"), [(8000, 1), (16000, 1), (22050, 2), (44100, 4), (48000, 4), (96000, 8)])
def test_tracking_rate_stays_at_or_above_11_khz(rate: int, factor: int) -> None:
    assert decimation_factor(rate) == factor


def test_decimated_stream_equals_filter_then_downsample_for_any_blocking() -> None:
    x = np.random.default_rng(1).standard_normal(50_000).astype(np.float32)
    ref = np.convolve(x, Decimator(4).taps)[: len(x)][::4]
    for block in (1, 7, 128, 4097, 50_000):
        d = Decimator(4)
        out = np.concatenate([d.process(x[i : i + block]) for i in range(0, len(x), block)])
        assert len(out) == len(ref)
        np.testing.assert_allclose(out, ref, atol=1e-5)


def test_guitar_band_passes_and_aliases_are_removed() -> None:
    rate = 44100
    t = np.arange(rate) / rate
    d = Decimator(4)
    passband = d.process(np.sin(2 * np.pi * 1200 * t).astype(np.float32))
    alias = Decimator(4).process(np.sin(2 * np.pi * 9000 * t).astype(np.float32))
    assert np.std(passband[500:]) == pytest.approx(np.sqrt(0.5), rel=0.02)
    assert np.std(alias[500:]) < 0.01
