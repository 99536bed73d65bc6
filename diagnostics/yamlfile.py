"""Reading a case file as plain data: safe YAML only (no tags, no Python objects), duplicate
keys refused (YAML would silently keep the last), every problem one line naming the file.

    data = read_yaml("case.yaml")      # a dict, or CaseError(lines)
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from .errors import CaseError


def _duplicate_key(node) -> yaml.Node | None:
    """The first repeated key of any mapping (YAML silently keeps the last one), or None.
    Runs on the composed node tree, so nothing is constructed twice and no tag is resolved."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, yaml.MappingNode):
            seen = set()
            for k, v in n.value:
                if isinstance(k, yaml.ScalarNode):
                    if k.value in seen:
                        return k
                    seen.add(k.value)
                stack.append(v)
        elif isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)
    return None


def read_yaml(path: str | os.PathLike) -> Any:
    p = Path(path)
    if not p.exists():
        raise CaseError([f"{p}: no such file"])
    if p.is_dir():
        raise CaseError([f"{p}: is a directory, not a case file"])
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CaseError([f"{p}: cannot read ({e.__class__.__name__}: {e})"]) from None
    try:
        data = yaml.safe_load(text)          # plain data only: no python objects, ever
        dup = _duplicate_key(yaml.compose(text, Loader=yaml.SafeLoader)) if data is not None else None
        if dup is not None:
            m = dup.start_mark
            raise CaseError([f"{p}: YAML error at line {m.line + 1}, column {m.column + 1}: "
                             f"duplicate key {dup.value!r}"])
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = e.problem or str(e)
        if "constructor for the tag" in problem:
            tag = problem.split("tag", 1)[1].strip().strip("'")
            problem = (f"the tag {tag.replace('tag:yaml.org,2002:', '!!')} is not allowed; case files "
                       "hold plain mappings, lists, strings and numbers")
        raise CaseError([f"{p}: YAML error at {where}{problem}"]) from None
    except yaml.YAMLError as e:
        raise CaseError([f"{p}: YAML error: {e}"]) from None
    if data is None:
        raise CaseError([f"{p}: the file is empty; a case needs at least name, task and cells"])
    if not isinstance(data, dict):
        raise CaseError([f"{p}: must be a mapping of keys (name, task, cells, ...), "
                         f"got a {type(data).__name__}"])
    return data


