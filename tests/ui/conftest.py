"""Golden-image fixtures for the screen tests.

A golden is ``tests/ui/golden/<name>.png``. By default a frame that differs fails the test,
writes what was drawn next to the golden as ``<name>.actual.png`` and puts both frames (and
where they differ) in the failure message as half-block text. To accept new frames, run::

    FRETCOACH_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/ui
    .venv/bin/python -m pytest tests/ui --update-golden      # same, when tests/ui is on the command line

and look at the PNGs before committing them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageChops

from hardware.terminal_display import render_blocks

GOLDEN_DIR = Path(__file__).parent / "golden"

GoldenCheck = Callable[[str, Image.Image], None]


def pytest_addoption(parser: pytest.Parser) -> None:
    # Only seen when this conftest is an initial one (tests/ui named on the command line);
    # the environment variable works from anywhere.
    parser.addoption("--update-golden", action="store_true", default=False, help="rewrite tests/ui/golden/*.png")


def _updating(config: pytest.Config) -> bool:
    return bool(config.getoption("--update-golden", default=False)) or os.environ.get("FRETCOACH_UPDATE_GOLDEN") == "1"


def _diff_message(name: str, expected: Image.Image, actual: Image.Image, actual_path: Path) -> str:
    diff = ImageChops.logical_xor(expected, actual)
    changed = int(np.count_nonzero(np.asarray(diff)))
    return (
        f"frame {name!r} differs from its golden in {changed} pixels; wrote {actual_path}\n"
        f"--- expected ---\n{render_blocks(expected)}\n"
        f"--- actual ---\n{render_blocks(actual)}\n"
        f"--- differing pixels ---\n{render_blocks(diff)}"
    )


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> GoldenCheck:
    """``golden(name, image)``: compare a frame with its stored PNG (or rewrite it when updating)."""
    updating = _updating(request.config)

    def check(name: str, image: Image.Image) -> None:
        assert image.mode == "1" and image.size == (128, 64), f"{name}: {image.mode} {image.size}"
        path = GOLDEN_DIR / f"{name}.png"
        actual_path = GOLDEN_DIR / f"{name}.actual.png"
        if updating:
            GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
            image.save(path)
            actual_path.unlink(missing_ok=True)
            return
        if not path.exists():
            image.save(actual_path)
            pytest.fail(
                f"no golden for {name!r}; wrote {actual_path}. Look at it, then rerun with "
                f"FRETCOACH_UPDATE_GOLDEN=1 to accept it.\n{render_blocks(image)}"
            )
        with Image.open(path) as stored:
            expected = stored.convert("1")
        if expected.tobytes() != image.tobytes():
            image.save(actual_path)
            pytest.fail(_diff_message(name, expected, image, actual_path))
        actual_path.unlink(missing_ok=True)

    return check
