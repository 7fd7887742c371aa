"""Reading the configuration: TOML bytes in, validated :class:`Settings` out, and every
error turned into one line that names the file, the key path and the problem."""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from harvester.config.base import KeyedError
from harvester.config.sections import DatabaseSettings
from harvester.config.settings import Settings
from harvester.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("config/harvester.toml")
_FIELD_FIRST = re.compile(r"^(?P<key>[a-z_]+): (?P<rest>.*)$", re.DOTALL)


def _loc_to_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _unwrap(tp: Any) -> Any:
    """``X | None`` → X."""
    if get_origin(tp) in (Union, UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def _keys_at(loc: tuple[int | str, ...]) -> list[str]:
    """The keys valid in the table at ``loc`` (the location of an unknown key), for a
    "did you mean" hint; empty when the location cannot be followed."""
    tp: Any = Settings
    for part in loc[:-1]:
        tp = _unwrap(tp)
        origin = get_origin(tp)
        if origin in (tuple, list, dict):
            args = [a for a in get_args(tp) if a is not Ellipsis]
            tp = args[-1] if args else None
        elif isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
            field = next((f for n, f in tp.model_fields.items() if part in (n, f.alias)), None)
            if field is None:
                return []
            tp = field.annotation
        else:
            return []
    tp = _unwrap(tp)
    if not (isinstance(tp, type) and issubclass(tp, BaseModel)):
        return []
    return [f.alias or n for n, f in tp.model_fields.items() if not f.exclude and n != "path"]


_TYPE_WORDS = {
    "tuple_type": "a list",
    "list_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "string_type": "a string in quotes",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
}
_TOML_TYPES = {
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "true/false",
    list: "a list",
    dict: "a table",
}


def _describe(error: Mapping[str, Any]) -> str:
    kind = error.get("type")
    if kind == "extra_forbidden":
        loc = tuple(error.get("loc", ()))
        near = difflib.get_close_matches(str(loc[-1]) if loc else "", _keys_at(loc), n=1)
        return "unknown key" + (f"; did you mean {near[0]!r}?" if near else "")
    if kind == "missing":
        return "missing required key"
    if kind in _TYPE_WORDS:
        got = error.get("input")
        given = _TOML_TYPES.get(type(got), type(got).__name__)
        shown = repr(got) if len(repr(got)) <= 60 else repr(got)[:59] + "…"
        example = ' (write ["…", "…"])' if _TYPE_WORDS[kind] == "a list" else ""
        return f"expected {_TYPE_WORDS[kind]}, got {given} {shown}{example}"
    message = str(error.get("msg", "invalid value"))
    return message.removeprefix("Value error, ")


def _format_validation(path: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        ctx = err.get("ctx") or {}
        keyed = ctx.get("error")
        if isinstance(keyed, KeyedError):
            lines.append(f"{path}: {keyed.path}: {keyed.message}")
            continue
        where, problem = _loc_to_path(tuple(err["loc"])), _describe(err)
        # a whole-table check names its key first ("schedule: invalid cron …"): join it to the path
        if m := _FIELD_FIRST.match(problem):
            where, problem = f"{where}.{m['key']}", m["rest"]
        lines.append(f"{path}: {where}: {problem}")
    return "\n".join(lines)


def parse_settings(data: Mapping[str, Any], *, path: str = "<config>") -> Settings:
    """Validate an already-parsed TOML document."""
    try:
        settings = Settings.model_validate(dict(data))
    except ValidationError as e:
        raise ConfigError(_format_validation(path, e)) from None
    except KeyedError as e:  # raised outside pydantic's wrapping in some versions
        raise ConfigError(f"{path}: {e.path}: {e.message}") from None
    return settings.model_copy(update={"path": path})


def load_settings(path: Path, *, database_url: str | None = None) -> Settings:
    """Read and validate ``path``; ``database_url`` (or $HARVESTER_DATABASE_URL) wins over
    the file's."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such configuration file (create one with `harvester init`, "
            "or pass --config / set HARVESTER_CONFIG)"
        ) from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")  # TOML: "A TOML file must be a valid UTF-8 encoded document"
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except RecursionError:
        # tomllib recurses once per nested array or inline table and gives up at Python's
        # stack limit (a few hundred levels); no configuration nests more than a few
        line = _too_deep_line(text)
        where = f" (line {line})" if line else ""
        raise ConfigError(
            f"{path}: not valid TOML: arrays or inline tables nested too deeply{where}"
        ) from None
    settings = parse_settings(data, path=str(path))
    url = database_url or os.environ.get("HARVESTER_DATABASE_URL")
    if url:
        settings = settings.model_copy(update={"database": DatabaseSettings(url=url)})
    return settings


def _too_deep_line(text: str, limit: int = 100) -> int | None:
    """The line where ``[``/``{`` nesting outside strings and comments first passes ``limit``
    (only to name the line in an error; tomllib itself decides what is too deep)."""
    depth, line, i, n = 0, 1, 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        elif c in "\"'":
            quote = c * 3 if text.startswith(c * 3, i) else c
            i += len(quote)
            while i < n and not text.startswith(quote, i):
                if text[i] == "\\" and c == '"':
                    i += 1  # an escaped character (a quote, or a line-ending backslash)
                if i < n and text[i] == "\n":
                    line += 1
                i += 1
            i += len(quote)
            continue
        elif c in "[{":
            depth += 1
            if depth > limit:
                return line
        elif c in "]}":
            depth = max(depth - 1, 0)
        i += 1
    return None


def default_config_path() -> Path:
    return Path(os.environ.get("HARVESTER_CONFIG") or DEFAULT_CONFIG_PATH)
