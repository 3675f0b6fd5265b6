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


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_the_numpy_filter_is_scipys_firwin_and_upfirdn_to_the_bit(factor: int) -> None:
    # The decimator dropped scipy.signal (0.7 s of start-up, ~85 MB) for numpy; every number the
    # tracker sees must stay exactly what scipy computed, so the scores cannot move.
    from scipy.signal import firwin, upfirdn

    d = Decimator(factor)
    taps = firwin(16 * factor + 1, 0.8 / factor).astype(np.float32)
    assert d.taps.tobytes() == taps.tobytes()
    x = (np.random.default_rng(factor).standard_normal(20_000) * 0.3).astype(np.float32)
    skip = (len(taps) - 1) // factor
    pad = np.concatenate((np.zeros(len(taps) - 1, np.float32), x))  # the decimator's zero history
    ref = upfirdn(taps, pad, 1, factor)[skip:].astype(np.float32)
    for block in (1, 2, 3, 5, 256, 4097):
        dec = Decimator(factor)
        out = np.concatenate([dec.process(x[i : i + block]) for i in range(0, len(x), block)])
        assert out.tobytes() == ref[: len(out)].tobytes()
        assert len(out) == (len(x) + factor - 1) // factor
