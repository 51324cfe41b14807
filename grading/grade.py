"""Stage 4, grade: kept as the import path of the grading entry points; the
engine lives in grading/rules/engine.py, the stage types beside it."""

from __future__ import annotations

from .rules.engine import grade_customers, grade_rank, hold_downgrades, order_customers

__all__ = ["grade_customers", "grade_rank", "hold_downgrades", "order_customers"]
