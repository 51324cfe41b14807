"""Exception tree of the grading core.

Every error carries a stable code (searchable in the README) and a Chinese
message a user can act on. Only the CLI and the add-in turn these into exit
codes or message boxes; the core just raises them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class GradingError(Exception):
    """Base of every error a user can fix (config, input, template, output)."""

    code = "E000"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


@dataclass(frozen=True)
class ConfigIssue:
    """One problem found in config.yaml: where it is and what is allowed."""

    path: str
    line: int | None
    message: str

    def render(self, file_name: str) -> str:
        where = f"{file_name} 第 {self.line} 行" if self.line else file_name
        key = f" {self.path}" if self.path else ""
        return f"{where}{key}: {self.message}"


class ConfigError(GradingError):
    """config.yaml is unreadable or breaks the rules; all issues are listed together."""

    code = "E100"

    def __init__(self, file_name: str, issues: Sequence[ConfigIssue]) -> None:
        self.file_name = file_name
        self.issues = list(issues)
        lines = [f"配置文件有 {len(self.issues)} 处错误，请修改后重试："]
        lines += [f"  - {i.render(file_name)}" for i in self.issues]
        super().__init__("\n".join(lines))


class InputError(GradingError):
    """An input export cannot be used as it is."""

    code = "E200"


class InputFileMissing(InputError):
    """A configured input path or glob matches no file."""

    code = "E201"


class UnreadableFile(InputError):
    """A file exists but is not a format we can read (or is damaged)."""

    code = "E202"


class EmptySheet(InputError):
    """A sheet or file holds no data rows."""

    code = "E203"


class HeaderNotFound(InputError):
    """No row of the first rows looks like a header of the expected export."""

    code = "E204"


class MissingColumn(InputError):
    """A required field has no matching column header."""

    code = "E205"


class InputErrors(InputError):
    """Several input errors collected from one run, reported together."""

    code = "E200"

    def __init__(self, errors: Sequence[InputError]) -> None:
        self.errors = list(errors)
        if len(self.errors) == 1:
            text = str(self.errors[0])
        else:
            text = f"输入数据有 {len(self.errors)} 处错误：\n" + "\n".join(
                f"  - {e}" for e in self.errors
            )
        super().__init__(text)

    def __str__(self) -> str:
        return self.message


class TemplateError(GradingError):
    """The output template is missing or lacks a sheet/header the output needs."""

    code = "E300"


class OutputError(GradingError):
    """The output file cannot be written."""

    code = "E400"


class OutputLocked(OutputError):
    """The output file is open in another program (e.g. Excel) and cannot be replaced."""

    code = "E401"


# ---------------------------------------------------------------- issue 9: reliability

class OutputOverInput(ConfigError):
    """output.file / -o (or the history database) resolves to a file the run reads."""

    code = "E106"

    def __init__(self, file_name: str, key: str, message: str) -> None:
        super().__init__(file_name, [ConfigIssue(key, None, message)])


class DemoOnOwnData(GradingError):
    """`grade-etl demo` with a config that reads files outside the demo folder (the user's exports)."""

    code = "E107"


class EmptyData(InputError):
    """Every data row of a required source is missing or was dropped."""

    code = "E206"


class SheetTooLarge(InputError):
    """A sheet's real extent (cells far from the data, huge spans) is beyond what can be read safely."""

    code = "E207"


class BadTextLine(InputError):
    """A line of a CSV/TSV export cannot be read (huge field or line, NUL bytes)."""

    code = "E208"


class MixedEncoding(InputError):
    """One text export mixes UTF-8 and GBK lines."""

    code = "E209"


class DuplicateColumns(InputError):
    """Two or more columns of one sheet map to the same field."""

    code = "E210"


class HistoryBusy(OutputError):
    """The history database is locked by another program (busy, not damaged)."""

    code = "E403"


class OutputFolderNotWritable(OutputError):
    """The output folder cannot be written (read-only, no permission)."""

    code = "E404"


# ---- issue 12: real exports as they come (E230–E249)

class AmountIsUnitPrice(InputError):
    """The column mapped as the line amount is a unit-price column."""

    code = "E230"


# ---------------------------------------------------------------- issue 11 (E130–E149)

class RuleInputMissing(ConfigError):
    """A rule reads a value that none of the loaded exports provides (the column was not recognised)."""

    code = "E130"


# ---- issue 10: template check (E310–E329), init (E420–E439)

class TemplateMismatch(TemplateError):
    """The template lacks sheets or header texts the fill plan needs (found by check-config)."""

    code = "E310"


class InitError(OutputError):
    """`grade-etl init` cannot create the starter files in the folder."""

    code = "E420"


# ---- campaign after issues 9–12 (reliability, E405–E409)

class OutputIsFolder(OutputError):
    """output.file / -o names an existing folder."""

    code = "E405"


# ---- issue 13: rule previews, period diffs, reviews

class PreviewTargetError(OutputError):
    """The preview would write over a file a run owns (output, history, template, config, input)."""

    code = "E250"


class PeriodNotFound(InputError):
    """A period named on the command line is not stored in the history database."""

    code = "E251"


class NoStoredRun(InputError):
    """There is no stored run to compare with (no database, or it is empty)."""

    code = "E252"


# ---- issue 14: views (总览, 业务员与地区, 应收与信用)

class BlocksOverlap(TemplateError):
    """Two tables of a template sheet are stacked so that the upper one's rows reach the lower one's header."""

    code = "E330"
