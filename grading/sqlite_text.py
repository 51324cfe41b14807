"""SQLite's English error texts said in Chinese for the history messages ([E500] and the previews').

Only the reasons a user's file or folder can cause are listed; any other text is kept, marked as
SQLite's own words, so nothing is hidden."""

from __future__ import annotations

_REASONS = (
    ("file is not a database", "文件不是 SQLite 数据库"),
    ("database disk image is malformed", "数据库文件已损坏"),
    ("unable to open database file", "无法打开数据库文件（文件夹不存在或没有权限）"),
    ("attempt to write a readonly database", "数据库文件是只读的"),
    ("readonly database", "数据库文件是只读的"),
    ("disk i/o error", "磁盘读写错误"),
    ("database or disk is full", "磁盘已满"),
    ("database is locked", "数据库正被其他程序使用"),
    ("no such table", "缺少本程序的数据表"),
    ("authorization denied", "没有访问权限"),
)


def reason(exc: BaseException) -> str:
    """What went wrong, in Chinese where SQLite's text is one a file can cause."""
    text = str(exc).strip()
    lowered = text.lower()
    for english, chinese in _REASONS:
        if english in lowered:
            return chinese
    return f"SQLite 报告：{text}" if text else "未知的 SQLite 错误"
