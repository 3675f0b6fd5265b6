"""The bundled demo take: clean electric guitar, A minor pentatonic at 100 BPM in eighths, with
two wrong notes (rendered by bench/render_takes.py; its truth is in demo_take.json)."""

from pathlib import Path

__all__ = ["DEMO_BPM", "DEMO_SCALE", "DEMO_TAKE"]

DEMO_TAKE = Path(__file__).with_name("demo_take.flac")
DEMO_SCALE = "A minor pentatonic"
DEMO_BPM = 100
