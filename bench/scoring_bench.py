"""Scoring-engine benchmark: accuracy and speed on rendered guitar with known truth, side by
side with librosa.pyin + librosa's onset detector measured in the same run.

    python -m bench.scoring_bench [--takes DIR] [--peer-takes N] [--json OUT]

Renders the benchmark set first if DIR has no index.json (FluidSynth + FluidR3_GM).
"""

from __future__ import annotations

import os

# One core, as on the pedal: keep BLAS and numba from spreading work over threads.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from device.analysis import Note, parse_scale, score_notes, track_notes  # noqa: E402
from device.analysis.notes import hz_to_midi_float  # noqa: E402
from device.audio import read_audio  # noqa: E402

DEFAULT_TAKES = Path(__file__).parent / ".cache" / "takes"
ONSET_TOL_S = 0.05
FAMILY_SCORE = {"detune": "pitch_accuracy", "out_of_scale": "scale_conformity", "jitter": "timing_stability"}
TARGETS = {
    "onset_f1": (">=", 0.95),
    "note_accuracy": (">=", 0.98),
    "octave_error_rate": ("<=", 0.01),
    "relative_cents_mae": ("<=", 5.0),
    "ordering_min": (">=", 0.95),
    "conformity_error_mean": ("<=", 5.0),
    "rtf": (">=", 300.0),
    "rtf_vs_peer": (">=", 60.0),
}

Tracker = Callable[[np.ndarray, int, dict[str, Any]], list[Note]]


def ours(samples: np.ndarray, rate: int, truth: dict[str, Any]) -> list[Note]:
    return track_notes(samples, rate, scale=parse_scale(truth["scale"]))


def librosa_peer(samples: np.ndarray, rate: int, truth: dict[str, Any]) -> list[Note]:
    """pyin (fmin 70, fmax 1400, frame 2048, hop 256 at 22.05 kHz) + librosa onsets; a note is
    the median voiced f0 between consecutive onsets."""
    import librosa

    sr = 22050
    y = librosa.resample(samples, orig_sr=rate, target_sr=sr)
    f0, voiced, _ = librosa.pyin(y, fmin=70, fmax=1400, sr=sr, frame_length=2048, hop_length=256)
    onsets = librosa.onset.onset_detect(y=y, sr=sr, hop_length=256, units="time")
    times = librosa.times_like(f0, sr=sr, hop_length=256)
    scale = parse_scale(truth["scale"])
    bounds = [*list(onsets), times[-1] + 1.0]
    notes = []
    for start, end in itertools.pairwise(bounds):
        sel = (times >= start) & (times < end) & voiced & np.isfinite(f0)
        if not sel.any():
            continue
        m = hz_to_midi_float(float(np.median(f0[sel])))
        midi = round(m)
        cents = (m - midi) * 100
        notes.append(Note(float(start), midi, cents, float(end - start), scale.contains(midi), 1.0, 0.0, 0.0))
    return notes


def match(det: Sequence[float], truth: Sequence[float], tol: float = ONSET_TOL_S) -> list[tuple[int, int]]:
    """Greedy one-to-one matching of onsets, closest pairs first."""
    cands = sorted(
        (abs(d - t), i, j) for i, t in enumerate(truth) for j, d in enumerate(det) if abs(d - t) <= tol
    )
    used_i: set[int] = set()
    used_j: set[int] = set()
    pairs = []
    for _, i, j in cands:
        if i not in used_i and j not in used_j:
            used_i.add(i)
            used_j.add(j)
            pairs.append((i, j))
    return sorted(pairs)


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    correct: int = 0
    octave: int = 0
    cpu_s: float = 0.0
    audio_s: float = 0.0
    takes: int = 0
    per_take: dict[str, dict[str, Any]] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        p = self.tp / max(1, self.tp + self.fp)
        r = self.tp / max(1, self.tp + self.fn)
        return {
            "takes": self.takes,
            "onset_precision": p,
            "onset_recall": r,
            "onset_f1": 2 * p * r / max(1e-9, p + r),
            "note_accuracy": self.correct / max(1, self.tp),
            "octave_error_rate": self.octave / max(1, self.tp),
            "rtf": self.audio_s / max(1e-9, self.cpu_s),
        }


def run(tracker: Tracker, takes: list[dict[str, Any]], root: Path) -> Tally:
    tally = Tally()
    for truth in takes:
        clip = read_audio(root / truth["file"], truth.get("guitar_channel", "auto"))
        t0 = time.process_time()
        notes = tracker(clip.samples, clip.sample_rate, truth)
        metrics = score_notes(notes, bpm=truth["bpm"])
        tally.cpu_s += time.process_time() - t0
        tally.audio_s += clip.duration_s
        tally.takes += 1
        t_notes = truth["notes"]
        pairs = match([n.onset_s for n in notes], [n["onset_s"] for n in t_notes])
        tally.tp += len(pairs)
        tally.fp += len(notes) - len(pairs)
        tally.fn += len(t_notes) - len(pairs)
        matched = []
        correct = 0
        for i, j in pairs:
            want = t_notes[i]["midi"] + t_notes[i]["detune_cents"] / 100
            got = notes[j].midi + notes[j].cents / 100
            err = got - want
            correct += abs(err) <= 0.5
            tally.octave += min(abs(err - 12), abs(err + 12), abs(err - 24), abs(err + 24)) <= 0.5
            matched.append((i, got))
        tally.correct += correct
        tally.per_take[truth["file"]] = {
            "metrics": metrics.to_dict(),
            "matched": matched,
            "tp": len(pairs),
            "fp": len(notes) - len(pairs),
            "fn": len(t_notes) - len(pairs),
            "correct": correct,
        }
    return tally


def relative_cents(tally: Tally, takes: list[dict[str, Any]]) -> list[float]:
    """Error of the measured pitch change between each detuned take and its clean twin."""
    clean = {t["base_id"]: t for t in takes if t["family"] == "clean"}
    errors = []
    for t in takes:
        if t["family"] != "detune" or t["base_id"] not in clean:
            continue
        a = dict(tally.per_take[clean[t["base_id"]]["file"]]["matched"])
        b = dict(tally.per_take[t["file"]]["matched"])
        for i in a.keys() & b.keys():
            change = (b[i] - a[i]) * 100
            if abs(change - t["notes"][i]["detune_cents"]) < 100:  # a wrong note is not a tuning error
                errors.append(abs(change - t["notes"][i]["detune_cents"]))
    return errors


def ordering(tally: Tally, takes: list[dict[str, Any]]) -> dict[str, float]:
    """Per family: the share of same-base take pairs whose score puts the more faulty lower."""
    by_base: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    for t in takes:
        families = list(FAMILY_SCORE) if t["family"] == "clean" else [t["family"]]
        for fam in families:
            if fam not in FAMILY_SCORE:
                continue
            score = tally.per_take[t["file"]]["metrics"][FAMILY_SCORE[fam]]
            by_base[(fam, t["base_id"])].append((t["level"], -1.0 if score is None else score))
    result: dict[str, list[bool]] = defaultdict(list)
    for (fam, _), levels in by_base.items():
        for (la, sa), (lb, sb) in itertools.combinations(sorted(levels), 2):
            if la != lb:
                result[fam].append(sb < sa)
    return {fam: float(np.mean(v)) for fam, v in sorted(result.items())}


def conformity_errors(tally: Tally, takes: list[dict[str, Any]]) -> list[float]:
    errs = []
    for t in takes:
        truth = 100 * np.mean([n["in_scale"] for n in t["notes"]])
        got = tally.per_take[t["file"]]["metrics"]["scale_conformity"]
        errs.append(abs((got if got is not None else 0.0) - truth))
    return errs


def noise_drift(tally: Tally, takes: list[dict[str, Any]]) -> float:
    """Largest change of any score between a clean take and its noisy twins (noise is no fault)."""
    clean = {t["base_id"]: t for t in takes if t["family"] == "clean"}
    worst = 0.0
    for t in takes:
        if t["family"] == "noise" and t["base_id"] in clean:
            a = tally.per_take[clean[t["base_id"]]["file"]]["metrics"]
            b = tally.per_take[t["file"]]["metrics"]
            for k in FAMILY_SCORE.values():
                if a[k] is not None and b[k] is not None:
                    worst = max(worst, abs(a[k] - b[k]))
    return worst


def per_program(tally: Tally, takes: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Onset recall and precision, note accuracy and noise drift for each guitar program."""
    out = {}
    for name in sorted({t["program_name"] for t in takes}):
        mine = [t for t in takes if t["program_name"] == name]
        n = {k: sum(tally.per_take[t["file"]][k] for t in mine) for k in ("tp", "fp", "fn", "correct")}
        out[name] = {
            "recall": n["tp"] / max(1, n["tp"] + n["fn"]),
            "precision": n["tp"] / max(1, n["tp"] + n["fp"]),
            "note_accuracy": n["correct"] / max(1, n["tp"]),
            "noise_max_score_drift": noise_drift(tally, mine),
        }
    return out


def evaluate(tally: Tally, takes: list[dict[str, Any]]) -> dict[str, Any]:
    s: dict[str, Any] = tally.summary()
    rel = relative_cents(tally, takes)
    s["relative_cents_mae"] = float(np.mean(rel)) if rel else float("nan")
    s["relative_cents_p95"] = float(np.percentile(rel, 95)) if rel else float("nan")
    s["ordering"] = ordering(tally, takes)
    s["ordering_min"] = min(s["ordering"].values()) if s["ordering"] else float("nan")
    conf = conformity_errors(tally, takes)
    s["conformity_error_mean"] = float(np.mean(conf))
    s["conformity_error_max"] = float(np.max(conf))
    s["noise_max_score_drift"] = noise_drift(tally, takes)
    s["per_program"] = per_program(tally, takes)
    return s


def _check(name: str, value: float) -> str:
    if name not in TARGETS:
        return ""
    op, target = TARGETS[name]
    ok = value >= target if op == ">=" else value <= target
    return f"{'PASS' if ok else 'FAIL'} ({op} {target:g})"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--takes", type=Path, default=DEFAULT_TAKES)
    ap.add_argument("--peer-takes", type=int, default=40, help="takes the librosa peer runs on (0 = none)")
    ap.add_argument("--json", type=Path, help="write all figures here")
    args = ap.parse_args(argv)

    index = args.takes / "index.json"
    if not index.exists():
        from bench import render_takes

        print(f"rendering the benchmark set into {args.takes} …", flush=True)
        render_takes.main(["--set", "bench", "--out", str(args.takes), "--jobs", "2"])
    listing = json.loads(index.read_text())
    names = listing["takes"] if isinstance(listing, dict) else listing
    takes = [json.loads((args.takes / Path(n).with_suffix(".json").name).read_text()) for n in names]

    mine = run(ours, takes, args.takes)
    s = evaluate(mine, takes)
    print(f"\nFretCoach tracker on {len(takes)} takes, {mine.audio_s:.0f} s of audio")
    for k in ("onset_f1", "onset_precision", "onset_recall", "note_accuracy", "octave_error_rate",
              "relative_cents_mae", "relative_cents_p95", "conformity_error_mean", "conformity_error_max",
              "noise_max_score_drift", "rtf"):
        print(f"  {k:24s} {s[k]:10.3f}  {_check(k, s[k])}")
    for fam, share in s["ordering"].items():
        print(f"  ordering[{fam}]{'':{13 - len(fam)}s} {share:10.3f}  {_check('ordering_min', share)}")
    print(f"  {'per program':24s} {'recall':>10s} {'precision':>10s} {'accuracy':>10s} {'noise drift':>12s}")
    for name, p in s["per_program"].items():
        print(f"  {name:24s} {p['recall']:10.3f} {p['precision']:10.3f} {p['note_accuracy']:10.3f}"
              f" {p['noise_max_score_drift']:12.1f}")
    report: dict[str, Any] = {"ours": s}

    if args.peer_takes:
        # The peer runs on an even spread of the takes (all families, programs and tempos).
        step = max(1, len(takes) // args.peer_takes)
        subset = takes[::step][: args.peer_takes]
        mine_sub = run(ours, subset, args.takes)
        peer = run(librosa_peer, subset, args.takes)
        ms, ps = mine_sub.summary(), peer.summary()
        ratio = ms["rtf"] / ps["rtf"]
        print(f"\nSide by side on {len(subset)} takes ({peer.audio_s:.0f} s of audio)")
        print(f"  {'':24s} {'fretcoach':>10s} {'librosa.pyin':>13s}")
        for k in ("onset_f1", "onset_precision", "onset_recall", "note_accuracy", "octave_error_rate", "rtf"):
            print(f"  {k:24s} {ms[k]:10.3f} {ps[k]:13.3f}")
        print(f"  {'rtf ratio (ours/peer)':24s} {ratio:10.1f}  {_check('rtf_vs_peer', ratio)}")
        report["side_by_side"] = {"takes": len(subset), "ours": ms, "librosa_pyin": ps, "rtf_ratio": ratio}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
