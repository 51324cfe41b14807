"""grade-etl preview / grade-etl history diff: thin handlers over grading.preview.

preview grades the configured data with the new rules and with the base rules (a config file,
a stored period, or by default the rules of the last stored run) and writes a 规则预览 workbook;
history diff compares two stored periods in the same layout. Neither writes to the history nor
replaces any earlier output.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grading.config import load_config
from grading.config_model import Config
from grading.errors import ConfigError, ConfigIssue
from grading.history_read import load_period, stored_outputs
from grading.preview import GONE, NEW, UP, DOWN, CHANGED, Preview, diff_periods, preview_configs, \
    preview_last_run, preview_period, protected_paths
from grading.pipeline import Progress
from grading.preview_xlsx import check_target, write_preview

Say = Callable[[str], None]


def add_preview_parser(sub: Any, common: argparse.ArgumentParser, date: Callable[[str], dt.date]) -> None:
    p = sub.add_parser("preview", parents=[common], help="试算新规则：与原规则或已保存的期间比较，生成规则预览工作簿（不写历史）")
    base = p.add_mutually_exclusive_group()
    base.add_argument("--base", help="原规则的配置文件（默认：历史中上次运行保存的规则）")
    base.add_argument("--base-period", help="与历史中已保存的期间比较，如 2026H1")
    p.add_argument("--as-of", type=date, help="截止日期 YYYY-MM-DD（覆盖配置中的 period.as_of）")
    p.add_argument("-o", "--output", help="预览工作簿路径（默认：输出文件夹中的 规则预览_期间_时间.xlsx）")


def add_diff_parser(hsub: Any, common: argparse.ArgumentParser) -> None:
    d = hsub.add_parser("diff", parents=[common], help="比较历史中的任意两期：迁移矩阵和变动客户")
    d.add_argument("first", help="原期间，如 2025H2")
    d.add_argument("second", help="新期间，如 2026H1")
    d.add_argument("-o", "--output", help="另存为工作簿 .xlsx（与规则预览相同的版式）")


def preview(args: argparse.Namespace, say: Say, progress: Progress) -> int:
    new = load_config(args.config, as_of=args.as_of)
    db = new.history_path()
    extra = stored_outputs(db) if db is not None else []
    base: Config | None = load_config(args.base) if args.base else None
    target = Path(args.output) if args.output else Path(os.path.normpath(new.output_path().parent / (
        f"规则预览_{new.period.label}_{dt.datetime.now():%Y%m%d_%H%M%S}.xlsx")))
    check_target(target, protected_paths(new, *([base] if base else []), extra=extra))
    if base is not None:
        result = preview_configs(new, base, progress)
    else:
        if db is None:
            raise ConfigError(new.source_file, [ConfigIssue("history.enabled", None, (
                "历史记录已关闭，无法与上次运行或已保存的期间比较；请用 --base 指定原规则的配置文件"))])
        result = preview_period(new, load_period(db, args.base_period), progress) if args.base_period \
            else preview_last_run(new, db, progress)
    report(result, say)
    write_preview(target, result)
    say(f"已生成：{target}")
    say("历史记录和已有的输出文件均未改动。")
    return 0


def history_diff(args: argparse.Namespace, config: Config, db: Path, say: Say) -> int:
    target = Path(args.output) if args.output else None
    if target is not None:
        check_target(target, protected_paths(config, extra=stored_outputs(db)))
    result = diff_periods(load_period(db, args.first), load_period(db, args.second), config)
    report(result, say)
    if target is not None:
        write_preview(target, result)
        say(f"已生成：{target}")
    return 0


def report(p: Preview, say: Say) -> None:
    say(p.title)
    say(f"  原：{p.before}")
    say(f"  新：{p.after}")
    for note in p.notes:
        say(f"  {note}")
    for r in p.summary.to_dict("records"):
        say(f"  {r['grade']}：{r['before_customers']} → {r['after_customers']} 个客户，"
            f"净销售额 {r['before_sales']:,.2f} → {r['after_sales']:,.2f}")
    kinds = Counter(p.movers["change"])
    moves = "，".join(f"{k} {kinds[k]}" for k in (UP, DOWN, CHANGED, NEW, GONE) if kinds[k])
    say(f"等级变动的客户 {len(p.movers)} 个" + (f"（{moves}）" if moves else ""))
    say(f"服务政策变化的客户 {len(p.policy)} 个")
