"""config.yaml → frozen, typed objects, validated before any data is read.

Errors name the YAML key path and line, in Chinese, and all of them are
reported together (ConfigError). YAML is loaded with the safe loader only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .config_model import Config
from .errors import ConfigError, ConfigIssue

# ---------------------------------------------------------------- loading

_MESSAGES = {
    "missing": "缺少必填项",
    "extra_forbidden": "不认识的键",
    "bool_parsing": "应为 true 或 false",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "float_parsing": "应为数字",
    "string_type": "应为文字",
    "list_type": "应为列表（每项以 - 开头）",
    "dict_type": "应为键值表",
    "model_type": "应为键值表",
    "date_from_datetime_parsing": "应为日期，格式 YYYY-MM-DD",
    "date_parsing": "应为日期，格式 YYYY-MM-DD",
    "date_type": "应为日期，格式 YYYY-MM-DD",
    "too_short": "至少需要 {min_length} 项",
    "greater_than": "必须大于 {gt}",
    "greater_than_equal": "不能小于 {ge}",
    "less_than_equal": "不能大于 {le}",
    "string_pattern_mismatch": "格式不对（颜色写作 #RRGGBB）",
    "union_tag_invalid": "type 只能是 {expected_tags}",
    "union_tag_not_found": "缺少 type（可选：{expected_tags}）",
    "invalid_key": ("出现了不是文字的键 {input!r}：花括号 {{…}} 里的逗号会把一项拆成两项，"
                    "如 {{grade: A, min: 500,000}} 被读成 min: 500 和 000；金额请不要写千位逗号（写 500000 或 50万），"
                    "或给它加引号（min: \"500,000\"）"),
}


def load_config(path: str | Path, as_of: dt.date | None = None, period: str | None = None) -> Config:
    """Read, validate and freeze config.yaml; raise ConfigError listing every problem."""
    path = Path(path)
    name = path.name
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        folder = path.resolve().parent
        raise ConfigError(name, [ConfigIssue("", None, (
            f"找不到配置文件 {path.name}（在文件夹 {folder} 中查找）。请在放有配置文件的文件夹中运行，"
            f"或用 -c 指定配置文件，如：grade-etl run -c D:\\客户分级\\config.yaml；"
            f"新建一份带注释的配置：grade-etl init"))]) from None
    except OSError as exc:
        raise ConfigError(name, [ConfigIssue("", None, f"无法读取配置文件 {path}：{exc.strerror}")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(name, [ConfigIssue("", None, (
            f"配置文件必须保存为 UTF-8 编码（第 {line} 行起不是 UTF-8）：在记事本中“另存为”，编码选 UTF-8 后保存"))]) from None
    return parse_config(text, path.resolve().parent, name, as_of, period)


def parse_config(text: str, base_dir: Path, name: str, as_of: dt.date | None = None,
                 period: str | None = None) -> Config:
    """Validate config text (from a file or a workbook sheet); paths resolve against `base_dir`."""
    try:
        _check_shape(text, name)  # before anything is built: nesting depth and alias expansion
        node = yaml.compose(text, Loader=_Loader)
        duplicates = _duplicate_keys(node)
        if duplicates:
            raise ConfigError(name, duplicates)
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader: no code, no Python objects
        lines = _line_map(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        if "'\\t'" in problem and mark is not None:
            raise ConfigError(name, [ConfigIssue("", line, (
                f"第 {mark.column + 1} 列是制表符（Tab）：YAML 只能用空格缩进，请把 Tab 换成空格"
                "（在编辑器中把“用 Tab 缩进”改为“用空格缩进”）"))]) from None
        raise ConfigError(name, [ConfigIssue("", line, f"YAML 格式错误：{problem}（检查缩进和冒号）")])
    if data is None:
        raise ConfigError(name, [ConfigIssue("", None, (
            "配置文件是空的（没有任何设置）。新建一份带注释的配置：grade-etl init 新文件夹，再把其中的 config.yaml 复制过来修改"))])
    if not isinstance(data, dict):
        raise ConfigError(name, [ConfigIssue("", None, "配置文件应为键值表（sources、period、grading、grades …）")])
    section = data.get("period")
    if isinstance(section, dict):  # command-line overrides
        if as_of is not None:
            section = {**section, "as_of": as_of}
        if period is not None:
            section = {**section, "name": period}
        data["period"] = section
    data["base_dir"] = base_dir
    data["source_file"] = name
    data["digest"] = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    data["source_text"] = text  # stored with each run in the history (rule previews against the last run)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        issues = [_issue(err, data, lines) for err in exc.errors()]
        raise ConfigError(name, sorted(set(issues), key=lambda i: (i.line or 0, i.path))) from None
    refs = [_issue({"loc": path, "type": "value_error", "msg": msg}, data, lines)
            for path, msg in config.reference_issues()]
    if refs:
        raise ConfigError(name, sorted(set(refs), key=lambda i: (i.line or 0, i.path)))
    return config


MAX_DEPTH = 50          # nesting levels; real configs use fewer than 10
MAX_NODES = 100_000     # values after expanding aliases (*name); the real config has about 500


def _check_shape(text: str, name: str) -> None:
    """Stream the YAML events (no objects built, no recursion): refuse deep nesting and alias
    expansion beyond MAX_NODES ("billion laughs") before they use memory or the stack."""
    sizes: dict[str, int] = {}
    stack: list[tuple[int, str | None, int]] = []  # (values inside, anchor, line)
    total = 0
    for event in yaml.parse(text, Loader=_Loader):
        line = event.start_mark.line + 1 if event.start_mark is not None else 0
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            stack.append((0, event.anchor, line))
            if len(stack) > MAX_DEPTH:
                raise ConfigError(name, [ConfigIssue("", line, f"嵌套层数超过 {MAX_DEPTH} 层，配置文件不需要这么深的结构，"
                                                     "请检查缩进或括号是否配对")])
            continue
        if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            inside, anchor, _ = stack.pop()
            size = inside + 1
            if anchor:
                sizes[anchor] = size
        elif isinstance(event, yaml.ScalarEvent):
            size = 1
            if event.anchor:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            size = sizes.get(str(event.anchor), 1)
        else:
            continue
        total += size
        if total > MAX_NODES:
            raise ConfigError(name, [ConfigIssue("", line, f"别名（*引用）展开后超过 {MAX_NODES:,} 个值，已拒绝读取"
                                                 "（可能是恶意构造的文件）；请少用或不用 & 和 * 引用")])
        if stack:
            inside, anchor, start = stack[-1]
            stack[-1] = (inside + size, anchor, start)


def _duplicate_keys(node: yaml.Node | None) -> list[ConfigIssue]:
    """Keys written twice in one mapping (YAML keeps the last one silently)."""
    issues: list[ConfigIssue] = []
    seen_nodes: set[int] = set()

    def walk(n: yaml.Node, path: tuple[object, ...]) -> None:
        if id(n) in seen_nodes:  # an alias: already checked
            return
        seen_nodes.add(id(n))
        if isinstance(n, yaml.MappingNode):
            first: dict[object, int] = {}
            for k, v in n.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else None
                line = k.start_mark.line + 1
                if key is not None and key != "<<":
                    if key in first:
                        where = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path + (key,))
                        issues.append(ConfigIssue(where.replace(".[", "["), line,
                                                  f"键 {key} 重复：第 {first[key]} 行和第 {line} 行都写了它（只会用后一个），"
                                                  "请删除或合并其中一个"))
                    else:
                        first[key] = line
                walk(v, path + (key,))
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, path + (i,))

    if node is not None:
        walk(node, ())
    return issues


class _Loader(yaml.SafeLoader):
    """Safe loader that leaves dates as text, so a bad date becomes a config error with a line."""


_Loader.yaml_constructors = {
    k: v for k, v in yaml.SafeLoader.yaml_constructors.items() if k != "tag:yaml.org,2002:timestamp"
}
_Loader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)  # type: ignore[type-var]


def _line_map(node: yaml.Node | None) -> dict[tuple[object, ...], int]:
    """YAML path (keys and list indices) → 1-based line of its value."""
    out: dict[tuple[object, ...], int] = {}

    def walk(n: yaml.Node, path: tuple[object, ...]) -> None:
        out.setdefault(path, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = k.value
                out[path + (key,)] = k.start_mark.line + 1
                walk(v, path + (key,))
                out[path + (key,)] = k.start_mark.line + 1
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, path + (i,))

    if node is not None:
        walk(node, ())
    return out


def _issue(err: Mapping[str, Any], data: object, lines: dict[tuple[object, ...], int]) -> ConfigIssue:
    path: list[object] = []
    node: object = data
    for part in err["loc"]:
        if isinstance(node, dict) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            path.append(part)
        elif isinstance(part, str) and err["type"] in ("missing", "extra_forbidden") and part == err["loc"][-1]:
            path.append(part)
        # else: a union tag or function name pydantic adds, not in the YAML
    line = None
    if err["type"] == "missing" and len(path) <= 1:
        return ConfigIssue(".".join(map(str, path)), None, _message(err))
    for n in range(len(path), -1, -1):
        line = lines.get(tuple(path[:n]))
        if line is not None:
            break
    text = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path).replace(".[", "[")
    return ConfigIssue(text, line, _message(err))


def _message(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    ctx = err.get("ctx") or {}
    if kind == "literal_error":
        return f"只能是 {ctx.get('expected', '')}，发现 {err.get('input')!r}"
    template = _MESSAGES.get(kind)
    if kind == "invalid_key" and template is not None:
        return template.format(input=err.get("input"))
    if template is None:
        return f"{err['msg']}（发现 {err.get('input')!r}）"
    try:
        msg = template.format(**{k: f"{v:g}" if isinstance(v, float) else v for k, v in ctx.items()})
    except (KeyError, IndexError):
        msg = template
    if kind not in ("missing", "extra_forbidden", "too_short"):
        msg += f"，发现 {err.get('input')!r}"
    return msg


__all__ = ["Config", "load_config", "parse_config"]
