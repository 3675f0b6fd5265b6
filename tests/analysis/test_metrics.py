import itertools

import numpy as np
import pytest

from device.analysis import Note, Scorer, pitch_tolerance_cents, score_notes, timing_tolerance_ms


def notes_at(
    onsets: list[float] | np.ndarray, cents: float | list[float] = 0.0, in_scale: list[bool] | None = None
) -> list[Note]:
    n = len(onsets)
    c = cents if isinstance(cents, list) else [cents] * n
    flags = in_scale or [True] * n
    return [Note(float(t), 60, c[i], 0.2, flags[i], 1.0, 261.6, -20.0) for i, t in enumerate(onsets)]


def test_no_notes_gives_no_scores_and_no_weakest() -> None:
    m = score_notes([])
    assert (m.pitch_accuracy, m.scale_conformity, m.timing_stability, m.weakest) == (None, None, None, None)
    assert m.notes_played == 0


def test_scale_conformity_is_the_share_of_in_scale_notes_and_counts_add_up() -> None:
    flags = [True] * 15 + [False] * 5
    m = score_notes(notes_at(np.arange(20) * 0.25, in_scale=flags))
    assert m.scale_conformity == 75.0
    assert (m.notes_played, m.correct_notes, m.wrong_notes) == (20, 15, 5)


def test_pitch_accuracy_falls_as_notes_go_out_of_tune_and_strictness_sets_the_tolerance() -> None:
    onsets = np.arange(10) * 0.3
    scores = [score_notes(notes_at(onsets, c)).pitch_accuracy for c in (0, 10, 20, 30, 45)]
    assert scores[0] == 100.0
    assert all(a > b for a, b in itertools.pairwise(scores))
    # At the half-credit tolerance a note scores exactly 50.
    for s in (0.0, 0.5, 1.0):
        t = pitch_tolerance_cents(s)
        assert score_notes(notes_at(onsets, t), strictness=s).pitch_accuracy == pytest.approx(50.0, abs=0.1)
    lenient = score_notes(notes_at(onsets, 20), strictness=0.0).pitch_accuracy
    strict = score_notes(notes_at(onsets, 20), strictness=1.0).pitch_accuracy
    assert lenient is not None and strict is not None and lenient > strict


def test_timing_on_the_grid_is_perfect_whatever_the_phase_and_subdivision() -> None:
    for sub in (1, 2, 3, 4):
        onsets = 0.137 + np.arange(24) * 60 / 90 / sub
        assert score_notes(notes_at(onsets), bpm=90).timing_stability == 100.0


def test_timing_mixing_quarters_and_eighths_fits_the_eighth_grid() -> None:
    beats = [0, 1, 1.5, 2, 3, 3.5, 4, 4.5, 5, 6, 7, 7.5]
    onsets = 0.3 + np.array(beats) * 60 / 100
    assert score_notes(notes_at(onsets), bpm=100).timing_stability == 100.0


def test_timing_falls_monotonically_with_jitter_with_and_without_bpm() -> None:
    rng = np.random.default_rng(7)
    base = 0.5 + np.arange(32) * 0.3
    noise = rng.uniform(-1, 1, 32)
    with_bpm = [score_notes(notes_at(base + j * noise), bpm=100).timing_stability for j in (0, 0.01, 0.03, 0.06)]
    free = [score_notes(notes_at(base + j * noise)).timing_stability for j in (0, 0.01, 0.03, 0.06)]
    for series in (with_bpm, free):
        assert series[0] == 100.0
        assert all(a is not None and b is not None and a > b for a, b in itertools.pairwise(series))


def test_timing_strictness_sets_the_tolerance_in_milliseconds() -> None:
    t = timing_tolerance_ms(0.5) / 1000
    onsets = 0.5 + np.arange(16) * 0.3
    onsets[1::4] += t  # every fourth note late by exactly the tolerance: it scores 50
    m = score_notes(notes_at(onsets), bpm=200)  # 0.3 s is a beat at 200 BPM
    assert m.timing_stability == pytest.approx(87.5, abs=0.5)


def test_free_timing_forgives_a_slow_tempo_drift() -> None:
    iois = np.linspace(0.30, 0.36, 40)  # a gradual slow-down of 20 %
    onsets = np.concatenate(([0.0], np.cumsum(iois)))
    m = score_notes(notes_at(onsets))
    assert m.timing_stability is not None and m.timing_stability > 97


def test_weakest_is_the_lowest_score() -> None:
    flags = [True, False] * 8
    m = score_notes(notes_at(np.arange(16) * 0.3, 5.0, flags), bpm=200)
    assert m.weakest == "scale_conformity"


def test_timing_needs_enough_notes() -> None:
    assert score_notes(notes_at([0.0, 0.5])).timing_stability is None
    assert score_notes(notes_at([0.0]), bpm=120).timing_stability is None


def test_rolling_scores_cover_only_the_last_window_and_session_covers_all() -> None:
    scorer = Scorer(window_s=5.0)
    scorer.add(notes_at(np.arange(0, 10, 0.5), 40.0))  # out of tune for 10 s
    scorer.add(notes_at(np.arange(10, 20, 0.5), 0.0))  # then in tune
    rolling = scorer.rolling(now_s=20.0)
    session = scorer.session()
    assert rolling.notes_played == 10 and session.notes_played == 40
    assert rolling.pitch_accuracy == 100.0
    assert session.pitch_accuracy is not None and session.pitch_accuracy < 70
