"""grade-etl: the headless command, safe to schedule. A thin shell over
grading.pipeline that turns errors into Chinese messages and exit codes,
holds a run lock, and writes a log file per run.

Exit codes: 0 ok · 1 internal error · 2 config error · 3 input error ·
4 template/output error · 5 output file locked (open in Excel) ·
6 another run is using the same outputs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from grading.config import Config, load_config
from grading.defaults import SHIPPED, shipped
from grading.describe import describe_rules
from grading.errors import ConfigError, DemoOnOwnData, GradingError, HistoryBusy, InitError, InputError, OutputLocked, TemplateError
from grading.history import customer_timeline, list_runs
from grading.outputs import check_export_target, write_csv_atomically
from grading.pipeline import GradingResult, prepare_output, run_to_file
from grading.problems import Problem, ProblemLog, summarise
from grading.template_check import check_template
from grading.write_xlsx import csv_safe

from . import preview_cmd
from .args import ChineseArgumentParser
from .lock import RunLock, RunLocked

EXIT_OK, EXIT_INTERNAL, EXIT_CONFIG, EXIT_INPUT, EXIT_OUTPUT, EXIT_LOCKED, EXIT_BUSY = 0, 1, 2, 3, 4, 5, 6
MAX_LISTED = 15
Say = Callable[[str], None]


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"日期格式应为 YYYY-MM-DD，发现 {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    p = ChineseArgumentParser(prog="grade-etl", description="客户分级：把 ERP 导出数据生成客户分级管理表")
    sub = p.add_subparsers(dest="command", metavar="命令")
    common = ChineseArgumentParser(add_help=False)
    common.add_argument("-c", "--config", default="config.yaml", help="配置文件（默认 config.yaml）")
    common.add_argument("-q", "--quiet", action="store_true", help="只输出错误")
    run = sub.add_parser("run", parents=[common], help="读取数据、分级并生成工作簿")
    run.add_argument("--as-of", type=_date, help="截止日期 YYYY-MM-DD（覆盖配置中的 period.as_of）")
    run.add_argument("--period", help="期间名称（覆盖配置中的 period.name）")
    run.add_argument("-o", "--output", help="输出文件路径（覆盖配置中的 output.file）")
    demo = sub.add_parser("demo", parents=[common], help="生成演示数据并运行一次")
    demo.add_argument("--folder", default="demo_data", help="演示数据文件夹（相对配置文件，默认 demo_data）")
    demo.add_argument("-o", "--output", help="输出文件路径")
    sub.add_parser("check-config", parents=[common], help="检查配置文件和模板，并显示分级规则")
    init = sub.add_parser("init", help="在文件夹中生成带注释的 config.yaml 和默认模板副本（不覆盖已有文件）")
    init.add_argument("folder", nargs="?", default=".", help="目标文件夹（默认当前文件夹）")
    init.add_argument("-q", "--quiet", action="store_true", help="只输出错误")
    hist = sub.add_parser("history", parents=[common], help="查看分级历史、导出客户等级时间线、从旧工作簿导入")
    hsub = hist.add_subparsers(dest="action", metavar="操作", required=True)
    # `history -c X list` and `history list -c X` both work: the subcommands do not reset -c/-q to defaults
    inner = ChineseArgumentParser(add_help=False)
    inner.add_argument("-c", "--config", default=argparse.SUPPRESS, help="配置文件（默认 config.yaml）")
    inner.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="只输出错误")
    hsub.add_parser("list", parents=[inner], help="列出已保存的各期运行")
    cust = hsub.add_parser("customer", parents=[inner], help="导出一个客户的等级时间线")
    cust.add_argument("code", help="客户编码")
    cust.add_argument("-o", "--output", help="保存为 CSV 文件")
    seed = hsub.add_parser("seed", parents=[inner], help="从以前生成的客户分级管理表导入一期历史")
    seed.add_argument("workbook", help="以前的输出工作簿 .xlsx")
    seed.add_argument("--period", required=True, help="该期的期间名称，如 2025H2")
    seed.add_argument("--as-of", type=_date, help="该期截止日期（默认从工作簿的“统计期间”读取）")
    preview_cmd.add_preview_parser(sub, common, _date)  # issue 13: preview, history diff
    preview_cmd.add_diff_parser(hsub, inner)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return EXIT_CONFIG
    quiet = bool(getattr(args, "quiet", False))
    say: Say = (lambda text: None) if quiet else print
    log: TextIO | None = None
    replaced: Callable[[], bool] = lambda: False  # noqa: E731  (has this run's output replaced the previous one?)
    finished = ""
    try:
        if args.command == "init":
            return _init(Path(args.folder), say)
        if args.command == "check-config":
            config = load_config(args.config)
            try:
                template, sheets = check_template(config)
            except TemplateError as exc:
                return _fail(None, str(exc), EXIT_OUTPUT)
            say(f"配置文件 {args.config} 检查通过。")
            say(f"模板 {template} 检查通过（工作表：{'、'.join(sheets)}）。")
            for item, text in describe_rules(config):
                say(f"  {item}：{text}")
            return EXIT_OK
        if args.command == "history":
            return _history(args, say)
        if args.command == "preview":
            return preview_cmd.preview(args, say, _progress(quiet, None))
        config = load_config(args.config, as_of=getattr(args, "as_of", None), period=getattr(args, "period", None))
        if args.command == "demo":
            check_demo_config(config, config.resolve(args.folder), args.config)
        check_template(config)  # a missing sheet or header is reported before any data is read
        output = config.resolve(args.output) if args.output else config.output_path()
        with RunLock(output) as lock:
            log = _open_log(config)
            tee = _tee(say, log)
            if lock.stale_note:
                tee(lock.stale_note)
            for note in prepare_output(config, output):
                tee(note)
            if args.command == "demo":
                from grading.demo_data import generate

                folder = config.resolve(args.folder)
                tee(f"生成演示数据：{folder}")
                generate(folder)
            before = _identity(output)
            replaced = lambda: _identity(output) != before  # noqa: E731
            finished = "已中断，但本次运行已经完成：输出文件" + ("和历史记录都已更新。" if config.history_path(output) else "已更新。")
            result = run_to_file(config, output, _progress(quiet, log))
            for note in result.notes:
                tee(note)
            _report(result, config, tee)
            if log is not None:
                tee(f"日志：{log.name}")
        return EXIT_OK
    except (ConfigError, DemoOnOwnData) as exc:
        return _fail(log, str(exc), EXIT_CONFIG)
    except InputError as exc:
        return _fail(log, f"{exc}\n上一次的输出文件保持不变。", EXIT_INPUT)
    except InitError as exc:
        return _fail(log, str(exc), EXIT_OUTPUT)
    except OutputLocked as exc:
        return _fail(log, str(exc), EXIT_LOCKED)
    except (RunLocked, HistoryBusy) as exc:
        return _fail(log, str(exc), EXIT_BUSY)
    except GradingError as exc:
        return _fail(log, f"{exc}\n上一次的输出文件保持不变。", EXIT_OUTPUT)
    except BrokenPipeError:  # output piped into `head` etc.: the run itself succeeded
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        if replaced():  # Ctrl-C after the output was moved into place: the history has committed with it
            return _fail(log, finished, EXIT_OK)
        return _fail(log, "已取消，上一次的输出文件保持不变。", EXIT_INTERNAL)
    except Exception:
        return _fail(log, "内部错误（请把以下信息和日志发给维护人员）：\n" + traceback.format_exc(), EXIT_INTERNAL)
    finally:
        if log is not None:
            log.close()


def check_demo_config(config: Config, folder: Path, config_name: str) -> None:
    """The demo grades only the data it generates: a config that reads other files (the user's own
    exports) would grade those and record the demo's period in the user's history."""
    root = folder.resolve()
    for name in ("sales", "receivables", "customers", "overrides", "reviews"):
        source = getattr(config.sources, name)
        for pattern in source.files if source is not None else ():
            path = config.resolve(pattern).resolve()
            if path != root and root not in path.parents:
                raise DemoOnOwnData(
                    f"grade-etl demo 只用演示数据运行，但 {config_name} 的 sources.{name}.files 读取 {pattern}"
                    f"（不在演示数据文件夹 {root} 中）：演示会用你的数据分级，并把演示期间写进你的输出和分级历史，已停止，"
                    "未生成也未修改任何文件。请在一个空文件夹中先运行 grade-etl init 再运行 grade-etl demo，"
                    "或用 grade-etl run 处理你自己的数据。")


def _identity(path: Path) -> tuple[int, int] | None:
    """The file now at `path` (a replaced output is another file; one put back is the same again)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


def _fail(log: TextIO | None, text: str, code: int) -> int:
    print(text, file=sys.stderr)
    if log is not None:
        log.write(f"{_now()} 失败（退出码 {code}）：{text}\n")
        print(f"日志：{log.name}", file=sys.stderr)
    return code


def _now() -> str:
    return dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def _open_log(config: Config) -> TextIO | None:
    folder = config.resolve(config.output.log_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        name = f"grade-etl_{dt.datetime.now():%Y%m%d_%H%M%S}_{os.getpid()}.log"
        return (folder / name).open("w", encoding="utf-8")
    except OSError as exc:
        print(f"警告：无法创建日志文件（{folder}：{exc.strerror}），继续运行。", file=sys.stderr)
        return None


def _tee(say: Say, log: TextIO | None) -> Say:
    def both(text: str) -> None:
        say(text)
        if log is not None:
            log.write(f"{_now()} {text}\n")
            log.flush()
    return both


def _progress(quiet: bool, log: TextIO | None) -> Callable[[str, float], None]:
    tty = sys.stderr.isatty()
    last = [""]

    def show(message: str, fraction: float) -> None:
        if log is not None and message != last[0]:
            log.write(f"{_now()} [{fraction:4.0%}] {message}\n")
        if quiet or message == last[0]:
            last[0] = message
            return
        last[0] = message
        if tty:
            bar = "#" * int(fraction * 20)
            sys.stderr.write(f"\r[{bar:<20}] {fraction:4.0%} {message}\033[K" + ("\n" if fraction >= 1 else ""))
        else:
            sys.stderr.write(f"[{fraction:4.0%}] {message}\n")
        sys.stderr.flush()
    return show


def _report(result: GradingResult, config: Config, say: Say) -> None:
    graded = result.graded
    say(f"期间 {config.period.start:%Y-%m-%d} 至 {config.period.as_of:%Y-%m-%d}："
        f"{len(graded)} 个客户，期间内明细 {result.lines_in_window} 行（期间外 {result.lines_outside} 行未计入）。")
    if result.warnings:
        say(f"请注意（{len(result.warnings)} 条）：")
        for text in result.warnings:
            say(f"  ！{text}")
    for grade, n in result.grade_counts.items():
        sales = graded.loc[graded["grade"] == grade, "net_sales"].sum()
        say(f"  {grade} {config.policy(grade).label}：{n} 个客户，净销售额 {sales:,.2f}")
    comparison = result.comparison
    if comparison is not None and comparison.previous is not None:
        changes = comparison.changes["change"].tolist() if len(comparison.changes) else []
        moves = "，".join(f"{k} {changes.count(k)}" for k in ("升级", "降级", "新增", "流失"))
        say(f"与上期 {comparison.previous} 比较：{moves}（详见工作表「等级变动」）")
        if comparison.chosen:
            say(f"  上期选用：{comparison.chosen}")
    if result.problems:
        say(f"数据问题 {len(result.problems)} 条（详见工作表「数据问题」）：")
        drops = {d.reason: d for d in result.drops}
        for action, reason, n in summarise(result.problems):
            drop = drops.get(reason) if action == "已跳过" else None
            if drop is None:
                say(f"  [{action}] {reason}：{n} 条")
            else:
                other = f"；其他数据源另有 {n - drop.lines} 条" if n > drop.lines else ""
                say(f"  [{action}] 销售明细 {drop.render()}{other}")
        examples = result.problems.examples() if isinstance(result.problems, ProblemLog) else result.problems
        serious = sorted((p for p in examples if p.action != "提示"), key=lambda p: p.action != "已跳过")
        n_serious = sum(n for (action, _), n in counts(result.problems).items() if action != "提示")
        for p in serious[:MAX_LISTED]:
            say(f"    {p.render()}")
        if n_serious > MAX_LISTED:
            say(f"    …… 另有 {n_serious - MAX_LISTED} 条，见工作表「数据问题」")
    for note in result.overflows:
        say(f"注意：{note}")
    say(f"已生成：{result.output}")
    if result.history is not None:
        say(f"历史记录：{result.history}（期间 {config.period.label}）")


def counts(problems: list[Problem]) -> Counter[tuple[str, str]]:
    if isinstance(problems, ProblemLog):
        return Counter({(a, r): n for (a, r), n in problems.counts().items()})
    return Counter((p.action, p.reason) for p in problems)


def _init(folder: Path, say: Say) -> int:
    """Starter config.yaml (commented), its schema and a copy of the default template; nothing is overwritten."""
    for name in SHIPPED:
        target = folder / name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with shipped(name).open("rb") as src, target.open("xb") as dst:  # "x": never over an existing file
                shutil.copyfileobj(src, dst)
        except FileExistsError:
            say(f"已存在，未覆盖：{target}")
            continue
        except OSError as exc:
            raise InitError(f"无法在 {target.parent} 创建 {target.name}：{exc.strerror}。请检查文件夹是否存在且可写。") from None
        say(f"已创建：{target}")
    say("下一步：按注释修改 config.yaml 中的数据文件（sources）和统计期间（period），"
        "然后运行 grade-etl check-config 检查、grade-etl run 生成工作簿；也可以先运行 grade-etl demo 用演示数据试一次。")
    return EXIT_OK


def _history(args: argparse.Namespace, say: Say) -> int:
    from grading.seed import seed_from_workbook

    config = load_config(args.config)
    db = config.history_path()
    if db is None:
        print("config.yaml 中 history.enabled 为 false，没有历史记录。", file=sys.stderr)
        return EXIT_CONFIG
    if args.action == "diff":
        return preview_cmd.history_diff(args, config, db, say)
    if args.action == "list":
        runs = list_runs(db)
        if not runs:
            say(f"历史数据库 {db} 中还没有记录。")
            return EXIT_OK
        say(f"{'期间':<10}{'截止日期':<12}{'运行时间':<21}{'客户数':>7}  来源")
        for r in runs:
            say(f"{r['period']!s:<10}{r['as_of']!s:<12}{str(r['started_at'])[:19]:<21}{r['customers']!s:>7}  {r['source']}")
        return EXIT_OK
    if args.action == "customer":
        rows = customer_timeline(db, args.code)
        if not rows:
            say(f"历史中没有客户 {args.code} 的记录。")
            return EXIT_INPUT
        if args.output:
            target = Path(args.output)
            check_export_target(config, target)
            write_csv_atomically(target, [
                ["期间", "截止日期", "等级", "规则等级", "综合得分", "净销售额", "人工指定", "分级依据"],
                *([csv_safe(r[k]) for k in ("period", "as_of", "grade", "rule_grade", "score",
                                            "net_sales", "pinned", "explanation")] for r in rows)])
            say(f"已导出 {len(rows)} 期记录：{args.output}")
        else:
            for r in rows:
                pin = "（人工指定）" if r["pinned"] else ""
                say(f"{r['period']}（{r['as_of']}）：{r['grade']}{pin}  {r['explanation']}")
        return EXIT_OK
    n, as_of = seed_from_workbook(db, Path(args.workbook), args.period, args.as_of)
    say(f"已从 {args.workbook} 导入 {n} 个客户的等级，期间 {args.period}（截止 {as_of:%Y-%m-%d}）→ {db}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
