"""客户分级 Excel add-in (xlwings). The ribbon buttons of xlplugin.xlam call `xlplugin.main()`
(分级) and `xlplugin.main_preview()` (预览)."""

from .addin import RunOutcome, find_config, main, run
from .preview_sheet import main_preview, preview

__all__ = ["RunOutcome", "find_config", "main", "main_preview", "preview", "run"]
