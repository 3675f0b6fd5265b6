"""What the pedal loads: the LLM stack (langchain, openai, opik) only when a coach call needs
it, never on the way to the boot splash or on the audio path; scipy not at all (its signal
package alone costs ~85 MB and ~0.7 s of start-up). Checked in fresh interpreters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAZY = ("langchain", "langchain_core", "langchain_openai", "langgraph", "openai", "opik", "scipy")


def _loaded_after(code: str, tmp_path: Path) -> list[str]:
    probe = f"import sys, json\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({LAZY!r}))))"
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith(("FRETCOACH_", "OPIK_")) or k.endswith("_API_KEY") or k == "LLM_PROVIDER")
    }
    env |= {"GPIOZERO_PIN_FACTORY": "mock", "FRETCOACH_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.run(
        [sys.executable, "-c", f"{code}\n{probe}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    loaded: list[str] = json.loads(proc.stdout.strip().splitlines()[-1])
    return loaded


def test_importing_the_app_and_the_service_wiring_loads_no_llm_stack(tmp_path: Path) -> None:
    assert _loaded_after("import device.app, device.runtime, device.cli, device.listening", tmp_path) == []


def test_the_service_booted_into_a_session_has_loaded_no_llm_stack(tmp_path: Path) -> None:
    code = """
import time
from device.config import Settings
from device.runtime import build_service
from hardware.footswitch import FootswitchEvent, Gesture

app = build_service(Settings(display="dummy"))  # no audio interface here: it keeps retrying
app.boot()
app.step(FootswitchEvent(Gesture.DOUBLE))
app.step(FootswitchEvent(Gesture.HOLD))  # a manual session: scores, the live coach's timer
for _ in range(20):
    app.step()
    time.sleep(0.01)
assert app.s.mode.value == "session", app.s.mode
app.close()
"""
    assert _loaded_after(code, tmp_path) == []
