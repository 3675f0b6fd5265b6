"""The service unit (systemd-analyze verify) and install.sh in a scratch root."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "systemd" / "fretcoach-pedal.service"
INSTALL = REPO / "systemd" / "install.sh"


def _unit_settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


def test_the_unit_is_a_hardened_notify_service_with_a_watchdog() -> None:
    u = _unit_settings()
    assert u["Type"] == ["notify"] and u["WatchdogSec"] == ["30"] and u["Restart"] == ["always"]
    assert u["ExecStart"] == ["/opt/fretcoach/venv/bin/fretcoach run"]
    assert u["User"] == ["fretcoach"] and set(u["SupplementaryGroups"][0].split()) == {"audio", "gpio", "i2c", "spi"}
    assert u["EnvironmentFile"] == ["-/etc/fretcoach/fretcoach.env"]
    assert u["ProtectSystem"] == ["strict"] and u["ReadWritePaths"] == ["/var/lib/fretcoach"]
    assert u["NoNewPrivileges"] == ["yes"] and u["PrivateTmp"] == ["yes"]
    # These would hide /dev/snd and the GPIO/I2C nodes from the pedal.
    assert "PrivateDevices" not in u and "ProtectClock" not in u and "DeviceAllow" not in u
    # The pedal starts without waiting for the network.
    assert not any("network" in v for v in u.get("After", []) + u.get("Wants", []) + u.get("Requires", []))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_finds_nothing_to_complain_about(tmp_path: Path) -> None:
    # verify also checks that ExecStart exists; the venv is not installed on a build machine.
    unit = tmp_path / "fretcoach-pedal.service"
    unit.write_text(UNIT.read_text().replace("/opt/fretcoach/venv/bin/fretcoach run", "/bin/true run"))
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], check=False, capture_output=True, text=True, timeout=60
    )
    complaints = [line for line in (proc.stdout + proc.stderr).splitlines() if "fretcoach-pedal" in line]
    assert proc.returncode == 0 and complaints == [], proc.stdout + proc.stderr


@pytest.fixture
def scratch_root(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        pytest.skip("install.sh sets owners (chown) and needs root, even into a scratch root")
    root = tmp_path / "root"
    etc = root / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (etc / "group").write_text("root:x:0:\naudio:x:29:\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (etc / "gshadow").write_text("root:*::\naudio:*::\n")
    for name in ("shadow", "gshadow"):
        (etc / name).chmod(0o640)
    boot = root / "boot" / "firmware"
    boot.mkdir(parents=True)
    (boot / "config.txt").write_text("dtparam=audio=on\n")
    return root


def _install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(INSTALL), "--root", str(root), "--no-venv", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _ids(root: Path, user: str) -> tuple[int, int]:
    for line in (root / "etc" / "passwd").read_text().splitlines():
        f = line.split(":")
        if f[0] == user:
            return int(f[2]), int(f[3])
    raise AssertionError(f"no user {user}")


def test_install_creates_user_dirs_private_env_and_enables_the_unit(scratch_root: Path) -> None:
    proc = _install(scratch_root)
    assert proc.returncode == 0, proc.stderr
    uid, gid = _ids(scratch_root, "fretcoach")
    groups = {line.split(":")[0]: line.split(":")[3] for line in (scratch_root / "etc/group").read_text().splitlines()}
    assert all("fretcoach" in groups[g].split(",") for g in ("audio", "gpio", "i2c", "spi"))
    env = scratch_root / "etc/fretcoach/fretcoach.env"
    st = env.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600 and (st.st_uid, st.st_gid) == (uid, gid)
    state = (scratch_root / "var/lib/fretcoach").stat()
    assert stat.S_IMODE(state.st_mode) == 0o750 and state.st_uid == uid
    unit = scratch_root / "etc/systemd/system/fretcoach-pedal.service"
    assert unit.read_text() == UNIT.read_text()
    wants = scratch_root / "etc/systemd/system/multi-user.target.wants/fretcoach-pedal.service"
    assert wants.is_symlink()
    assert (scratch_root / "etc/polkit-1/rules.d/50-fretcoach-poweroff.rules").is_file()
    assert "I2C is off" in proc.stdout and "400000" in proc.stdout


def test_install_again_keeps_the_secrets_and_changes_nothing_else(scratch_root: Path) -> None:
    assert _install(scratch_root).returncode == 0
    env = scratch_root / "etc/fretcoach/fretcoach.env"
    env.write_text("OPENAI_API_KEY=sk-secret\n")
    env.chmod(0o644)  # loosened by hand
    passwd = (scratch_root / "etc/passwd").read_text()
    proc = _install(scratch_root)
    assert proc.returncode == 0, proc.stderr
    assert env.read_text() == "OPENAI_API_KEY=sk-secret\n"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert (scratch_root / "etc/passwd").read_text() == passwd
    assert "keeping" in proc.stdout


def test_uninstall_keeps_sessions_and_settings_and_purge_removes_them(scratch_root: Path) -> None:
    assert _install(scratch_root).returncode == 0
    (scratch_root / "var/lib/fretcoach/fretcoach.db").write_text("sessions")
    proc = _install(scratch_root, "--uninstall")
    assert proc.returncode == 0, proc.stderr
    assert not (scratch_root / "etc/systemd/system/fretcoach-pedal.service").exists()
    assert not (scratch_root / "etc/systemd/system/multi-user.target.wants/fretcoach-pedal.service").exists()
    assert (scratch_root / "var/lib/fretcoach/fretcoach.db").read_text() == "sessions"
    assert (scratch_root / "etc/fretcoach/fretcoach.env").exists()
    proc = _install(scratch_root, "--uninstall", "--purge")
    assert proc.returncode == 0, proc.stderr
    assert not (scratch_root / "var/lib/fretcoach").exists() and not (scratch_root / "etc/fretcoach").exists()
    assert "fretcoach:" not in (scratch_root / "etc/passwd").read_text()


def test_bad_options_are_one_clear_line() -> None:
    proc = subprocess.run(["bash", str(INSTALL), "--frobnicate"], check=False, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr == "install.sh: error: unknown option --frobnicate (try --help)\n"
    proc = subprocess.run(["bash", str(INSTALL), "--purge"], check=False, capture_output=True, text=True)
    assert proc.stderr == "install.sh: error: --purge only goes with --uninstall\n"
