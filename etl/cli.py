"""grade-etl: the headless command. A thin shell over grading.pipeline that
turns errors into Chinese messages and exit codes.

Exit codes: 0 ok · 1 internal error · 2 config error · 3 input error ·
4 template/output error · 5 output file locked (open in Excel).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from grading.config import Config, load_config
from grading.errors import ConfigError, GradingError, InputError, OutputLocked
from grading.describe import describe_rules
from grading.pipeline import GradingResult, run_to_file
from grading.problems import summarise

EXIT_OK, EXIT_INTERNAL, EXIT_CONFIG, EXIT_INPUT, EXIT_OUTPUT, EXIT_LOCKED = 0, 1, 2, 3, 4, 5
MAX_LISTED = 15


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"日期格式应为 YYYY-MM-DD，发现 {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="grade-etl", description="客户分级：把 ERP 导出数据生成客户分级管理表")
    sub = p.add_subparsers(dest="command", metavar="命令")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", default="config.yaml", help="配置文件（默认 config.yaml）")
    common.add_argument("-q", "--quiet", action="store_true", help="只输出错误")
    run = sub.add_parser("run", parents=[common], help="读取数据、分级并生成工作簿")
    run.add_argument("--as-of", type=_date, help="截止日期 YYYY-MM-DD（覆盖配置中的 period.as_of）")
    run.add_argument("-o", "--output", help="输出文件路径（覆盖配置中的 output.file）")
    demo = sub.add_parser("demo", parents=[common], help="生成演示数据并运行一次")
    demo.add_argument("--folder", default="demo_data", help="演示数据文件夹（相对配置文件，默认 demo_data）")
    demo.add_argument("-o", "--output", help="输出文件路径")
    sub.add_parser("check-config", parents=[common], help="只检查配置文件并显示分级规则")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return EXIT_CONFIG
    say = (lambda *a: None) if args.quiet else print
    try:
        if args.command == "check-config":
            config = load_config(args.config)
            say(f"配置文件 {args.config} 检查通过。")
            for item, text in describe_rules(config):
                say(f"  {item}：{text}")
            return EXIT_OK
        as_of = getattr(args, "as_of", None)
        config = load_config(args.config, as_of=as_of)
        if args.command == "demo":
            from grading.demo_data import generate

            folder = config.resolve(args.folder)
            say(f"生成演示数据：{folder}")
            generate(folder)
        output = config.resolve(args.output) if args.output else None
        result = run_to_file(config, output, _progress(say, sys.stderr.isatty() and not args.quiet))
        _report(result, config, say)
        return EXIT_OK
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    except InputError as exc:
        print(f"{exc}\n上一次的输出文件保持不变。", file=sys.stderr)
        return EXIT_INPUT
    except OutputLocked as exc:
        print(exc, file=sys.stderr)
        return EXIT_LOCKED
    except GradingError as exc:
        print(exc, file=sys.stderr)
        return EXIT_OUTPUT
    except BrokenPipeError:  # output piped into `head` etc.: the run itself succeeded
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        print("已取消，上一次的输出文件保持不变。", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception:
        print("内部错误（请把以下信息发给维护人员）：", file=sys.stderr)
        traceback.print_exc()
        return EXIT_INTERNAL


def _progress(say: object, tty: bool):  # type: ignore[no-untyped-def]
    def show(message: str, fraction: float) -> None:
        if tty:
            bar = "#" * int(fraction * 20)
            sys.stderr.write(f"\r[{bar:<20}] {fraction:4.0%} {message}\033[K")
            if fraction >= 1:
                sys.stderr.write("\n")
            sys.stderr.flush()
    return show


def _report(result: GradingResult, config: Config, say) -> None:  # type: ignore[no-untyped-def]
    graded = result.graded
    say(f"期间 {config.period.start:%Y-%m-%d} 至 {config.period.as_of:%Y-%m-%d}："
        f"{len(graded)} 个客户，期间内明细 {result.lines_in_window} 行（期间外 {result.lines_outside} 行未计入）。")
    for grade, n in result.grade_counts.items():
        sales = graded.loc[graded["grade"] == grade, "net_sales"].sum()
        say(f"  {grade} {config.policy(grade).label}：{n} 个客户，净销售额 {sales:,.2f}")
    if result.problems:
        say(f"数据问题 {len(result.problems)} 条（详见工作表「数据问题」）：")
        for action, reason, n in summarise(result.problems):
            say(f"  [{action}] {reason}：{n} 条")
        serious = sorted((p for p in result.problems if p.action != "提示"), key=lambda p: p.action != "已跳过")
        for p in serious[:MAX_LISTED]:
            say(f"    {p.render()}")
        if len(serious) > MAX_LISTED:
            say(f"    …… 另有 {len(serious) - MAX_LISTED} 条，见工作表「数据问题」")
    say(f"已生成：{result.output}")


if __name__ == "__main__":
    sys.exit(main())
