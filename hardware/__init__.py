"""The pedal's parts, each with a real backend and stand-ins: OLED, footswitch(es), status LED."""

from hardware.display import DISPLAY_KINDS, Display, open_display
from hardware.footswitch import (
    Footswitch,
    FootswitchEvent,
    Gesture,
    GestureTimings,
    GpioFootswitch,
    ScriptedFootswitch,
)
from hardware.keyboard_footswitch import KeyboardFootswitch
from hardware.led import GpioStatusLed, LedState, NullLed, StatusLed, led_state_for
from hardware.terminal_display import render_blocks

__all__ = [
    "DISPLAY_KINDS",
    "Display",
    "Footswitch",
    "FootswitchEvent",
    "Gesture",
    "GestureTimings",
    "GpioFootswitch",
    "GpioStatusLed",
    "KeyboardFootswitch",
    "LedState",
    "NullLed",
    "ScriptedFootswitch",
    "StatusLed",
    "led_state_for",
    "open_display",
    "render_blocks",
]
