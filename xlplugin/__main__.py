"""python -m xlplugin doctor [--workbook PATH] [--interpreter PYTHON]"""

import argparse
from pathlib import Path

from .doctor import report

parser = argparse.ArgumentParser(prog="python -m xlplugin", description="客户分级 Excel 加载项工具")
sub = parser.add_subparsers(dest="command", required=True)
doctor = sub.add_parser("doctor", help="显示加载项将使用的解释器、版本、配置文件，并检查常见问题")
doctor.add_argument("--workbook", type=Path, help="要检查的工作簿路径（决定“工作簿旁边”的 config.yaml）")
doctor.add_argument("--interpreter", help="检查这个解释器（默认：加载项配置表中 Excel 会启动的那个）")
args = parser.parse_args()
print("\n".join(report(args.workbook, args.interpreter)))
