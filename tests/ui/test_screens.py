"""The screens: golden frames per screen state, layout invariants on random views, behaviour."""

from __future__ import annotations

import dataclasses
import math
import random
import string
from collections.abc import Callable
from itertools import combinations

import numpy as np
import pytest
from PIL import Image

from device.analysis import METRIC_LABELS, Metrics
from device.ui import screens
from device.ui.screens import (
    ELIDABLE_ROLES,
    HEIGHT,
    SHORT_LABELS,
    WIDTH,
    Frame,
    Placed,
    compose,
    render,
    save_text,
    sync_text,
)
from device.ui.text import format_elapsed
from device.ui.views import (
    BootView,
    ErrorKind,
    ErrorView,
    HomeView,
    LastSession,
    LiveView,
    PauseView,
    PlanningView,
    PlanView,
    PowerWarning,
    SaveState,
    ScalePickerView,
    Scores,
    ShutdownView,
    SummaryView,
    SyncState,
    SyncStatus,
    TunerView,
    View,
)
from hardware.terminal_display import render_blocks

#: The ``golden`` fixture (tests/ui/conftest.py): compare a frame with its stored PNG.
GoldenCheck = Callable[[str, Image.Image], None]

TYPICAL = Scores(87.4, 100.0, 64.2)
NO_SCORES = Scores(None, None, None)
LONGEST_SCALE = "F# minor pentatonic"
COACH_80 = "Your bends land flat on the G string; aim a touch higher and let the notes ring."
assert len(COACH_80) == 80
REASONING = "Timing was your weakest score in the last three sessions, so slow down and lock in with a steady pulse."
LONG_DETAIL = "database is locked: sqlite3.OperationalError while writing the checkpoint of session 42 to disk"
SCALES = ("A minor pentatonic", "E minor pentatonic", LONGEST_SCALE, "G major", "C major pentatonic", "D natural minor")

GOLDEN_VIEWS: dict[str, View] = {
    # Boot splash
    "boot": BootView("0.1.0"),
    "boot_status": BootView("0.1.0", status="starting audio…"),
    "boot_long_version": BootView("0.1.0.dev412+g1234abcd.d20240101", status="waiting for the audio interface"),
    # Home
    "home_typical": HomeView("alex", SyncStatus(SyncState.SYNCED, 300), LastSession("A minor pentatonic", TYPICAL)),
    "home_offline_queued_longest_scale": HomeView(
        "alex", SyncStatus(SyncState.OFFLINE, 7200, 12), LastSession(LONGEST_SCALE, Scores(100, 100, 100))
    ),
    "home_no_sessions_sync_off_undervoltage": HomeView(
        "alexander.the.great@example.com", SyncStatus(SyncState.OFF), None, PowerWarning.UNDERVOLTAGE
    ),
    "home_none_scores_throttled": HomeView(
        "Zoë", SyncStatus(SyncState.SYNCING, None, 3), LastSession("E major", NO_SCORES), PowerWarning.THROTTLED
    ),
    # AI Mode
    "planning_t0": PlanningView(t=0.0),
    "planning_t1": PlanningView(t=1.2),
    "plan_typical": PlanView("A minor pentatonic", "timing_stability", REASONING, 0.6, 0.5),
    "plan_offline_longest_scale": PlanView(LONGEST_SCALE, "pitch_accuracy", REASONING, 1.0, 0.0, offline=True),
    "plan_reasoning_scrolled": PlanView("A minor pentatonic", "timing_stability", REASONING, 0.6, 0.5, t=6.0),
    "plan_free_text_focus": PlanView("G major", "clean string changes on the B string", "Short.", 0.35, 0.8, t=4.0),
    # Live session
    "live_typical": LiveView(TYPICAL, 754, "C#4", -12.0, True, "Nice, even notes!"),
    "live_empty": LiveView(NO_SCORES, 3, scale="A minor pentatonic"),
    "live_coach_80_t0": LiveView(TYPICAL, 754, "E2", 3.0, True, COACH_80, t=0.0),
    "live_coach_80_t6": LiveView(TYPICAL, 754, "E2", 3.0, True, COACH_80, t=6.0),
    "live_cents_minus50": LiveView(TYPICAL, 59, "A2", -50.0, True),
    "live_cents_plus50": LiveView(TYPICAL, 59, "A2", 50.0, True),
    "live_cents_minus80_clamped": LiveView(TYPICAL, 59, "A2", -80.0, True),
    "live_cents_plus80_clamped": LiveView(TYPICAL, 59, "A2", 80.0, True),
    "live_wrong_note_59_59": LiveView(Scores(5, 0, 100), 3599, "A#2", 0.0, False, scale=LONGEST_SCALE),
    "live_1_23_45": LiveView(Scores(100, 100, 100), 5025, "G3", 7.0, True),
    # Pause
    "pause_59_59": PauseView(3599, scale=LONGEST_SCALE),
    "pause_1_23_45": PauseView(5025),
    # Summary
    "summary_typical": SummaryView(TYPICAL, 312, 298, 14, 754, "timing_stability", SaveState.WILL_SYNC),
    "summary_4_digit_counts": SummaryView(
        Scores(99.6, 88, 91), 9999, 9876, 123, 5025, "scale_conformity", SaveState.SAVED
    ),
    "summary_no_notes_not_saved": SummaryView(NO_SCORES, 0, 0, 0, 4, None, SaveState.FAILED),
    "summary_saving": SummaryView(Scores(70, 95, None), 2, 2, 0, 9, "pitch_accuracy", SaveState.SAVING),
    # Tuner
    "tuner_in_tune": TunerView("E2", -1.5, 82.3),
    "tuner_sharp": TunerView("A2", 23.0, 111.5),
    "tuner_flat_limit": TunerView("D3", -50.0, 142.7),
    "tuner_beyond_clamped": TunerView("B3", 73.0, 258.0),
    "tuner_high_note": TunerView("C#6", 0.4, 1109.0),
    "tuner_silent": TunerView(),
    # Manual mode scale picker
    "picker_first": ScalePickerView(SCALES, 0),
    "picker_middle_longest": ScalePickerView(SCALES, 2),
    "picker_last": ScalePickerView(SCALES, 5),
    "picker_long_option_selected": ScalePickerView(("A minor", "Hungarian minor with a raised fourth degree"), 1, t=3),
    # Errors and shutdown
    "error_no_audio": ErrorView(ErrorKind.NO_AUDIO),
    "error_no_network": ErrorView(ErrorKind.NO_NETWORK),
    "error_disk_full": ErrorView(ErrorKind.DISK_FULL),
    "error_generic_long_t0": ErrorView(ErrorKind.GENERIC, LONG_DETAIL),
    "error_generic_long_t8": ErrorView(ErrorKind.GENERIC, LONG_DETAIL, t=8.0),
    "shutting_down": ShutdownView(),
    "safe_to_unplug": ShutdownView(done=True),
}


@pytest.mark.parametrize("name", list(GOLDEN_VIEWS))
def test_screen_matches_its_golden(name: str, golden: GoldenCheck) -> None:
    frame = compose(GOLDEN_VIEWS[name])
    assert_layout(frame, name)
    golden(name, frame.image)


def test_every_view_type_has_a_golden() -> None:
    assert {type(v) for v in GOLDEN_VIEWS.values()} == set(screens._SCREENS)


# ---- layout invariants -----------------------------------------------------------------------


def assert_layout(frame: Frame, what: object) -> None:
    """What every frame promises: inside the panel, nothing overlapping, nothing cut, nothing unaccounted."""
    image = frame.image
    context = f"{what}\n{render_blocks(image)}" if image.mode == "1" and image.size == (WIDTH, HEIGHT) else str(what)
    assert image.mode == "1" and image.size == (WIDTH, HEIGHT), context
    for p in frame.placed:
        x0, y0, x1, y1 = p.box
        assert 0 <= x0 < x1 <= WIDTH and 0 <= y0 < y1 <= HEIGHT, f"{p} leaves the frame: {context}"
        assert 0 <= p.span[0] <= p.span[1] <= WIDTH, f"{p} pen runs off the frame: {context}"
        if p.mode == "text":
            assert p.shown == p.text, f"{p}: {context}"
        elif p.mode == "elided":
            assert p.role in ELIDABLE_ROLES, f"{p.role!r} text was cut short: {p}: {context}"
            assert p.shown.endswith("…") and p.text.startswith(p.shown[:-1].rstrip()), p
        elif p.mode == "marquee":
            assert frame.animated, f"a marquee in a frame that does not move: {p}"
    for a, b in combinations(frame.placed, 2):
        assert not _overlap(a.box, b.box), f"{a.role} overlaps {b.role}: {a} / {b}: {context}"
    # Every lit pixel belongs to something recorded: the checks above cover all that is drawn.
    covered = np.zeros((HEIGHT, WIDTH), dtype=bool)
    for p in frame.placed:
        x0, y0, x1, y1 = p.box
        covered[y0:y1, x0:x1] = True
    stray = np.asarray(image, dtype=bool) & ~covered
    assert not stray.any(), f"lit pixels outside every recorded element at {np.argwhere(stray)[:5].tolist()}: {context}"


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


WORDS = ["a", "minor", "pentatonic", "the", "bend", "timing", "G", "string", "ok", "Supercalifragilistic", "—", "…"]
ODD = "éüñ’“”—•♯😀中\t\n"


def rand_text(rng: random.Random, max_words: int = 20) -> str:
    kind = rng.random()
    if kind < 0.1:
        return ""
    if kind < 0.2:
        return "".join(rng.choice(string.ascii_letters) for _ in range(rng.randint(1, 60)))
    if kind < 0.3:
        return "".join(rng.choice(string.printable + ODD) for _ in range(rng.randint(1, 90)))
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, max_words)))


def rand_number(rng: random.Random, lo: float, hi: float) -> float:
    r = rng.random()
    if r < 0.05:
        return rng.choice([math.nan, math.inf, -math.inf])
    if r < 0.15:
        return rng.choice([lo, hi, lo - 1000.0, hi + 1000.0, -0.0])
    return rng.uniform(lo, hi)


def rand_optional(rng: random.Random, lo: float, hi: float) -> float | None:
    return None if rng.random() < 0.2 else rand_number(rng, lo, hi)


def rand_scores(rng: random.Random) -> Scores:
    return Scores(rand_optional(rng, 0, 100), rand_optional(rng, 0, 100), rand_optional(rng, 0, 100))


def rand_t(rng: random.Random) -> float:
    return rand_number(rng, 0, 120)


def rand_count(rng: random.Random) -> int:
    return rng.choice([0, 1, 9999, 10_000, 10**9, -5, rng.randint(0, 20_000)])


def rand_note(rng: random.Random) -> str | None:
    return rng.choice([None, "", "E2", "C#4", "A#10", "G", rand_text(rng, 3)])


def rand_scale(rng: random.Random) -> str:
    return rng.choice([*SCALES, rand_text(rng, 6)])


def rand_metric(rng: random.Random) -> str | None:
    return rng.choice([None, *SHORT_LABELS, rand_text(rng, 3)])


GENERATORS: dict[type, Callable[[random.Random], View]] = {
    BootView: lambda r: BootView(rand_text(r, 4), status=rand_text(r, 6), t=rand_t(r)),
    HomeView: lambda r: HomeView(
        rand_text(r, 4),
        SyncStatus(r.choice(list(SyncState)), rand_optional(r, 0, 10**8), rand_count(r)),
        None if r.random() < 0.3 else LastSession(rand_scale(r), rand_scores(r)),
        r.choice([None, *PowerWarning]),
        t=rand_t(r),
    ),
    PlanningView: lambda r: PlanningView(t=rand_t(r)),
    PlanView: lambda r: PlanView(
        rand_scale(r),
        rand_metric(r) or "",
        rand_text(r, 30),
        rand_number(r, 0, 1),
        rand_number(r, 0, 1),
        offline=r.random() < 0.5,
        t=rand_t(r),
    ),
    LiveView: lambda r: LiveView(
        rand_scores(r),
        rand_number(r, 0, 40_000),
        rand_note(r),
        rand_optional(r, -60, 60),
        r.choice([None, True, False]),
        rand_text(r, 16),
        scale=rand_scale(r),
        t=rand_t(r),
    ),
    PauseView: lambda r: PauseView(rand_number(r, 0, 400_000), scale=rand_scale(r), t=rand_t(r)),
    SummaryView: lambda r: SummaryView(
        rand_scores(r),
        rand_count(r),
        rand_count(r),
        rand_count(r),
        rand_number(r, 0, 400_000),
        rand_metric(r),
        r.choice(list(SaveState)),
        t=rand_t(r),
    ),
    TunerView: lambda r: TunerView(rand_note(r), rand_optional(r, -60, 60), rand_optional(r, 20, 2000), t=rand_t(r)),
    ScalePickerView: lambda r: ScalePickerView(
        tuple(rand_scale(r) for _ in range(r.randint(0, 8))), r.randint(-3, 10), t=rand_t(r)
    ),
    ErrorView: lambda r: ErrorView(r.choice(list(ErrorKind)), rand_text(r, 40), t=rand_t(r)),
    ShutdownView: lambda r: ShutdownView(r.random() < 0.5, t=rand_t(r)),
}


def test_generators_cover_every_screen() -> None:
    assert set(GENERATORS) == set(screens._SCREENS)


@pytest.mark.parametrize("kind", list(GENERATORS), ids=lambda k: k.__name__)
def test_random_views_keep_the_layout_rules(kind: type) -> None:
    rng = random.Random(f"fretcoach-{kind.__name__}")
    for i in range(250):
        view = GENERATORS[kind](rng)
        frame = compose(view)
        assert_layout(frame, f"#{i}: {view!r}")
        # Pure: the same view gives the same pixels…
        assert render(view).tobytes() == frame.image.tobytes(), view
        # …and a frame that says it does not move really does not depend on t.
        if not frame.animated:
            later = dataclasses.replace(view, t=view.t + 7.3)
            assert render(later).tobytes() == frame.image.tobytes(), view


def test_long_texts_scroll_and_show_every_character_over_time() -> None:
    view = LiveView(TYPICAL, 754, "E2", 3.0, True, COACH_80)
    frames = [compose(LiveView(TYPICAL, 754, "E2", 3.0, True, COACH_80, t=t / 10)) for t in range(0, 300)]
    coach = [p for p in compose(view).placed if p.role == "coach"]
    assert len(coach) == 1 and coach[0].mode == "marquee" and coach[0].text == COACH_80
    assert all(f.animated for f in frames)
    bottoms = {f.image.crop((0, 53, WIDTH, HEIGHT)).tobytes() for f in frames}
    assert len(bottoms) > 100  # it moves…
    top = {f.image.crop((0, 0, WIDTH, 53)).tobytes() for f in frames}
    assert len(top) == 1  # …and nothing else does


# ---- behaviour -------------------------------------------------------------------------------


def texts(frame: Frame) -> dict[str, str]:
    return {p.role: p.text for p in frame.placed if p.text}


def placed(frame: Frame, role: str) -> Placed:
    (found,) = [p for p in frame.placed if p.role == role]
    return found


def test_missing_scores_show_dashes() -> None:
    frame = compose(LiveView(NO_SCORES, 3))
    assert [texts(frame)[f"score-{k}"] for k in SHORT_LABELS] == ["--", "--", "--"]
    assert texts(frame)["note"] == "--"
    assert texts(frame)["scale"] == "listening…"
    home = compose(HomeView("a", SyncStatus(SyncState.OFF), LastSession("A major", NO_SCORES)))
    assert [texts(home)[f"score-{k}"] for k in SHORT_LABELS] == ["P --", "S --", "T --"]


def test_live_scores_are_rounded_and_labelled_in_words() -> None:
    frame = compose(LiveView(Scores(87.5, 100.0, 0.2), 754))
    t = texts(frame)
    assert [t[f"score-{k}"] for k in SHORT_LABELS] == ["88", "100", "0"]
    assert [t[f"label-{k}"] for k in SHORT_LABELS] == ["pitch", "scale", "timing"]
    assert t["elapsed"] == "12:34"


def bar_fill(frame: Frame, key: str) -> int:
    x0, y0, x1, _ = placed(frame, f"bar-{key}").box
    return sum(frame.image.getpixel((x, y0 + 2)) != 0 for x in range(x0 + 1, x1 - 1))


def test_bars_fill_in_proportion_to_the_score() -> None:
    frame = compose(LiveView(Scores(0, 50, 100), 1))
    assert [bar_fill(frame, k) for k in SHORT_LABELS] == [0, 20, 40]
    assert bar_fill(compose(LiveView(NO_SCORES, 1)), "pitch_accuracy") == 0


def needle_columns(frame: Frame, row: int) -> list[int]:
    """Lit columns of the needle box on a row where only the needle (not the scale) is drawn."""
    x0, y0, x1, _ = placed(frame, "needle").box
    return [x for x in range(x0, x1) if frame.image.getpixel((x, y0 + row))]


def test_live_needle_centres_on_zero_and_stops_at_the_limits() -> None:
    def needle(cents: float) -> list[int]:
        cols = needle_columns(compose(LiveView(TYPICAL, 1, "A2", cents, True)), 2)
        return [c for c in cols if c != 63]  # the centre mark runs the full height

    assert needle(0) == [62, 64]  # the needle covers the centre mark
    assert needle(-50) == [43, 44, 45] and needle(50) == [81, 82, 83]
    assert needle(-80)[0] == 43 and needle(80)[-1] == 83  # clamped…
    plain = compose(LiveView(TYPICAL, 1, "A2", 50, True)).image
    hollow = compose(LiveView(TYPICAL, 1, "A2", 80, True)).image
    assert plain.getpixel((82, 40)) and not hollow.getpixel((82, 40))  # …and drawn hollow
    assert needle_columns(compose(LiveView(TYPICAL, 1)), 2) == [63]  # no note: no needle


def test_wrong_note_is_highlighted() -> None:
    right = compose(LiveView(TYPICAL, 1, "A#2", 0.0, True))
    wrong = compose(LiveView(TYPICAL, 1, "A#2", 0.0, False))
    assert placed(right, "note").text == placed(wrong, "note").text == "A#2"
    assert wrong.image.getpixel((0, 33)) and not right.image.getpixel((0, 33))


@pytest.mark.parametrize(
    ("cents", "status"),
    [(0.0, "in tune"), (3.0, "in tune"), (-3.0, "in tune"), (3.4, "sharp · tune down"), (-7.0, "flat · tune up")],
)
def test_tuner_says_in_tune_within_three_cents(cents: float, status: str) -> None:
    frame = compose(TunerView("E2", cents, 82.4))
    assert texts(frame)["status"] == status
    assert texts(frame)["hz"] == "82.4 Hz"


def test_tuner_without_a_string_sounding() -> None:
    frame = compose(TunerView())
    assert texts(frame)["status"] == "play a string" and texts(frame)["note"] == "--"
    assert "hz" not in texts(frame) and "cents" not in texts(frame)


def test_summary_names_the_weakest_metric_and_the_save_state() -> None:
    frame = compose(SummaryView(TYPICAL, 1234, 1200, 34, 754, "timing_stability", SaveState.WILL_SYNC))
    t = texts(frame)
    assert t["weakest"] == "weakest: timing"
    assert t["notes"] == "1234 notes · 12:34"
    assert t["counts"] == "1200 ok · 34 wrong"
    assert t["save"] == "saved · will sync"
    # The weakest column is lit (drawn dark on light).
    x0, y0, _, _ = placed(frame, "score-timing_stability").box
    assert frame.image.getpixel((x0 + 20, y0))


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (SyncStatus(SyncState.SYNCED, 300), "synced 5 min ago"),
        (SyncStatus(SyncState.SYNCED, 30), "synced just now"),
        (SyncStatus(SyncState.SYNCED, None), "not synced yet"),
        (SyncStatus(SyncState.SYNCED, 300, 2), "synced 5 min ago"),
        (SyncStatus(SyncState.OFFLINE, 300, 12), "offline · 12 queued"),
        (SyncStatus(SyncState.OFFLINE, 300, 0), "offline"),
        (SyncStatus(SyncState.OFFLINE, None, 123_456), "offline · 123k queued"),
        (SyncStatus(SyncState.OFF), "sync off"),
        (SyncStatus(SyncState.SYNCING, 5), "syncing…"),
        (SyncStatus(SyncState.ERROR, 5, 9999), "error · 9999 queued"),
    ],
)
def test_sync_line(status: SyncStatus, text: str) -> None:
    assert sync_text(status) == text


def test_sync_line_always_fits() -> None:
    from device.ui.fonts import SMALL

    rng = random.Random(2)
    for _ in range(500):
        status = SyncStatus(rng.choice(list(SyncState)), rand_optional(rng, 0, 10**9), rand_count(rng))
        assert SMALL.width(SMALL.clean(sync_text(status))) <= WIDTH, status


def test_save_texts() -> None:
    assert [save_text(s) for s in SaveState] == ["saving…", "saved", "saved · will sync", "saved · synced", "NOT saved"]


def test_long_user_name_is_shortened_but_a_scale_name_never() -> None:
    last = LastSession(LONGEST_SCALE, TYPICAL)
    frame = compose(HomeView("alexander.the.great@example.com", SyncStatus(SyncState.OFF), last))
    user = placed(frame, "user")
    assert user.mode == "elided" and user.shown == "alexander.the.great@…"
    assert placed(frame, "scale").mode == "text" and placed(frame, "scale").text == LONGEST_SCALE


def test_longest_scale_name_is_shown_whole_wherever_a_scale_appears() -> None:
    views: list[View] = [
        HomeView("a", SyncStatus(SyncState.OFF), LastSession(LONGEST_SCALE, TYPICAL)),
        PlanView(LONGEST_SCALE, "pitch_accuracy", "x", 0.5, 0.5, offline=True),
        LiveView(TYPICAL, 1, scale=LONGEST_SCALE),
        PauseView(1, scale=LONGEST_SCALE),
        ScalePickerView((LONGEST_SCALE, "A major"), 0),
        ScalePickerView(("A major", LONGEST_SCALE), 0),
    ]
    for view in views:
        shown = [p for p in compose(view).placed if p.text == LONGEST_SCALE]
        assert len(shown) == 1 and shown[0].mode == "text", view


def test_picker_keeps_the_selection_visible_and_counts_position() -> None:
    options = tuple(f"scale {i}" for i in range(10))
    for selected in range(10):
        frame = compose(ScalePickerView(options, selected))
        listed = [p.text for p in frame.placed if p.role == "option"]
        assert options[selected] in listed and len(listed) == 3
        assert texts(frame)["position"] == f"{selected + 1}/10"
    # Out-of-range selections are clamped, not an error.
    assert texts(compose(ScalePickerView(options, 99)))["position"] == "10/10"
    assert texts(compose(ScalePickerView((), 0)))["option"] == "no scales"


def test_error_detail_pages_through_every_line() -> None:
    from device.ui.fonts import SMALL
    from device.ui.text import wrap

    view = ErrorView(ErrorKind.GENERIC, LONG_DETAIL)
    lines = wrap("Something went wrong.\n" + LONG_DETAIL, SMALL, WIDTH)
    assert len(lines) > 4
    seen: set[str] = set()
    for step in range(12):
        frame = compose(ErrorView(ErrorKind.GENERIC, LONG_DETAIL, t=step * 2.5))
        assert frame.animated
        seen.update(p.text for p in frame.placed if p.role == "body")
    assert seen == set(lines)
    assert compose(view).animated


def test_no_audio_error_asks_to_plug_in_the_interface() -> None:
    frame = compose(ErrorView(ErrorKind.NO_AUDIO))
    assert " ".join(p.text for p in frame.placed if p.role == "body") == "Plug in your audio interface."
    assert texts(frame)["title"] == "NO AUDIO"
    assert not frame.animated


def test_static_screens_do_not_ask_for_redraws() -> None:
    assert not compose(GOLDEN_VIEWS["home_typical"]).animated
    assert not compose(GOLDEN_VIEWS["live_typical"]).animated
    assert compose(GOLDEN_VIEWS["live_coach_80_t0"]).animated
    assert compose(GOLDEN_VIEWS["planning_t0"]).animated


def test_render_functions_match_the_dispatcher() -> None:
    pairs: list[tuple[Callable[..., Image.Image], View]] = [
        (screens.render_boot, GOLDEN_VIEWS["boot"]),
        (screens.render_home, GOLDEN_VIEWS["home_typical"]),
        (screens.render_planning, GOLDEN_VIEWS["planning_t1"]),
        (screens.render_plan, GOLDEN_VIEWS["plan_typical"]),
        (screens.render_live, GOLDEN_VIEWS["live_typical"]),
        (screens.render_pause, GOLDEN_VIEWS["pause_59_59"]),
        (screens.render_summary, GOLDEN_VIEWS["summary_typical"]),
        (screens.render_tuner, GOLDEN_VIEWS["tuner_sharp"]),
        (screens.render_scale_picker, GOLDEN_VIEWS["picker_first"]),
        (screens.render_error, GOLDEN_VIEWS["error_no_audio"]),
        (screens.render_shutdown, GOLDEN_VIEWS["safe_to_unplug"]),
    ]
    for fn, view in pairs:
        assert fn(view).tobytes() == render(view).tobytes()


def test_render_rejects_what_is_not_a_view() -> None:
    with pytest.raises(TypeError, match="no screen renders"):
        render("home")  # type: ignore[arg-type]


def test_scores_from_metrics_and_metric_keys_match_the_analysis_core() -> None:
    assert set(SHORT_LABELS) == set(METRIC_LABELS)
    m = Metrics(91.2, None, 55.0, 10, 9, 1, "timing_stability")
    assert Scores.from_metrics(m) == Scores(91.2, None, 55.0)


def test_frame_size_matches_the_display_seam_and_shows_on_a_dummy_panel() -> None:
    from hardware.display import HEIGHT as DISPLAY_HEIGHT
    from hardware.display import WIDTH as DISPLAY_WIDTH
    from hardware.display import LumaDisplay, open_display

    assert (WIDTH, HEIGHT) == (DISPLAY_WIDTH, DISPLAY_HEIGHT)
    image = render(GOLDEN_VIEWS["live_typical"])
    with open_display("dummy") as display:
        assert isinstance(display, LumaDisplay)
        display.show(image)
        display.show(render(GOLDEN_VIEWS["live_typical"]))  # same frame again: not resent
        assert display.frames_sent == 1
        assert display.device.image.convert("1").tobytes() == image.tobytes()


def test_elapsed_formats_used_on_screen() -> None:
    assert texts(compose(PauseView(3599)))["elapsed"] == format_elapsed(3599) == "59:59"
    assert texts(compose(LiveView(TYPICAL, 5025)))["elapsed"] == "1:23:45"
