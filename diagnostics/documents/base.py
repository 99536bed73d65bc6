"""What every document model shares: the strict configuration, numbers as written, reading a
file into a model (one line naming the file, the key and the problem on any error) and writing
it back byte for byte.

Bytes. A model dumps the keys that were given to it (read from a file, or set by a writer), in
the order its fields are declared, which is the order the writers have always written them; a
key a writer leaves out (e.g. `forward_diverged` when nothing diverged) stays absent. Numbers
keep their type (an int is not turned into a float), so a document read and written again is the
same bytes (tests/test_documents.py checks every committed baseline).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar, Iterator, Union

from pydantic import BaseModel, ConfigDict, StrictFloat, StrictInt, ValidationError

from ..errors import DiagnosticsError
from ..io import atomic_write_text, dumps, json_safe
from ..options import StrictModel

CURVES = "diag-curves/1"
RUN = "diag-run/1"
SWEEP = "diag-sweep/1"
SWEEP_RUN = "diag-sweep-run/1"   # written since this version; earlier sweep-run.json had no format

# A number as written: an int stays an int and a float a float (1 and 1.0 are different bytes);
# a bool is not a number; NaN and infinities are not in a file (null stands for them).
Num = Union[StrictInt, StrictFloat]
Values = list[Union[StrictInt, StrictFloat, None]]   # a curve: null is log10 of an exact zero


class BadDocument(DiagnosticsError):
    """A file that cannot be used; the message is one line naming the file and the problem."""


def primary_norm(norms) -> str:
    """The one rule for which norm a summary (table, fits, (t, k) map, figures, regression
    adapters) reads when several were measured: spectral when measured (the norm of the Pascanu
    bound and of the Lyapunov rate), else the first listed."""
    norms = list(norms)
    return "spectral" if "spectral" in norms or not norms else norms[0]


# the paths a decay is read on, in order of preference: a cell whose output is its state has
# "a"; one whose output is not fed back (Mamba, Gated DeltaNet, the mLSTM) has "state" only
DECAY_PATHS = ("a", "state")


def decay_path(paths) -> str | None:
    """The one rule for which path a cell's decay is read on (the decay figure, the opening
    sentences, the horizon, the (t, k) map, the summaries and the regression tables): "a" where
    the cell has it, else "state"; None when neither was probed."""
    paths = list(paths)
    return next((p for p in DECAY_PATHS if p in paths), None)


def _required_as_written(schema: dict, cls: type) -> None:
    """The JSON Schema's `required`: every key a file written by diag holds, whatever its version
    (all but OPTIONAL), even where a reader lets it be absent."""
    schema["required"] = [f.alias or name for name, f in cls.model_fields.items() if name not in cls.OPTIONAL]


class Model(StrictModel):
    """Strict like every file model (options.StrictModel: no coercion, no unknown key, no NaN),
    also when a field is set later: a writer fills a document in, so not frozen. Built on first
    use (defer_build), so that importing the documents costs the commands little.
    populate_by_name: code may use a field's own name where the file has an older one
    (memoryless_loss, written "baseline").

    OPTIONAL: the keys a file written by diag may lack (added since, or written only when there is
    something to say); WHEN_MEASURED, those of them today's writers leave out when there is nothing
    to say. A writer's document must hold every other key (Document.built), so a key a writer stops
    writing fails in the tests."""
    model_config = ConfigDict(frozen=False, populate_by_name=True, validate_assignment=True, defer_build=True,
                              json_schema_extra=_required_as_written)
    OPTIONAL: ClassVar[frozenset[str]] = frozenset()
    WHEN_MEASURED: ClassVar[frozenset[str]] = frozenset()

    def to_data(self) -> dict:
        """Plain JSON values with the file's keys, as the file holds them (or the writer gave them)."""
        return self.model_dump(by_alias=True, exclude_unset=True)


def unwritten(m: BaseModel, where: str = "") -> Iterator[str]:
    """The keys of `m` and the models in it that were not given, but for WHEN_MEASURED ones."""
    cls = type(m)
    for name, f in cls.model_fields.items():
        key = f"{where}{f.alias or name}"
        if name not in m.model_fields_set:
            if name not in cls.WHEN_MEASURED:
                yield key
            continue
        value = getattr(m, name)
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            if isinstance(item, BaseModel):
                yield from unwritten(item, f"{key}[{i}]." if isinstance(value, list) else f"{key}.")


def peek(path: Path) -> dict | None:
    """The JSON object in `path`, unchecked, or None (missing, unreadable, not JSON, not an
    object): what deciding whose a folder is may read, where nothing may fail."""
    if not path.is_file():   # absent, or a pipe that would block the read: not ours either way
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):   # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    return data if isinstance(data, dict) else None


def names_format(doc: dict | None, fmt: str) -> bool:
    """Does `doc` name the format family of `fmt` ("diag-run/1": any "diag-run/N", a later
    version's file being this tool's too)?"""
    f = doc.get("format") if doc is not None else None
    return isinstance(f, str) and f.startswith(fmt.rsplit("/", 1)[0] + "/")


def _where(loc: tuple) -> str:
    """('series', 3, 'fit', 'slope', 'float') -> 'series[3].fit.slope' (union members dropped)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("int", "float", "bool", "str", "list", "dict") or "[" in part:
            continue    # which member of a union pydantic tried: not a key of the file
        else:
            out += f".{part}" if out else part
    return out or "(document)"


def _problem(err: dict) -> str:
    kind, got = err["type"], err.get("input")
    if kind == "extra_forbidden":
        return "unknown key (not part of this format; written by another version of diag?)"
    if kind == "missing":
        return "missing"
    if kind in ("int_type", "float_type") and err["loc"][-1:] in (("int",), ("float",)):
        return f"expected a number, got {_short(got)}"
    msg = err["msg"]
    return f"{msg[0].lower()}{msg[1:]}, got {_short(got)}"


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def one_line(where: str, e: ValidationError) -> str:
    """The first problem of a validation error as one line; how many more there are."""
    errs = e.errors()
    first = errs[0]
    others = len({_where(x["loc"]) for x in errs}) - 1     # a union's members name one key twice
    more = f" (and {others} more)" if others else ""
    return f"{where}: {_where(first['loc'])}: {_problem(first)}{more}"


class Document(Model):
    """A whole file. FORMAT is the string its `format` key holds, FILE its name in a folder."""
    FORMAT: ClassVar[str]
    FILE: ClassVar[str]

    @classmethod
    def read(cls, path_or_dir: str | os.PathLike):
        """The document in a file, or in FILE inside a folder; BadDocument (one line) if it
        cannot be used."""
        given = Path(path_or_dir)
        p = given / cls.FILE if given.is_dir() else given
        if not p.exists():
            raise BadDocument(f"{given} has no {cls.FILE}" if given.is_dir() else f"{p}: no such file")
        if not p.is_file():   # a FIFO with no writer would block the read forever
            raise BadDocument(f"{p}: not a regular file (a pipe or a device); expected {cls.FORMAT} JSON")
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise BadDocument(f"{p}: not a text file (expected {cls.FORMAT} JSON)") from None
        except OSError as e:
            raise BadDocument(f"{p}: cannot read ({e.strerror})") from None
        return cls.from_json(text, where=str(p))

    @classmethod
    def from_json(cls, text: str, where: str = "document"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise BadDocument(f"{where}: not valid JSON (line {e.lineno} column {e.colno}: {e.msg})") from None
        return cls.from_data(data, where)

    @classmethod
    def from_data(cls, data: Any, where: str = "document"):
        """A model of plain JSON values (as json.loads gives them)."""
        if not isinstance(data, dict):
            raise BadDocument(f"{where}: expected a JSON object with format {cls.FORMAT!r}, got {type(data).__name__}")
        cls._check_format(data, where)
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise BadDocument(one_line(where, e)) from None

    @classmethod
    def _check_format(cls, data: dict, where: str) -> None:
        if data.get("format") != cls.FORMAT:
            raise BadDocument(f"{where}: format: expected {cls.FORMAT!r}, got {data.get('format')!r}")

    @classmethod
    def of(cls, doc, where: str = "document"):
        """`doc` itself when it is this model, else a dict (numpy values and non-finite floats
        allowed, as a writer builds it) checked into one; BadDocument if it does not fit."""
        if isinstance(doc, cls):
            return doc
        if isinstance(doc, BaseModel):
            raise BadDocument(f"{where}: expected a {cls.FORMAT} document, got {type(doc).__name__}")
        return cls.from_data(json_safe(doc), where)

    @classmethod
    def built(cls, doc: dict, where: str):
        """A writer's document checked into the model, whole: every key but the WHEN_MEASURED ones
        given (BadDocument naming the first missing one)."""
        model = cls.of(doc, where)
        missing = next(unwritten(model), None)
        if missing is not None:
            raise BadDocument(f"{where}: {missing}: missing")
        return model

    def to_json(self) -> str:
        return dumps(self.to_data())

    def write(self, path: str | os.PathLike) -> Path:
        """Written whole or not at all (io.atomic_write_text)."""
        atomic_write_text(path, self.to_json())
        return Path(path)
