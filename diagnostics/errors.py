"""Bad input as one line per problem, key path first:

    cells[1].hidden: must be a positive integer, got 0
    task.dealy: unknown option of copy tasks (did you mean 'delay'?) (copy options: delay, ...)

Every error of the package's own is a `DiagnosticsError` (a ValueError) carrying its `lines`:
CaseError (a case or sweep file), OptionError (options from Python), WeightsError (a weight or
input file), BadDocument (a curves.json, run.json or sweep.json), ForeignFolder (a folder that
is not this tool's) and OptionalMissing (a dependency to install; also an ImportError). The
commands catch it in one place (cli/command.py): each line as "error: ..." on stderr, exit 2.

`error_lines(exc, root)` turns a pydantic ValidationError into the lines. `root` is the model the data was validated
against: walking the error's location through it tells which model a key belongs to (for
"did you mean") and drops the tags pydantic inserts for discriminated unions (the `lstm` in
`cells.0.lstm.hidden`). A union that is not discriminated (`layer: integer | all`,
`anchors: integer | list`) gives pydantic one error per member, each under a label of
its internals (`layer.literal['all']`, `layer.function-after[...]`); they become the lines of
the member the value fits, or one line naming every member.
"""
from __future__ import annotations

import difflib
import sys
import types
from typing import Annotated, Any, Union, get_args, get_origin

import click
from pydantic import BaseModel, ValidationError


class DiagnosticsError(ValueError):
    """Input that cannot be used: `lines` holds one message per problem (a string is one line).
    A ValueError, which is what bad input to a Python function is."""

    def __init__(self, lines: str | list[str]):
        self.lines = [lines] if isinstance(lines, str) else list(lines)
        super().__init__("\n".join(self.lines))

    def __reduce__(self):   # a sweep's worker sends it back pickled: keep the lines, not their join
        return type(self), (self.lines,)


class CaseError(DiagnosticsError):
    """A case or sweep file (or an inline case) that cannot be used, one line per problem."""


def suggest(word: Any, options) -> str:
    near = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean {near[0]!r}?)" if near else ""


def short(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def key_path(loc, empty: str = "(case)") -> str:
    """("cells", 0, "hidden") -> "cells[0].hidden"; `empty` for the top of the file."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or empty


# --- walking a location through the models ----------------------------------------------
def _members(tp) -> list:
    """The model classes an annotation can lead to (through Optional, Annotated, list, unions)."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    out = []
    for a in get_args(tp):
        if a is not type(None):
            out += _members(a)
    return out


def _tag_of(model: type[BaseModel]) -> str | None:
    f = model.model_fields.get("kind")
    if f is None or get_origin(f.annotation) is None:
        return None
    args = get_args(f.annotation)
    return args[0] if len(args) == 1 and isinstance(args[0], str) else None


def _kinds(model: type[BaseModel], key) -> list[str]:
    """The `kind` tags of the models `model`'s field `key` can hold, sorted."""
    f = model.model_fields.get(key)
    return sorted(t for m in (_members(f.annotation) if f else []) if (t := _tag_of(m)) is not None)


def walk(root: type[BaseModel] | None, loc) -> tuple[tuple, type[BaseModel] | None]:
    """(loc without union tags, the model holding the last key, or None if unknown)."""
    clean: list = []
    models = [root] if root is not None else []
    parent = None
    for part in loc:
        if isinstance(part, int):          # list items share the list's models
            clean.append(part)
            continue
        tagged = [m for m in models if _tag_of(m) == part]
        if len(models) > 1 and tagged:     # a discriminated union's tag: not a key of the file
            models = tagged
            continue
        clean.append(part)
        parent = models[0] if len(models) == 1 else None
        nxt = []
        for m in models:
            if part in m.model_fields:
                nxt += _members(m.model_fields[part].annotation)
        models = nxt
    return tuple(clean), parent


def model_at(root, loc) -> type[BaseModel] | None:
    """The model whose fields are the keys at `loc` (a mapping in the file), if known."""
    clean, _ = walk(root, loc)
    models = [root]
    for part in clean:
        if isinstance(part, int):
            continue
        nxt = []
        for m in models:
            if m is not None and part in m.model_fields:
                nxt += _members(m.model_fields[part].annotation)
        models = nxt
    return models[0] if len(models) == 1 else None


# --- one error -> one line ----------------------------------------------------------------
_TYPE_WORDS = {"int_type": "an integer", "float_type": "a number", "bool_type": "true or false",
               "string_type": "a string", "list_type": "a list", "dict_type": "a mapping",
               "model_type": "a mapping", "model_attributes_type": "a mapping",
               "dataclass_type": "a mapping", "dataclass_exact_type": "a mapping",
               "tuple_type": "a list", "int_from_float": "an integer", "finite_number": "a finite number"}
_OPS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def format_error(err: dict, root: type[BaseModel] | None = None, unknown=None) -> str:
    """One pydantic error dict as one line. `unknown(loc, key, parent_model)` may phrase an
    unknown key (the schema says "is not an option of rnn cells" where that is the case)."""
    raw_loc, typ, inp = tuple(err["loc"]), err["type"], err.get("input")
    loc, parent = walk(root, raw_loc)
    ctx = err.get("ctx") or {}
    where = key_path(loc)
    if typ == "extra_forbidden":
        if unknown is not None:
            said = unknown(loc, loc[-1], parent)
            if said:
                return f"{where}: {said}"
        return f"{where}: unknown key{suggest(loc[-1], parent.model_fields) if parent else ''}"
    if typ == "missing":
        return f"{where}: is required"
    if typ == "union_tag_invalid":
        tags = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",")]
        got = ctx.get("tag")
        return (f"{key_path(loc + ('kind',))}: must be one of {', '.join(sorted(tags))}, got {got!r}"
                + suggest(got, tags))
    if typ == "union_tag_not_found":
        key = next((p for p in reversed(loc) if isinstance(p, str)), None)   # cells[0]: the list's key
        kinds = _kinds(parent, key) if parent is not None else []
        return f"{key_path(loc + ('kind',))}: is required" + (f" (one of {', '.join(kinds)})" if kinds else "")
    if typ in _TYPE_WORDS:
        msg = f"must be {_TYPE_WORDS[typ]}"
    elif typ == "literal_error":
        expected = str(ctx.get("expected", ""))
        options = [e.strip(" '") for e in expected.replace(" or ", ",").split(",")]
        return f"{where}: must be one of {expected.replace(chr(39), '')}, got {short(inp)}" + suggest(inp, options)
    elif typ in _OPS:
        bound = next(iter(ctx.values()))
        msg = f"must be {_OPS[typ]} {bound:g}" if isinstance(bound, float) else f"must be {_OPS[typ]} {bound}"
    elif typ in ("too_short", "string_too_short"):
        msg = ("must not be empty" if isinstance(inp, str) and ctx.get("min_length") == 1
               else f"must have at least {ctx.get('min_length')} {'character' if isinstance(inp, str) else 'item'}(s)")
    elif typ in ("too_long", "string_too_long"):
        msg = f"must have at most {ctx.get('max_length')} {'characters' if isinstance(inp, str) else 'items'}"
    else:
        msg = err["msg"]
        # model-level checks say "field: problem"; fold the field into the key path
        head, sep, rest = msg.partition(": ")
        here = model_at(root, raw_loc) if root is not None else None
        if sep and here is not None and head in here.model_fields:
            return f"{key_path(loc + (head,))}: {rest}"
        if sep and here is None and head.isidentifier():
            return f"{key_path(loc + (head,))}: {rest}"
    return f"{where}: {msg}, got {short(inp)}"


# --- unions that are not discriminated ---------------------------------------------------
def _is_union(tp) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def _bare(tp):
    """tp without Annotated and Optional around it."""
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
        elif _is_union(tp) and len(get_args(tp)) == 2 and type(None) in get_args(tp):
            tp = next(a for a in get_args(tp) if a is not type(None))
        else:
            return tp


def union_at(root, loc) -> tuple[int, list] | None:
    """(index in loc of the member label pydantic inserts below a union that is not
    discriminated, the union's members), or None. A discriminated union's tag (a member's
    `kind`) is followed into that member."""
    tp = root
    for i, part in enumerate(loc):
        tp = _bare(tp)
        if _is_union(tp):
            members = [_bare(a) for a in get_args(tp) if a is not type(None)]
            tagged = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel) and _tag_of(m) == part]
            if not tagged:
                return i, members
            tp = tagged[0]
        elif isinstance(tp, type) and issubclass(tp, BaseModel) and part in tp.model_fields:
            tp = tp.model_fields[part].annotation
        elif get_origin(tp) in (list, tuple) and isinstance(part, int):
            tp = (get_args(tp) or (Any,))[0]
        elif get_origin(tp) is dict:
            tp = (get_args(tp) or (Any, Any))[1]
        else:
            return None
    return None


# a member that fails with one of these at its own level does not take the value's type
_MISMATCH = set(_TYPE_WORDS) - {"finite_number"} | {"literal_error", "is_instance_of"}


def _member_word(label, errs: list[dict], members: list) -> str:
    """What one member of a union asks for: `all`, `an integer`, `{path: ...}`."""
    model = next((m for m in members if isinstance(m, type) and issubclass(m, BaseModel)
                  and m.__name__ == label), None)
    if model is not None:
        required = [k for k, f in model.model_fields.items() if f.is_required()]
        return "{" + ", ".join(f"{k}: ..." for k in required) + "}" if required else "a mapping"
    err = errs[0]
    if err["type"] == "literal_error":
        return str((err.get("ctx") or {}).get("expected", "")).replace("'", "")
    return _TYPE_WORDS.get(err["type"], "a valid value")


def _either(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _union_lines(prefix: tuple, labelled: list[tuple], members: list, root, unknown) -> list[str]:
    """The lines of one union's errors: those of the first member the value fits (the right
    type and keys, a wrong value inside), or of the only member of the value's type (a
    mapping's misspelt key); else one line naming every member."""
    by: dict = {}
    for label, err in labelled:
        by.setdefault(label, []).append(err)
    typed = [errs for errs in by.values()
             if not any(len(e["loc"]) == len(prefix) and e["type"] in _MISMATCH for e in errs)]
    fits = [errs for errs in typed if not any(e["type"] in ("missing", "extra_forbidden") for e in errs)]
    chosen = fits[0] if fits else typed[0] if len(typed) == 1 else None
    if chosen is not None:
        return [format_error(e, root, unknown) for e in chosen]
    value = labelled[0][1].get("input")
    words = list(dict.fromkeys(_member_word(label, errs, members) for label, errs in by.items()))
    options = [str(a) for m in members for a in (get_args(m) if get_origin(m) is not None else ())]
    options += [k for m in members if isinstance(m, type) and issubclass(m, BaseModel) for k in m.model_fields]
    # a misspelt key or word: the first one no member knows
    typos = [e["loc"][-1] for _, e in labelled if e["type"] == "extra_forbidden"] + [value]
    word = next((w for w in typos if isinstance(w, str) and w not in options), None)
    return [f"{key_path(walk(root, prefix)[0])}: must be {_either(words)}, got {short(value)}"
            + (suggest(word, options) if word is not None else "")]


def error_lines(exc: ValidationError, root: type[BaseModel] | None = None, unknown=None) -> list[str]:
    """One line per problem: a union's errors are said together (see the module docstring)."""
    items: list = []            # an error dict, or the key of a union's group, in order
    groups: dict[tuple, tuple[list, list]] = {}
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        at = union_at(root, loc) if root is not None else None
        if at is None:
            items.append(err)
            continue
        i, members = at
        if loc[:i] not in groups:
            groups[loc[:i]] = ([], members)
            items.append(loc[:i])
        groups[loc[:i]][0].append((loc[i], {**err, "loc": loc[:i] + loc[i + 1:]}))
    out: list[str] = []
    for item in items:
        lines = ([format_error(item, root, unknown)] if isinstance(item, dict)
                 else _union_lines(item, *groups[item], root, unknown))
        for line in lines:
            if line not in out:
                out.append(line)
    return out


def fail(lines, code: int = 2):
    """The commands' way out on bad input: each line as "error: ..." on stderr, then exit
    `code` (2, a usage error, unless said)."""

    for line in ([lines] if isinstance(lines, str) else lines):
        click.echo(f"error: {line}", err=True)
    sys.exit(code)
