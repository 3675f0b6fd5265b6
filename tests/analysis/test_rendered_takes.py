"""The scoring engine on rendered guitar with known truth (tests/data/takes, made by
bench/render_takes.py with FluidSynth and FluidR3_GM). The benchmark runs the larger set."""

import json
from pathlib import Path
from typing import Any

import pytest

from bench.scoring_bench import Tally, evaluate, ours, run
from device.audio import read_audio

TAKES = Path(__file__).parents[1] / "data" / "takes"
# FluidR3's steel guitar at 140 BPM: each note still rings under the next, the hardest case the
# benchmark has; measured on its own, the figures below are over the other bases.
RINGING = "f07"


@pytest.fixture(scope="module")
def takes() -> list[dict[str, Any]]:
    index = json.loads((TAKES / "index.json").read_text())
    return [json.loads((TAKES / Path(n).with_suffix(".json")).read_text()) for n in index["takes"]]


@pytest.fixture(scope="module")
def plain(takes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [t for t in takes if t["base_id"] != RINGING]


@pytest.fixture(scope="module")
def tally(plain: list[dict[str, Any]]) -> Tally:
    return run(ours, plain, TAKES)


@pytest.fixture(scope="module")
def figures(tally: Tally, plain: list[dict[str, Any]]) -> dict[str, Any]:
    return evaluate(tally, plain)


def metrics(tally: Tally, name: str) -> dict[str, Any]:
    return tally.per_take[name]["metrics"]  # type: ignore[no-any-return]


def test_fixture_set_covers_what_the_engine_must_handle(takes: list[dict[str, Any]]) -> None:
    assert {t["sample_rate"] for t in takes} == {44100, 48000}
    assert {"clean", "detune", "out_of_scale", "jitter", "noise"} <= {t["family"] for t in takes}
    assert any(t.get("guitar_channel") == 2 for t in takes)
    assert len({t["program"] for t in takes}) >= 5
    midis = [n["midi"] for t in takes for n in t["notes"]]
    assert min(midis) <= 42 and max(midis) >= 84


def test_onsets_are_found_within_50_ms(figures: dict[str, Any]) -> None:
    assert figures["onset_f1"] >= 0.95
    assert figures["onset_precision"] >= 0.95


def test_matched_notes_have_the_right_pitch_and_no_octave_slips(figures: dict[str, Any]) -> None:
    assert figures["note_accuracy"] >= 0.98
    assert figures["octave_error_rate"] <= 0.01


def test_notes_over_ringing_steel_strings_keep_their_register(takes: list[dict[str, Any]]) -> None:
    ringing = run(ours, [t for t in takes if t["base_id"] == RINGING], TAKES).summary()
    # Without the register check from what rose at each attack: 25 % octave errors, 0.58 accuracy.
    assert ringing["octave_error_rate"] <= 0.1
    assert ringing["note_accuracy"] >= 0.75
    assert ringing["onset_precision"] >= 0.95


def test_a_detuned_twin_reads_detuned_by_the_bend_within_5_cents(figures: dict[str, Any]) -> None:
    assert figures["relative_cents_mae"] <= 5.0
    assert figures["relative_cents_p95"] <= 10.0


def test_every_fault_lowers_its_own_score(tally: Tally) -> None:
    assert (
        metrics(tally, "f01_detune2.flac")["pitch_accuracy"] < metrics(tally, "f01_clean.flac")["pitch_accuracy"] - 20
    )
    assert (
        metrics(tally, "f02_out_of_scale3.flac")["scale_conformity"]
        < metrics(tally, "f02_clean.flac")["scale_conformity"] - 15
    )
    assert (
        metrics(tally, "f03_jitter3.flac")["timing_stability"]
        < metrics(tally, "f03_clean.flac")["timing_stability"] - 15
    )


def test_noise_and_hum_do_not_move_the_scores(figures: dict[str, Any]) -> None:
    assert figures["noise_max_score_drift"] <= 3.0


def test_scale_conformity_matches_the_truth_share_of_in_scale_notes(figures: dict[str, Any]) -> None:
    assert figures["conformity_error_mean"] <= 5.0
    assert figures["conformity_error_max"] <= 10.0


def test_clean_takes_score_high_on_everything(tally: Tally, plain: list[dict[str, Any]]) -> None:
    for t in plain:
        if t["family"] == "clean":
            m = metrics(tally, t["file"])
            assert m["pitch_accuracy"] >= 90 and m["timing_stability"] >= 90 and m["scale_conformity"] == 100


def test_the_guitar_channel_of_a_stereo_interface_is_found(takes: list[dict[str, Any]]) -> None:
    for t in takes:
        if t.get("guitar_channel") == 2:
            auto = read_audio(TAKES / t["file"])
            picked = read_audio(TAKES / t["file"], 2)
            assert auto.channels == 2
            assert (auto.samples == picked.samples).all()
