"""Kept as an import path: pins live in grading/rules/pins.py, the modifying
stage types in grading/rules/adjust.py, provisional.py and lapsed.py."""

from __future__ import annotations

from .rules.adjust import condition_mask
from .rules.base import Change
from .rules.pins import PinRow, apply_pins, pins_from_frame

__all__ = ["Change", "PinRow", "apply_pins", "condition_mask", "pins_from_frame"]
