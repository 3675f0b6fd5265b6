"""The committed rendered takes agree with their truth, and the renderer is deterministic."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from bench import render_takes as rt
from device.analysis.scales import parse_scale

TAKES = Path(__file__).parent / "data" / "takes"
INDEX: dict[str, Any] = json.loads((TAKES / "index.json").read_text())
TRUTHS: list[dict[str, Any]] = [
    json.loads((TAKES / name).with_suffix(".json").read_text()) for name in INDEX["takes"]
]
CLEAN = {t["base_id"]: t for t in TRUTHS if t["family"] == "clean"}


def _ids(truth: dict[str, Any]) -> str:
    return str(truth["file"])


def test_fixture_set_is_small_and_covers_what_the_tests_need() -> None:
    on_disk = {p.name for p in TAKES.glob("*.flac")}
    assert on_disk == set(INDEX["takes"]), "index.json and tests/data/takes disagree: re-render the fixtures"
    assert sum(p.stat().st_size for p in TAKES.glob("*.flac")) < 4.5e6
    clean = list(CLEAN.values())
    midis = [n["midi"] for t in clean for n in t["notes"]]
    assert {t["sample_rate"] for t in clean} == {44100, 48000}
    assert min(midis) == rt.LOWEST and max(midis) >= 84
    assert {"nylon", "distortion"} <= {t["program_name"] for t in clean}
    assert any(t["guitar_channel"] == 2 for t in clean)
    faults = {(t["family"], t["level"]) for t in TRUTHS}
    assert {("detune", 2), ("out_of_scale", 3), ("jitter", 3), ("noise", 3)} <= faults


@pytest.mark.parametrize("truth", TRUTHS, ids=_ids)
def test_fixture_matches_its_truth(truth: dict[str, Any]) -> None:
    info = sf.info(str(TAKES / truth["file"]))
    assert (info.samplerate, info.channels) == (truth["sample_rate"], truth["channels"])
    assert 1 <= truth["guitar_channel"] <= truth["channels"]
    assert info.duration == pytest.approx(truth["duration_s"], abs=1e-3)
    notes = truth["notes"]
    onsets = [n["onset_s"] for n in notes]
    assert onsets == sorted(onsets) and len(set(onsets)) == len(onsets)
    assert all(a + n["duration_s"] < b for n, a, b in zip(notes, onsets, onsets[1:], strict=False)), "not monophonic"
    scale = parse_scale(truth["scale"])
    assert [n["in_scale"] for n in notes] == [scale.contains(n["midi"]) for n in notes]
    assert all(rt.LOWEST <= n["midi"] <= rt.top_note(truth["program"]) for n in notes)
    audio, _ = sf.read(str(TAKES / truth["file"]), always_2d=True)
    guitar = audio[:, truth["guitar_channel"] - 1]
    assert 20 * np.log10(np.abs(guitar).max()) == pytest.approx(truth["peak_dbfs"], abs=0.05)
    assert truth["peak_dbfs"] < -0.1
    for other in set(range(truth["channels"])) - {truth["guitar_channel"] - 1}:
        assert np.sqrt(np.mean(audio[:, other] ** 2)) < 1e-3, "the non-guitar channel should be near silent"


@pytest.mark.parametrize("truth", [t for t in TRUTHS if t["family"] != "clean"], ids=_ids)
def test_fault_take_differs_from_its_clean_twin_only_by_its_fault(truth: dict[str, Any]) -> None:
    clean, value = CLEAN[truth["base_id"]]["notes"], truth["level_value"]
    notes = truth["notes"]
    assert len(notes) == len(clean)
    if truth["family"] == "detune":
        assert [n["midi"] for n in notes] == [n["midi"] for n in clean]
        assert {abs(n["detune_cents"]) for n in notes} == {value}
    elif truth["family"] == "out_of_scale":
        changed = [(a, b) for a, b in zip(clean, notes, strict=True) if a["midi"] != b["midi"]]
        assert len(changed) == value == sum(not n["in_scale"] for n in notes)
        assert all(abs(a["midi"] - b["midi"]) == 1 for a, b in changed) and notes[0] == clean[0]
    elif truth["family"] == "jitter":
        shifts = [b["onset_s"] - a["onset_s"] for a, b in zip(clean, notes, strict=True)]
        assert max(map(abs, shifts)) <= value / 1000 + 1e-9 and any(shifts)
    else:
        assert notes == clean and truth["noise"]["snr_db"] == value


@pytest.mark.parametrize("truth", TRUTHS, ids=_ids)
def test_committed_notes_are_what_the_renderer_composes(truth: dict[str, Any]) -> None:
    """Fails when the composition changes without re-rendering the fixtures (no FluidSynth needed)."""
    base = next(b for b in rt.fixture_bases() if b.base_id == truth["base_id"])
    notes = rt.compose(base)
    if truth["family"] != "clean":
        notes = rt.apply_fault(notes, base, truth["family"], truth["level"])
    assert [asdict(n) for n in notes] == truth["notes"]


def _require_fluidsynth() -> None:
    if shutil.which("fluidsynth") and rt.SOUNDFONT.exists():
        return
    reason = f"needs fluidsynth and {rt.SOUNDFONT} (apt install fluidsynth fluid-soundfont-gm)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)  # CI installs both, so a skip there would hide a broken setup
    pytest.skip(reason)


SHORT = rt.Base("t01", 25, 140, 2, "E minor pentatonic", 44100, 45, 19, 16, -3.0, seed=7, takes=(("detune", 1),))


@pytest.mark.slow
def test_render_is_deterministic_and_sounds_from_the_first_onset(tmp_path: Path) -> None:
    _require_fluidsynth()
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    truths = rt.render_base(SHORT, first)
    assert truths == rt.render_base(SHORT, second)
    for truth in truths:
        stem = Path(truth["file"]).stem
        assert (first / f"{stem}.json").read_text() == (second / f"{stem}.json").read_text()
        audio, rate = sf.read(str(first / truth["file"]))
        again, _ = sf.read(str(second / truth["file"]))
        assert np.array_equal(audio, again), "FluidSynth rendered the same MIDI differently"
        onset = truth["notes"][0]["onset_s"]
        level = np.abs(audio)
        start = int(np.argmax(level > 0.01 * level.max())) / rate
        assert onset <= start <= onset + 0.03, f"sound starts at {start:.3f} s, first note-on at {onset} s"
        assert level[: int((onset - 0.005) * rate)].max() < 1e-3
