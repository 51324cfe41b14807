"""argparse in Chinese: the usage line, help headings and the messages of a mistyped command line.

argparse writes its own texts in English ("usage:", "error: unrecognized arguments: …"). Its
messages pass through gettext with fixed English templates, so the ones a user can cause are
matched here and said in Chinese; anything not listed is shown as argparse wrote it. The exit
code stays argparse's 2.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import NoReturn

_HEADINGS = (
    ("usage: ", "用法："),
    ("\noptions:\n", "\n选项：\n"),
    ("\npositional arguments:\n", "\n参数：\n"),
    ("show this help message and exit", "显示本帮助并退出"),
)

_MESSAGES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^argument (?P<arg>[^:]+): invalid choice: '(?P<value>.*)' \(choose from (?P<choices>.*)\)$", re.S),
     "「{value}」不是可用的{arg}，可选：{choices}"),
    (re.compile(r"^unrecognized arguments: (?P<args>.*)$", re.S), "无法识别的参数：{args}（用 -h 查看可用参数）"),
    (re.compile(r"^the following arguments are required: (?P<args>.*)$", re.S), "缺少必需的参数：{args}"),
    (re.compile(r"^argument (?P<arg>[^:]+): expected one argument$", re.S), "参数 {arg} 后面需要一个值"),
    (re.compile(r"^argument (?P<arg>[^:]+): ignored explicit argument '(?P<value>.*)'$", re.S),
     "参数 {arg} 不接受值「{value}」"),
    (re.compile(r"^ambiguous option: (?P<arg>\S+) could match (?P<choices>.*)$", re.S),
     "参数 {arg} 不明确，可能是：{choices}"),
    (re.compile(r"^argument (?P<arg>[^:]+): (?P<message>.*)$", re.S), "参数 {arg}：{message}"),
)


def chinese(message: str) -> str:
    """An argparse error message in Chinese (as it was when it is not one of the known ones)."""
    for pattern, text in _MESSAGES:
        match = pattern.match(message)
        if match:
            parts = {k: v.replace("'", "") if k == "choices" else v for k, v in match.groupdict().items()}
            return text.format(**parts)
    return message


class ChineseArgumentParser(argparse.ArgumentParser):
    """ArgumentParser whose usage, help headings and errors are in Chinese."""

    def format_usage(self) -> str:
        return _translated(super().format_usage())

    def format_help(self) -> str:
        return _translated(super().format_help())

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}：错误：{chinese(message)}\n")


def _translated(text: str) -> str:
    for english, translated in _HEADINGS:
        text = text.replace(english, translated)
    return text
