"""What every stage type shares: the outcome of a stage, the value helpers
(labels, formatting, cent-exact comparison), and the two kinds of stage.

A stage type is one module under grading/rules/ holding its spec (a pydantic
model, data only) and one implementation registered on it (`rule`):

* an *assigning* stage (`AssigningSpec` + `AssigningRule`) sets a grade per
  customer from the metrics (apply), says in Chinese what it does (describe),
  lists the grades it can give best first (levels) and, where it has a
  boundary, how far each customer is from the next better grade (gap);
* a *modifying* stage (`ModifyingSpec` + `ModifyingRule`) moves grades that
  an earlier stage assigned.

mypy checks that every spec names a complete implementation (abstract
methods) and that the engine handles every kind (`assert_never`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, Self, TypeVar

import numpy as np
import pandas as pd

from ..errors import MissingColumn
from ..fields import METRIC_BY_KEY
from ..normalise import _numbers
from ..problems import Problem
from ..units import format_amount, format_ratio
from .spec import Model

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class StageOutcome:
    """Grade per customer (NaN where the stage could not decide), reasons, optional score."""

    grade: pd.Series
    reason: pd.Series
    missing: pd.Series  # str: labels of values that were empty ("" if none)
    score: pd.Series | None = None
    notes: tuple[Problem, ...] = ()  # extra data problems found while applying (e.g. one grid axis unknown)


@dataclass(frozen=True)
class Change:
    """New grades and, per changed (or skipped) customer, the text for 分级依据."""

    grade: pd.Series
    notes: dict[str, str]
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class Gap:
    """Distance to the next better grade per customer (NaN where none applies).

    `gap` is in the unit of the stage's value (money, count, score points …),
    `boundary` the value the customer must reach, `target` the grade reached
    there, `shown` formats a gap for 距上一等级."""

    gap: np.ndarray
    boundary: np.ndarray
    target: list[str]
    shown: Callable[[float], str]


@dataclass(frozen=True)
class ModifyContext:
    """What a modifying stage may need besides the grades: the ladder it moves within."""

    ladder: list[str]
    stage_index: int
    problems: list[Problem] = field(default_factory=list)


# ------------------------------------------------------------------ value helpers

def label_of(ref: str) -> str:
    return ref.removeprefix("col:") if ref.startswith("col:") else METRIC_BY_KEY[ref].label


def kind_of(ref: str) -> str:
    return "number" if ref.startswith("col:") else METRIC_BY_KEY[ref].kind


def format_value(ref: str, value: float) -> str:
    return value_format(ref)(value)


def value_format(ref: str) -> Callable[[Any], str]:
    """format_value(ref, ·), the kind looked up once (a whole column is formatted with it)."""
    kind = kind_of(ref)
    if kind == "money":
        return format_amount  # "空" for None and NaN, as below
    if kind == "ratio":
        return format_ratio
    unit = {"days": "天", "months": "个月"}.get(kind, "")

    def plain(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "空"
        return f"{value:g}{unit}"
    return plain


def distinct_texts(values: np.ndarray, fmt: Callable[[Any], str]) -> np.ndarray:
    """[fmt(v) for v in values.tolist()] as an object array, fmt called once per distinct value (floats are
    told apart by their bits: 0.0 and -0.0 may be shown differently)."""
    keys = values.view(np.int64) if values.dtype == np.float64 else values
    codes, uniques = pd.factorize(keys, use_na_sentinel=False)
    if values.dtype == np.float64:
        uniques = np.asarray(uniques, dtype=np.int64).view(np.float64)
    texts = np.empty(len(uniques), dtype=object)
    texts[:] = [fmt(u) for u in np.asarray(uniques).tolist()]
    return texts[codes] if len(values) else np.empty(0, dtype=object)


def join_texts(pieces: Sequence[np.ndarray | str]) -> list[str]:
    """Row by row, the concatenation of the pieces: literal text, or object arrays of str (one per row; at
    least one array), in one pass (the writer's Arrow join) instead of a new Python string per piece and row."""
    import pyarrow as pa

    from ..sheet_cells import join

    if all(isinstance(p, str) for p in pieces):
        raise ValueError("join_texts: no array among the pieces (the number of rows is unknown)")
    joined: list[str] = join([p if isinstance(p, str) else pa.array(p, type=pa.large_string())
                              for p in pieces]).to_pylist()
    return joined


def format_gap(ref: str, gap: float) -> str:
    """A distance to the next grade as shown: rounded *up* to the shown precision, so adding the shown
    amount always reaches the next grade (12,345.67 → 1.24万, not 1.23万)."""
    kind = kind_of(ref)
    if kind == "money":
        unit = 1e6 if abs(gap) >= 1e8 else 100.0 if abs(gap) >= 1e4 else 0.01
        return format_amount(math.ceil(round(gap / unit, 6)) * unit)
    if kind == "ratio":
        return format_ratio(math.ceil(round(gap / 1e-4, 6)) * 1e-4)
    return format_value(ref, math.ceil(round(gap * 100, 6)) / 100)


def step_of(ref: str) -> float:
    """The smallest move of a value: one cent for money and free numbers, one for counts and days."""
    kind = kind_of(ref)
    if kind in ("count", "days", "months"):
        return 1.0
    if kind == "ratio":
        return 0.0001
    return 0.01


def to_cents(values: np.ndarray | float) -> np.ndarray:
    """Values on the cent grid, as integers held in float (NaN stays NaN): compare money with these."""
    return np.rint(np.asarray(values, dtype=float) * 100.0)


def comparable(ref: str, values: np.ndarray | float) -> np.ndarray:
    """Values as compared by rules: money at cent precision, others as they are."""
    if kind_of(ref) == "money":
        return to_cents(values)
    return np.asarray(values, dtype=float)


def column_values(table: pd.DataFrame, ref: str) -> pd.Series:
    """The raw column for a metric key or `col:<master column>`; a clear error if the column is absent."""
    if ref in table:
        return table[ref]
    name = ref.removeprefix("col:")
    found = [c.removeprefix("col:") for c in table.columns if c.startswith("col:")]
    raise MissingColumn(
        f"分级规则用到客户档案中的列「{name}」，但客户档案中没有这一列。"
        f"客户档案中找到的自定义列：{'、'.join(found) or '（无，或未配置 sources.customers）'}。"
        "请在客户档案中加入该列，或修改 config.yaml 中的 column。"
    )


def numeric_values(table: pd.DataFrame, ref: str) -> np.ndarray:
    col = column_values(table, ref)
    if ref.startswith("col:"):
        nums, _, _ = _numbers(col.tolist())
        return np.asarray(nums, dtype=float)
    return col.astype(float).to_numpy()


def series(values: Any, index: pd.Index, dtype: Any = object) -> pd.Series:
    out: pd.Series = pd.Series(values, index=index, dtype=dtype)
    return out


def outcome(grades: np.ndarray, reasons: list[str], missing: np.ndarray, ref: str, index: pd.Index,
            score: pd.Series | None = None) -> StageOutcome:
    labels = np.where(missing, label_of(ref), "")
    grades = grades.astype(object)
    grades[missing] = np.nan
    return StageOutcome(series(grades, index), series(reasons, index), series(labels, index), score)


def rank_order(values: np.ndarray, codes: pd.Index) -> np.ndarray:
    """Positions sorted by value descending, then customer code ascending; missing values last."""
    key = np.where(np.isnan(values), np.inf, -values)
    return np.lexsort((codes.astype(str).to_numpy(), key))


def next_better(levels: list[str], grades: np.ndarray) -> list[str]:
    """Per customer the grade one step better in `levels` ("" for the best or an unknown grade)."""
    rank = {g: i for i, g in enumerate(levels)}
    out = []
    for g in grades.tolist():
        r = rank.get(g) if isinstance(g, str) else None
        out.append(levels[r - 1] if r is not None and r > 0 else "")
    return out


# ------------------------------------------------------------------ the two kinds of stage

S = TypeVar("S")


class Band(Protocol):
    grade: str


def band_levels(bands: Sequence[Band], else_grade: str) -> list[str]:
    """Grades of a banded stage (bands best first, then the else grade), each once."""
    return list(dict.fromkeys([b.grade for b in bands] + [else_grade]))


def band_grades(key: str, bands: Sequence[Band], else_grade: str) -> list[tuple[Path, str]]:
    """(path, grade) of every grade a banded stage names, for the config's cross-checks."""
    return [*(((key, j, "grade"), b.grade) for j, b in enumerate(bands)), (("else",), else_grade)]


class AssigningRule(ABC, Generic[S]):
    """How an assigning stage type is applied, described and checked."""

    @abstractmethod
    def apply(self, stage: S, table: pd.DataFrame) -> StageOutcome: ...

    @abstractmethod
    def describe(self, stage: S) -> list[tuple[str, str]]:
        """(kind, text) lines for 分级规则; a kind starting with two spaces is shown as its own item."""

    @abstractmethod
    def levels(self, stage: S) -> list[str]:
        """Grades this stage can give, best first."""

    @abstractmethod
    def named_grades(self, stage: S) -> list[tuple[Path, str]]:
        """(path inside the stage, grade) for every grade the config names, to check against grades."""

    def gap(self, stage: S, table: pd.DataFrame, outcome: StageOutcome) -> Gap | None:
        """Distance to the next better grade; None for stage types without a single boundary."""
        return None

    def inputs(self, stage: S) -> list[str]:
        """Value refs (metric keys or col:…) the stage reads."""
        return []


class ModifyingRule(ABC, Generic[S]):
    """How a modifying stage type moves grades, is described and checked."""

    @abstractmethod
    def apply(self, stage: S, grades: pd.Series, table: pd.DataFrame, context: ModifyContext) -> Change: ...

    @abstractmethod
    def describe(self, stage: S) -> list[tuple[str, str]]: ...

    @abstractmethod
    def named_grades(self, stage: S) -> list[tuple[Path, str]]: ...

    def ladder_grades(self, stage: S) -> list[tuple[Path, str]]:
        """Grades that must lie on the ladder of the assigning stage before (adjust)."""
        return []

    def change_words(self, stage: S) -> tuple[str, str, str] | None:
        """(grade, word for a change into it, word for a change out of it) when the stage sets a grade
        outside the ranked ladder (暂定, 流失): such changes are not upgrades or downgrades."""
        return None

    def inputs(self, stage: S) -> list[str]:
        return []


class AssigningSpec(Model, ABC):
    """Base of assigning stage specs: `rule` is the one implementation of the type."""

    name: str

    @property
    @abstractmethod
    def rule(self) -> AssigningRule[Self]: ...

    @property
    def levels(self) -> list[str]:
        return self.rule.levels(self)

    def assign(self, table: pd.DataFrame) -> StageOutcome:
        return self.rule.apply(self, table)

    def gap(self, table: pd.DataFrame, result: StageOutcome) -> Gap | None:
        return self.rule.gap(self, table, result)

    def describe(self) -> list[tuple[str, str]]:
        return self.rule.describe(self)

    def named_grades(self) -> list[tuple[Path, str]]:
        return self.rule.named_grades(self)

    def ladder_grades(self) -> list[tuple[Path, str]]:
        return []

    def inputs(self) -> list[str]:
        return self.rule.inputs(self)


class ModifyingSpec(Model, ABC):
    """Base of modifying stage specs."""

    name: str

    @property
    @abstractmethod
    def rule(self) -> ModifyingRule[Self]: ...

    def modify(self, grades: pd.Series, table: pd.DataFrame, context: ModifyContext) -> Change:
        return self.rule.apply(self, grades, table, context)

    def describe(self) -> list[tuple[str, str]]:
        return self.rule.describe(self)

    def named_grades(self) -> list[tuple[Path, str]]:
        return self.rule.named_grades(self)

    def ladder_grades(self) -> list[tuple[Path, str]]:
        return self.rule.ladder_grades(self)

    def change_words(self) -> tuple[str, str, str] | None:
        return self.rule.change_words(self)

    def inputs(self) -> list[str]:
        return self.rule.inputs(self)
