"""`fretcoach sync` and `fretcoach db` against the real server, as a maintainer would type them."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import Cloud

from device.analysis import Metrics, parse_scale
from device.cli import main
from device.session import Recorder, SessionStore


@pytest.fixture
def pedal_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("FRETCOACH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FRETCOACH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FRETCOACH_USER_ID", "ana")
    return tmp_path / "data"


def _record(data_dir: Path, n: int) -> None:
    store = SessionStore.open(data_dir / "fretcoach.db")
    t = [0.0]
    rec = Recorder(store, user_id="ana", device_id="pedal-1", monotonic=lambda: t[0])
    for _ in range(n):
        rec.start(parse_scale("A minor pentatonic"), strictness=0.5, sensitivity=0.5)
        t[0] += 60
        rec.end(Metrics(80.0, 90.0, 70.0, 10, 9, 1, "timing_stability"))
    store.close()


def test_sync_reports_what_moved_then_that_nothing_is_left(
    cloud: Cloud, pedal_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    creds = cloud.device("ana")
    monkeypatch.setenv("FRETCOACH_DATABASE_URL", cloud.device_url(creds))
    _record(pedal_env, 3)
    assert main(["sync"]) == 0
    out = capsys.readouterr().out
    assert "pushed 3 sessions" in out and "nothing left queued" in out
    assert main(["sync", "--status"]) == 0
    assert capsys.readouterr().out.startswith("0 queued, 0 rejected by the server, 3 sessions recorded; last sync: 20")
    assert cloud.scalar("SELECT count(*) FROM fretcoach.sessions") == 3


def test_sync_without_a_database_keeps_everything_queued_and_exits_1(
    pedal_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _record(pedal_env, 2)
    assert main(["sync"]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("2 queued")
    assert captured.err == (
        "fretcoach: error: no cloud database configured (set FRETCOACH_DATABASE_URL); everything stays queued\n"
    )


def test_sync_to_a_down_server_is_one_line_and_exit_1(
    pedal_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FRETCOACH_DATABASE_URL", "postgresql://pedal@127.0.0.1:1/fretcoach")
    _record(pedal_env, 1)
    proc = subprocess.run(
        [sys.executable, "-m", "device.cli", "sync"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith("fretcoach: error: cannot reach the database at pedal@127.0.0.1:1/fretcoach")
    assert proc.stderr.count("\n") == 1
    assert SessionStore.open(pedal_env / "fretcoach.db").status().queued == 1


def test_db_commands_migrate_report_and_manage_device_roles(
    cloud: Cloud, pedal_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "--url", cloud.url, "migrate"]) == 0
    assert "already up to date" in capsys.readouterr().out
    assert main(["db", "--url", cloud.url, "status"]) == 0
    assert "up to date" in capsys.readouterr().out
    device_id = f"pedal-{uuid.uuid4().hex[:6]}"
    cloud.roles.append(f"fretcoach_dev_{device_id.replace('-', '_')}")
    assert main(["db", "--url", cloud.url, "create-device", "--device-id", device_id, "--user-id", "ana"]) == 0
    out = capsys.readouterr().out
    url_line = next(line for line in out.splitlines() if line.startswith("FRETCOACH_DATABASE_URL="))
    assert f"fretcoach_dev_{device_id.replace('-', '_')}:" in url_line
    assert main(["db", "--url", cloud.url, "drop-device", "--device-id", device_id]) == 0
    assert main(["db", "--url", cloud.url, "drop-device", "--device-id", device_id]) == 1
    assert capsys.readouterr().err == f"fretcoach: error: no device {device_id}\n"


def test_db_without_a_url_is_a_clear_error(pedal_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "migrate"]) == 1
    assert capsys.readouterr().err == (
        "fretcoach: error: no database URL: pass --url or set FRETCOACH_DATABASE_URL\n"
    )
