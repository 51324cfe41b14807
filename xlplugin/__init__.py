"""客户分级 Excel add-in (xlwings). The ribbon button of xlplugin.xlam calls `xlplugin.main()`."""

from .addin import RunOutcome, find_config, main, run

__all__ = ["RunOutcome", "find_config", "main", "run"]
