"""Reading a case file as plain data: safe YAML only (no tags, no Python objects), duplicate
keys refused (YAML would silently keep the last), every problem one line naming the file.

    data = read_yaml("case.yaml")      # a dict, or CaseError(lines)

Hostile files are refused quickly: a file over MAX_BYTES before it is parsed; then, from the
event stream and before anything is composed, any alias (*name: repeated expansion is how a
few hundred bytes become billions of nodes; no shipped case uses one) and nesting deeper than
MAX_DEPTH (the pure-Python scanner's cost grows with the square of the depth).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from .errors import CaseError

# The largest shipped case is 1.7 KB. The slowest file per byte is one of dense one-character
# scalars: at this size libyaml reads it in ~0.1 s (0.5 s on a 2-core machine at load 6);
# PyYAML without libyaml takes ~6x as long.
MAX_BYTES = 64 * 1024
MAX_DEPTH = 32          # a case is four levels deep


class CaseLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """PyYAML's safe loader (plain data only), libyaml's where PyYAML was built with it, that
    also reads YAML 1.2's exponent floats (below)."""


# PyYAML follows YAML 1.1, whose floats need a dot and a signed exponent: `lr: 1e-3` was the
# string '1e-3'. YAML 1.2's core schema: [-+]? (.[0-9]+ | [0-9]+ (.[0-9]*)?) ([eE] [-+]? [0-9]+)?;
# the forms without an exponent already resolve. An implicit resolver applies to plain scalars
# only, so a quoted "1e-3" stays a string, and it must match the whole scalar ('1e5abc' stays).
CaseLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"))


def _screen(text: str) -> None:
    """Raise a MarkedYAMLError at the first alias or too deep a collection."""
    loader, depth = CaseLoader(text), 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.AliasEvent):
                problem = f"aliases (*{event.anchor}) are not supported in case files; write the value out"
            elif isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth <= MAX_DEPTH:
                    continue
                problem = f"nested too deeply (more than {MAX_DEPTH} levels)"
            else:
                depth -= isinstance(event, yaml.CollectionEndEvent)
                continue
            raise yaml.MarkedYAMLError(problem=problem, problem_mark=event.start_mark)
    finally:
        loader.dispose()


def _duplicate_key(node) -> yaml.Node | None:
    """The first repeated key of any mapping (YAML silently keeps the last one), or None.
    Runs on the composed node tree (a tree: _screen refused aliases), so nothing is
    constructed twice and no tag is resolved."""
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


def _load(text: str) -> Any:
    _screen(text)
    loader = CaseLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        dup = _duplicate_key(node)
        if dup is not None:
            raise yaml.MarkedYAMLError(problem=f"duplicate key {dup.value!r}", problem_mark=dup.start_mark)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_yaml(path: str | os.PathLike) -> Any:
    p = Path(path)
    if not p.exists():
        raise CaseError([f"{p}: no such file"])
    if p.is_dir():
        raise CaseError([f"{p}: is a directory, not a case file"])
    if not p.is_file():   # a FIFO with no writer would block the open forever (weight files refuse them too)
        raise CaseError([f"{p}: not a regular file (a pipe or a device); a case file must be a file"])
    try:
        with open(p, "rb") as f:
            raw = f.read(MAX_BYTES + 1)     # never more: a file may grow, and /proc says size 0
        if len(raw) > MAX_BYTES:
            size = p.stat().st_size
            raise CaseError([f"{p}: {f'{size} bytes' if size > MAX_BYTES else 'too large'}; "
                             f"a case file holds at most {MAX_BYTES // 1024} KiB"])
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CaseError([f"{p}: cannot read ({e.__class__.__name__}: {e})"]) from None
    try:
        data = _load(text)                   # plain data only: no python objects, ever
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
