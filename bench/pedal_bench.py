"""The pedal's live figures: note-to-screen latency, CPU, memory, start-up.

`python -m bench.pedal_bench [--seconds 14] [--json]` runs the real app (analysis thread, state
machine, screens, a frame-stamped display) on the bundled take played at real-time pace
through the file source, with a scripted footswitch that starts a session at once, and
measures, for every note, the time from its onset in the audio (its capture time) to the
first frame that shows it. The peer, measured in the same run, is what a pedal that only
shows finished notes would achieve (a note is known when it ends): its latency is the note's
end. Also: CPU share of one core, peak RSS, and the time from process start to the first frame.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

T_PROCESS = time.monotonic()


def _percentile(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


def run(seconds: float) -> dict[str, Any]:
    from device.app import LOOP_WAIT_S, Mode
    from device.config import Settings
    from device.runtime import build_demo
    from device.ui.views import LiveView
    from hardware.footswitch import Gesture

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.model_validate({"data_dir": Path(tmp)})
        demo = build_demo(settings, speed=1.0, display="dummy", script=[(0.2, Gesture.PRESS), (0.4, Gesture.PRESS)])
        app, listener = demo.app, demo.parts.listener
        shown: dict[float, float] = {}  # note onset (capture time) → first frame time showing it
        ended: dict[float, float] = {}  # the peer: when the tracker finished the note
        first_frame: list[float] = []

        def on_frame(view: object, now: float) -> None:
            t = time.monotonic()
            if not first_frame:
                first_frame.append(t)
            heard = listener.heard()
            if isinstance(view, LiveView) and view.note is not None and heard.onset_time is not None:
                shown.setdefault(round(heard.onset_time, 4), t)

        demo.parts.on_frame = on_frame
        original = listener._publish

        def publish(notes: Any = None) -> None:
            original(notes)
            if notes:
                t = time.monotonic()
                for n in notes:
                    ended.setdefault(round(listener._block_time + n.onset_s, 4), t)

        listener._publish = publish  # type: ignore[method-assign]
        cpu0 = time.process_time()
        wall0 = time.monotonic()
        app.boot()
        while time.monotonic() - wall0 < seconds:
            app.step(demo.parts.footswitch.get(timeout=LOOP_WAIT_S))
        cpu = time.process_time() - cpu0
        wall = time.monotonic() - wall0
        in_session = app.s.mode is Mode.SESSION
        app.close()
        demo.parts.store.close()
        lat = sorted((shown[k] - k) * 1000 for k in shown)
        peer = sorted((ended[k] - k) * 1000 for k in ended)
        return {
            "seconds": round(wall, 1),
            "notes_shown": len(lat),
            "latency_ms": {"p50": _percentile(lat, 50), "p95": _percentile(lat, 95), "max": max(lat, default=0)},
            "peer_finished_note_ms": {"p50": _percentile(peer, 50), "p95": _percentile(peer, 95)},
            "cpu_percent_of_one_core": 100 * cpu / wall,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "start_to_first_frame_s": first_frame[0] - T_PROCESS if first_frame else float("nan"),
            "frames": app.frames,
            "in_session": in_session,
        }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.pedal_bench", description=__doc__)
    p.add_argument("--seconds", type=float, default=14.0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    r = run(args.seconds)
    if args.json:
        print(json.dumps(r))
    else:
        lat, peer = r["latency_ms"], r["peer_finished_note_ms"]
        print(f"note-to-screen latency over {r['notes_shown']} notes ({r['seconds']} s of the take at real time)")
        print(
            f"  ours (the sounding note)     p50 {lat['p50']:.0f} ms   p95 {lat['p95']:.0f} ms"
            f"   max {lat['max']:.0f} ms"
        )
        print(f"  peer (shown once finished)   p50 {peer['p50']:.0f} ms   p95 {peer['p95']:.0f} ms")
        print(f"  ratio (peer p95 / ours p95)  {peer['p95'] / lat['p95']:.1f}×   target p95 ≤ 60 ms")
        print(
            f"CPU {r['cpu_percent_of_one_core']:.1f} % of one core; peak RSS {r['peak_rss_mib']:.0f} MiB; "
            f"{r['frames']} frames"
        )
        print(f"process start → first frame {r['start_to_first_frame_s']:.2f} s")
    ok = r["in_session"] and r["notes_shown"] > 10 and r["latency_ms"]["p95"] <= 60
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
