import numpy as np
import pytest
from synth import midi_hz, pluck

from device.analysis.octave import settle_register

RATE = 44100
SPAN = 0.12


def _cut(x: np.ndarray, start_s: float) -> np.ndarray:
    i = round(start_s * RATE)
    return x[i : i + round(SPAN * RATE)]


def _over_ringing(ringing_midi: float, new_midi: float, attack_s: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """The steady start of a new note picked while an earlier one still rings, and the
    moment before its attack."""
    x = pluck(midi_hz(ringing_midi), 1.5, RATE, amp=0.5, decay=0.8)
    new = pluck(midi_hz(new_midi), 1.0, RATE, amp=0.5)
    i = round(attack_s * RATE)
    x[i : i + len(new)] += new
    return _cut(x, attack_s + 0.02), _cut(x, attack_s - 0.03 - SPAN)


@pytest.mark.parametrize(("read_midi", "factor"), [(39, 4), (51, 2), (63, 1)])
def test_a_new_note_over_a_ringing_string_is_found_from_what_rose_at_its_attack(read_midi: int, factor: int) -> None:
    # E♭4 picked while B♭3 rings: their shared period is E♭2, where yin can land.
    window, before = _over_ringing(58, 63)
    assert settle_register(window, before, RATE, midi_hz(read_midi), min_hz=65.0, max_hz=1500.0) == factor


def test_without_the_moment_before_the_attack_the_ringing_string_keeps_the_low_reading() -> None:
    window, _ = _over_ringing(58, 63)
    assert settle_register(window, None, RATE, midi_hz(39), min_hz=65.0, max_hz=1500.0) == 1


def test_a_twelfth_down_is_lifted_by_three() -> None:
    window, before = _over_ringing(55, 67)
    assert settle_register(window, before, RATE, midi_hz(67 - 19.02), min_hz=65.0, max_hz=1500.0) == 3


def test_a_repicked_note_of_the_same_pitch_keeps_its_reading() -> None:
    window, before = _over_ringing(45, 45)
    assert settle_register(window, before, RATE, midi_hz(45), min_hz=65.0, max_hz=1500.0) == 1


def test_a_strong_second_harmonic_read_as_the_note_goes_down_an_octave() -> None:
    x = pluck(midi_hz(45), 0.5, RATE)
    assert settle_register(_cut(x, 0.05), None, RATE, midi_hz(57), min_hz=65.0, max_hz=1500.0) == 0.5


def test_no_lift_past_the_top_of_the_range() -> None:
    x = pluck(midi_hz(86), 0.5, RATE)
    window = _cut(x, 0.05)
    assert settle_register(window, None, RATE, midi_hz(74), min_hz=65.0, max_hz=1500.0) == 2
    assert settle_register(window, None, RATE, midi_hz(74), min_hz=65.0, max_hz=1100.0) == 1
