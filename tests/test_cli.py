import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from synth import phrase

from device.cli import main

A_MINOR_PENT = [45, 48, 50, 52, 55, 57, 58, 60]  # 58 (A#) is the one wrong note


@pytest.fixture
def take(tmp_path: Path) -> Path:
    path = tmp_path / "take.flac"
    sf.write(path, phrase(A_MINOR_PENT, 0.3, 48000), 48000, subtype="PCM_16")
    return path


def test_analyze_json_prints_one_object_per_file_with_notes_and_metrics(
    take: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stereo = tmp_path / "stereo.wav"
    mono = phrase(A_MINOR_PENT, 0.3, 44100)
    sf.write(stereo, np.stack([mono * 0.001, mono], axis=1), 44100)  # guitar on channel 2
    code = main(["analyze", str(take), str(stereo), "--scale", "A minor pentatonic", "--bpm", "100", "--json"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        r = json.loads(line)
        assert [n["midi"] for n in r["notes"]] == A_MINOR_PENT
        assert [n["in_scale"] for n in r["notes"]] == [True] * 6 + [False, True]
        assert set(r["notes"][0]) >= {"onset_s", "midi", "cents", "in_scale", "duration_s", "confidence"}
        m = r["metrics"]
        assert (m["notes_played"], m["correct_notes"], m["wrong_notes"]) == (8, 7, 1)
        assert m["scale_conformity"] == 87.5
        assert m["weakest"] == "scale_conformity"
        assert m["pitch_accuracy"] > 95 and m["timing_stability"] > 90
        assert r["duration_s"] == pytest.approx(3.7, abs=0.05)


def test_analyze_table_is_readable(take: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(take), "--scale", "a minor pentatonic"]) == 0
    out = capsys.readouterr().out
    assert "A minor pentatonic" in out and "A#3" in out and "NO" in out
    assert "scale conformity  87.5" in out
    assert "weakest: scale conformity" in out


def test_a_bad_file_among_good_ones_is_one_error_line_and_a_nonzero_exit(
    take: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bogus = tmp_path / "notes.wav"
    bogus.write_text("not audio at all")
    code = main(["analyze", str(bogus), str(take), "--scale", "A minor pentatonic", "--json"])
    captured = capsys.readouterr()
    assert code == 1
    assert len(captured.out.strip().splitlines()) == 1  # the good file is still scored
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fretcoach: error: ") and "notes.wav" in err[0]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "device.cli", *args], check=False, capture_output=True, text=True, cwd=cwd, timeout=60
    )


def _bad_file(kind: str, d: Path) -> Path:
    path = d / f"{kind}.wav"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "silent":
        sf.write(path, np.zeros(44100, np.float32), 44100)
    return path


@pytest.mark.parametrize(("kind", "expect"), [("missing", "no such file"), ("empty", "empty"), ("silent", "silent")])
def test_bad_input_never_shows_a_traceback(kind: str, expect: str, tmp_path: Path) -> None:
    path = _bad_file(kind, tmp_path)
    proc = _run("analyze", str(path), "--scale", "A minor pentatonic", cwd=Path(__file__).parents[1])
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0]


def test_truncated_file_is_an_error_not_a_score(take: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.flac"
    data = take.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    proc = _run("analyze", str(cut), "--scale", "A minor pentatonic", cwd=Path(__file__).parents[1])
    assert proc.returncode == 1 and proc.stdout == ""
    assert "Traceback" not in proc.stderr and "cut.flac" in proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--scale", "H major"],
        ["--scale", "A minor", "--strictness", "2"],
        ["--scale", "A minor", "--bpm", "fast"],
        ["--scale", "A minor", "--channel", "0"],
    ],
)
def test_bad_options_are_one_clear_error(take: Path, args: list[str]) -> None:
    proc = _run("analyze", str(take), *args, cwd=Path(__file__).parents[1])
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_an_invalid_config_file_setting_is_a_clear_error(take: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "fretcoach.env"
    cfg.write_text("FRETCOACH_STRICTNESS=7\n")
    proc = _run("--config", str(cfg), "analyze", str(take), "--scale", "A minor", cwd=Path(__file__).parents[1])
    assert proc.returncode == 1
    expected = "fretcoach: error: invalid setting strictness: Input should be less than or equal to 1"
    assert proc.stderr.strip() == expected


def test_config_file_sets_the_defaults(take: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "fretcoach.env"
    cfg.write_text("FRETCOACH_STRICTNESS=0.9\nFRETCOACH_SENSITIVITY=0.2\n")
    assert main(["--config", str(cfg), "analyze", str(take), "--scale", "A minor pentatonic", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert (r["strictness"], r["sensitivity"]) == (0.9, 0.2)
