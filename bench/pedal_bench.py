"""The pedal's live figures, each beside a peer measured in the same run.

`python -m bench.pedal_bench [--seconds 28] [--startups 3] [--json]`

* **Note-to-screen latency.** The real app (analysis thread, state machine, screens, luma's
  dummy display) plays the bundled take at real-time pace through the file source, with a
  scripted footswitch that starts a session at once. For every note the tracker finished, the
  time from its onset (its capture time) to the first frame that showed it: its name, on a
  sounding note that began at that onset. Peer: a pedal that shows a note once it has ended
  (the tracker's finished notes), measured on the same notes.
* **CPU** share of one core over the session, rendering included (process time / wall time).
  Peer: the analysis alone, the note tracker fed the same take in the same 256-frame blocks.
* **Memory**: peak RSS of the session. Peers, each a fresh interpreter: ``python -c pass``, the
  analysis stack (``import numpy, aubio``) and the pedal's modules imported but idle.
* **Start-up** of ``fretcoach run`` as the service starts it (dummy display, mock pins, no audio
  interface: it says so on screen and keeps retrying): from the process start to ``READY=1`` on
  a systemd notify socket, which the app sends once the boot splash is on screen and the audio
  thread runs, and its peak RSS a second later. Peers: ``python -c pass`` and
  ``fretcoach --help``, start to exit.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

PEER_IMPORTS = {
    "python -c pass": "pass",
    "import numpy, aubio": "import numpy, aubio",
    "import device.runtime (idle)": "import device.runtime",
}


def _percentile(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


def _latency(
    frames: list[tuple[float, str, float]], finished: list[tuple[float, str, float]]
) -> tuple[list[float], list[float], int]:
    """(ours, peer, missed) in ms. ``frames``: (shown at, note name, onset of the sounding note);
    ``finished``: (onset, name, finished at), all on the monotonic clock."""
    finished = sorted(finished)
    ours: list[float] = []
    peer: list[float] = []
    missed = 0
    for k, (onset, name, done) in enumerate(finished):
        # The screen's first guess at a note may date its onset a frame or so before the
        # onset detector does; the next note's onset closes the window.
        lo = onset - 0.05
        hi = finished[k + 1][0] - 0.05 if k + 1 < len(finished) else float("inf")
        shown = [t for t, n, on in frames if n == name and lo <= on < hi]
        if shown:
            ours.append((min(shown) - onset) * 1000)
            peer.append((done - onset) * 1000)
        else:
            missed += 1
    return sorted(ours), sorted(peer), missed


def session(seconds: float) -> dict[str, Any]:
    from device.app import Mode
    from device.config import Settings
    from device.runtime import build_demo
    from device.ui.views import LiveView
    from hardware.footswitch import Gesture

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.model_validate({"data_dir": Path(tmp)})
        demo = build_demo(settings, speed=1.0, display="dummy", script=[(0.2, Gesture.PRESS), (0.4, Gesture.PRESS)])
        app, listener = demo.app, demo.parts.listener
        frames: list[tuple[float, str, float]] = []
        finished: list[tuple[float, str, float]] = []

        def on_frame(view: object, now: float) -> None:
            heard = listener.heard()
            if isinstance(view, LiveView) and view.note is not None and heard.onset_time is not None:
                frames.append((time.monotonic(), view.note, heard.onset_time))

        demo.parts.on_frame = on_frame
        original = listener._publish

        def publish(notes: Any = None) -> None:
            original(notes)
            if notes:
                t = time.monotonic()
                finished.extend((listener._block_time + n.onset_s, n.name, t) for n in notes)

        listener._publish = publish  # type: ignore[method-assign]
        started: float | None = None
        in_session = False

        def until() -> bool:
            nonlocal started, in_session
            in_session = app.s.mode is Mode.SESSION
            if started is None and in_session:
                started = time.monotonic()
            return time.monotonic() - wall0 >= seconds

        cpu0 = time.process_time()
        wall0 = time.monotonic()
        app.run(until)  # the service's own main loop
        cpu = time.process_time() - cpu0
        wall = time.monotonic() - wall0
        demo.parts.store.close()
    # Notes that began before the session (the tracker restarts at its start) do not count.
    ours, peer, missed = _latency(frames, [f for f in finished if started is not None and f[0] >= started])
    return {
        "seconds": round(wall, 1),
        "notes": len(ours) + missed,
        "notes_missed": missed,
        "latency_ms": {"p50": _percentile(ours, 50), "p95": _percentile(ours, 95), "max": max(ours, default=0)},
        "peer_finished_note_ms": {"p50": _percentile(peer, 50), "p95": _percentile(peer, 95)},
        "cpu_percent_of_one_core": 100 * cpu / wall,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "frames": app.frames,
        "fps": app.frames / wall,
        "in_session": in_session,
    }


def analysis_alone(seconds: float) -> float:
    """CPU % of one core the note tracker alone needs for the take at real time."""
    from device.analysis import NoteTracker
    from device.audio import read_audio
    from device.audio.assets import DEMO_TAKE

    clip = read_audio(DEMO_TAKE)
    samples = clip.samples[: int(seconds * clip.sample_rate)]
    tracker = NoteTracker(clip.sample_rate)
    cpu0 = time.process_time()
    for i in range(0, len(samples), 256):
        tracker.feed(samples[i : i + 256])
        _ = tracker.sounding
    return 100 * (time.process_time() - cpu0) / (len(samples) / clip.sample_rate)


def _rss_of(code: str) -> float:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child would report this
    # (forked) process's peak.
    probe = "import pathlib\nprint(pathlib.Path('/proc/self/status').read_text().split('VmHWM:')[1].split()[0])"
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\n{probe}"], check=True, capture_output=True, text=True, timeout=60
    )
    return int(out.stdout.split()[-1]) / 1024


def _time_to_exit(args: list[str]) -> float:
    t0 = time.monotonic()
    subprocess.run(args, check=True, capture_output=True, timeout=60)
    return time.monotonic() - t0


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def service_start() -> tuple[float, float]:
    """(seconds from start to READY=1, peak RSS MiB a second later) of ``fretcoach run``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "notify")
        env = {
            k: v
            for k, v in os.environ.items()
            if not (k.startswith(("FRETCOACH_", "OPIK_")) or k.endswith("_API_KEY") or k == "LLM_PROVIDER")
        }
        env |= {
            "NOTIFY_SOCKET": path,
            "FRETCOACH_DATA_DIR": os.path.join(tmp, "data"),
            "FRETCOACH_DISPLAY": "dummy",
            "GPIOZERO_PIN_FACTORY": "mock",
        }
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(path)
            sock.settimeout(30)
            t0 = time.monotonic()
            proc = subprocess.Popen(
                [sys.executable, "-m", "device.cli", "run"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                ready = float("nan")
                while True:
                    if b"READY=1" in sock.recv(4096):
                        ready = time.monotonic() - t0
                        break
                time.sleep(1.0)
                rss = _peak_rss_mib(proc.pid)
            finally:
                proc.terminate()
                proc.wait(10)
    return ready, rss


def peers(startups: int) -> dict[str, Any]:
    rss = {name: _rss_of(code) for name, code in PEER_IMPORTS.items()}
    starts = [service_start() for _ in range(startups)]
    bare = [_time_to_exit([sys.executable, "-c", "pass"]) for _ in range(startups)]
    helps = [_time_to_exit([sys.executable, "-m", "device.cli", "--help"]) for _ in range(startups)]
    return {
        "peer_rss_mib": rss,
        "service_ready_s": statistics.median(s[0] for s in starts),
        "service_peak_rss_mib": statistics.median(s[1] for s in starts),
        "peer_python_pass_s": statistics.median(bare),
        "peer_fretcoach_help_s": statistics.median(helps),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.pedal_bench", description=__doc__)
    p.add_argument("--seconds", type=float, default=28.0, help="of the take played (it loops)")
    p.add_argument("--startups", type=int, default=3, help="fretcoach run start-ups to time (median)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    r = session(args.seconds)
    r["peer_analysis_cpu_percent"] = analysis_alone(args.seconds)
    r |= peers(args.startups)
    if args.json:
        print(json.dumps(r))
    else:
        lat, peer = r["latency_ms"], r["peer_finished_note_ms"]
        print(
            f"note-to-screen latency over {r['notes']} notes ({r['seconds']} s of the take at real time, "
            f"{r['notes_missed']} never shown)"
        )
        print(
            f"  ours (the sounding note)     p50 {lat['p50']:.0f} ms   p95 {lat['p95']:.0f} ms"
            f"   max {lat['max']:.0f} ms   target p95 ≤ 60 ms"
        )
        print(f"  peer (shown once finished)   p50 {peer['p50']:.0f} ms   p95 {peer['p95']:.0f} ms")
        print(f"  ratio (peer p95 / ours p95)  {peer['p95'] / lat['p95']:.1f}×")
        print(
            f"CPU, live session incl. rendering ({r['fps']:.0f} frames/s)   "
            f"{r['cpu_percent_of_one_core']:.1f} % of one core   target ≤ 15 %"
        )
        print(f"  peer: the analysis alone                    {r['peer_analysis_cpu_percent']:.1f} %")
        print(f"peak RSS, live session                        {r['peak_rss_mib']:.0f} MiB   target ≤ 150 MiB")
        print(f"  fretcoach run, idle at home                 {r['service_peak_rss_mib']:.0f} MiB")
        for name, mib in r["peer_rss_mib"].items():
            print(f"  peer: {name:<38} {mib:.0f} MiB")
        print(
            f"fretcoach run: start → splash on screen, READY=1   {r['service_ready_s']:.2f} s"
            "   target splash ≤ 1 s, ready ≤ 3 s"
        )
        print(f"  peer: python -c pass, start → exit        {r['peer_python_pass_s']:.2f} s")
        print(f"  peer: fretcoach --help, start → exit      {r['peer_fretcoach_help_s']:.2f} s")
    ok = (
        r["in_session"]
        and r["notes"] > 10
        and r["latency_ms"]["p95"] <= 60
        and r["cpu_percent_of_one_core"] <= 15
        and max(r["peak_rss_mib"], r["service_peak_rss_mib"]) <= 150
        and r["service_ready_s"] <= 1.0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
