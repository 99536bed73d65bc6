"""Reading a case file: safe YAML, the typed schema, then the checks that need cells and tasks.

Every problem is collected and reported at once, one line each, key path first:

    cells[1].hidden: must be a positive integer, got 0
    task.dealy: unknown key (did you mean 'delay'?)

`load_case(path)` returns a `LoadedCase` or raises `CaseError(lines)`; the CLI prints the
lines and exits 2, so a bad case never gets as far as writing anything.
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from .schema import Case
from .yamlfile import read_yaml  # noqa: F401 (re-exported)
from .errors import CaseError


@dataclass
class LoadedCase:
    case: Case
    path: Path | None
    labels: list[str]
    task: Any = None                     # the built task (validates its options)
    cells: list = field(default_factory=list)   # built cells


# --- pydantic errors -> one line each ----------------------------------------------------
def key_path(loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(case)"


def _unwrap(tp):
    """The model class a field annotation leads to, through Optional / Annotated / list."""
    while True:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return tp
        args = [a for a in get_args(tp) if a is not type(None)]
        if get_origin(tp) is None or not args:
            return None
        tp = next((a for a in args if _unwrap(a) is not None), args[0])


def model_at(loc) -> type[BaseModel] | None:
    m: Any = Case
    for part in loc:
        if isinstance(part, int):
            continue  # list items share the list's model
        if m is None or part not in m.model_fields:
            return None
        m = _unwrap(m.model_fields[part].annotation)
    return m


def suggest(word: str, options) -> str:
    near = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean {near[0]!r}?)" if near else ""


def _short(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


_TYPE_WORDS = {"int_type": "an integer", "float_type": "a number", "bool_type": "true or false",
               "string_type": "a string", "list_type": "a list", "dict_type": "a mapping",
               "model_type": "a mapping", "model_attributes_type": "a mapping",
               "tuple_type": "a list", "int_from_float": "an integer", "finite_number": "a finite number"}


def format_error(err: dict) -> str:
    loc, typ, inp = tuple(err["loc"]), err["type"], err.get("input")
    ctx = err.get("ctx") or {}
    if typ == "extra_forbidden":
        parent = model_at(loc[:-1])
        hint = suggest(loc[-1], parent.model_fields) if parent else ""
        return f"{key_path(loc)}: unknown key{hint}"
    if typ == "missing":
        return f"{key_path(loc)}: is required"
    if typ in _TYPE_WORDS:
        msg = f"must be {_TYPE_WORDS[typ]}"
    elif typ == "literal_error":
        expected = str(ctx.get("expected", ""))
        options = [e.strip(" '") for e in expected.replace(" or ", ",").split(",")]
        return (f"{key_path(loc)}: must be one of {expected.replace(chr(39), '')}, got {_short(inp)}"
                + suggest(inp, options))
    elif typ in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[typ]
        msg = f"must be {op} {next(iter(ctx.values()))}"
    elif typ in ("too_short", "string_too_short"):
        msg = ("must not be empty" if isinstance(inp, str) and ctx.get("min_length") == 1
               else f"must have at least {ctx.get('min_length')} {'character' if isinstance(inp, str) else 'item'}(s)")
    elif typ in ("too_long", "string_too_long"):
        msg = f"must have at most {ctx.get('max_length')} {'characters' if isinstance(inp, str) else 'items'}"
    else:
        msg = err["msg"]
        # model-level checks say "field: problem"; fold the field into the key path
        head, sep, rest = msg.partition(": ")
        parent = model_at(loc)
        if sep and parent is not None and head in parent.model_fields:
            loc, msg = loc + (head,), rest
            return f"{key_path(loc)}: {msg}"
    return f"{key_path(loc)}: {msg}, got {_short(inp)}"


# --- the whole load ----------------------------------------------------------------------
def load_case(path: str | os.PathLike) -> LoadedCase:
    p = Path(path)
    raw = read_yaml(p)
    try:
        return validate_case(raw, p)
    except CaseError as e:
        raise CaseError([f"{p}: {line}" for line in e.lines]) from None


def validate_case(raw: dict, path: Path | None = None) -> LoadedCase:
    """Schema errors, then the registry checks (no line twice), as one CaseError; or a LoadedCase."""
    lines: list[str] = []
    case = None
    try:
        case = Case.model_validate(raw)
    except ValidationError as e:
        lines += [format_error(err) for err in e.errors(include_url=False)]
    from .checks import semantic_checks  # the checks that need the cell and task registries
    extra, labels, task, cells = semantic_checks(raw, case)
    lines += [ln for ln in extra if ln not in lines]
    if lines:
        raise CaseError(lines)
    return LoadedCase(case=case, path=path, labels=labels, task=task, cells=cells)
