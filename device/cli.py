"""`fretcoach` — thin command line: parse, load settings once, call the packages, print."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from device.errors import FretCoachError

__all__ = ["main"]


def _unit_interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text}")
    return value


def _bpm(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected beats per minute, got {text!r}") from None
    if not 20.0 <= value <= 400.0:
        raise argparse.ArgumentTypeError(f"BPM must be between 20 and 400, got {text}")
    return value


def _channel(text: str) -> int | str:
    if text in ("auto", "mix"):
        return text
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected auto, mix or a channel number from 1, got {text!r}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fretcoach", description="FretCoach Pedal: a guitar practice coach.")
    p.add_argument("--config", type=Path, metavar="FILE", help="read settings (KEY=VALUE lines) from FILE")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    a = sub.add_parser("analyze", help="score guitar recordings (WAV or FLAC)")
    a.add_argument("files", nargs="+", type=Path, metavar="FILE")
    a.add_argument("--scale", required=True, help='e.g. "A minor pentatonic", "Bb major", "f# minor"')
    a.add_argument("--bpm", type=_bpm, help="score timing against this tempo's beat grid")
    a.add_argument("--strictness", type=_unit_interval, help="0 lenient … 1 strict (default from config: 0.5)")
    a.add_argument("--sensitivity", type=_unit_interval, help="0 only firm notes … 1 every quiet note (default 0.5)")
    a.add_argument("--channel", type=_channel, default=None, help="auto (default), mix, or a channel number")
    a.add_argument("--json", action="store_true", help="one JSON object per file per line")
    return p


def _analyze(args: argparse.Namespace) -> int:
    from device.analysis import TrackerSettings, parse_scale, score_notes, track_notes
    from device.audio import read_audio
    from device.config import load_settings

    settings = load_settings(args.config)
    scale = parse_scale(args.scale)
    strictness = settings.strictness if args.strictness is None else args.strictness
    sensitivity = settings.sensitivity if args.sensitivity is None else args.sensitivity
    channel = args.channel if args.channel is not None else settings.audio_channel
    tracker_settings = TrackerSettings(a4_hz=settings.a4_hz, sensitivity=sensitivity)
    failed = 0
    for path in args.files:
        try:
            clip = read_audio(path, channel)
            notes = track_notes(clip.samples, clip.sample_rate, tracker_settings, scale)
        except FretCoachError as exc:
            _error(str(exc))
            failed += 1
            continue
        metrics = score_notes(notes, strictness=strictness, bpm=args.bpm)
        result: dict[str, Any] = {
            "file": str(path),
            "duration_s": round(clip.duration_s, 3),
            "sample_rate": clip.sample_rate,
            "scale": scale.name,
            "bpm": args.bpm,
            "strictness": strictness,
            "sensitivity": sensitivity,
            "notes": [n.to_dict() for n in notes],
            "metrics": metrics.to_dict(),
        }
        if args.json:
            print(json.dumps(result), flush=True)
        else:
            print(_table(result), flush=True)
    return 1 if failed else 0


def _fmt(score: float | None) -> str:
    return "  –" if score is None else f"{score:5.1f}"


def _table(r: dict[str, Any]) -> str:
    m = r["metrics"]
    lines = [
        f"{r['file']}  ({r['duration_s']:.1f} s, {r['sample_rate']} Hz)  scale: {r['scale']}"
        + (f"  bpm: {r['bpm']:g}" if r["bpm"] else ""),
        "",
        "   time  note   cents  in scale",
    ]
    for n in r["notes"]:
        lines.append(
            f"{n['onset_s']:7.2f}  {n['name']:<4} {n['cents']:+6.1f}  {'yes' if n['in_scale'] else 'NO'}"
        )
    weakest = m["weakest"].replace("_", " ") if m["weakest"] else "–"
    lines += [
        "",
        f"pitch accuracy   {_fmt(m['pitch_accuracy'])}",
        f"scale conformity {_fmt(m['scale_conformity'])}",
        f"timing stability {_fmt(m['timing_stability'])}",
        f"notes {m['notes_played']}, correct {m['correct_notes']}, wrong {m['wrong_notes']}; weakest: {weakest}",
    ]
    return "\n".join(lines)


def _error(message: str) -> None:
    print(f"fretcoach: error: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "analyze":
            return _analyze(args)
    except FretCoachError as exc:
        _error(str(exc))
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
