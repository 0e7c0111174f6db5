"""YAML -> attrs loading with errors that name the file, the key path and the reason.

Used for venue rules (``conf/venues/*.yml``) and strategy/engine configs. The
rules a desk relies on:

* unknown keys are rejected (a typo must not silently fall back to a default);
* numbers in YAML are read as ``Decimal`` from their text, never via float;
* ``${NAME}`` is expanded from the environment only where a field is marked
  as a secret by the caller (``secret_paths``); a missing variable is an error;
* an integer YAML would read in another base (``010`` is 8, ``1:30`` is 90)
  is an error naming the line;
* a key written twice in one mapping is an error naming both lines (YAML
  itself would silently keep the last one), and a YAML syntax error names the
  file and the line;
* an unknown key suggests the closest known one ("did you mean ...").
"""

from __future__ import annotations

import importlib.resources
import os
import re
import types
import typing
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

import attrs
import cattrs
import yaml
from cattrs.gen import make_dict_structure_fn

T = TypeVar("T")


def shipped_conf_dir(kind: str) -> Path:
    """Where the shipped ``conf/<kind>`` files (``venues``, ``fix``) are, in a checkout or an installed wheel.

    Why two places: in a source checkout (and an editable install) they are the repository's ``conf/``
    folder, which a desk edits and reviews; a wheel cannot carry a top-level folder, so setup.py installs
    the same files as the package data of ``mmkit._conf``. The checkout wins when both exist.
    """
    in_checkout = Path(__file__).resolve().parent.parent / "conf" / kind
    if in_checkout.is_dir():
        return in_checkout
    return Path(str(importlib.resources.files("mmkit._conf").joinpath(kind)))


_ENV_PATTERN = re.compile(r"^\$\{([A-Z_][A-Z0-9_]*)\}$")


class ConfigError(Exception):
    """A configuration problem, located: ``file: key.path: reason``."""

    def __init__(self, file: str | Path | None, key_path: str, reason: str, line: int | None = None) -> None:
        self.file = str(file) if file is not None else "<config>"
        self.key_path = key_path or "<root>"
        self.reason = reason
        #: 1-based line in the file, when known (YAML syntax errors, duplicate keys).
        self.line = line
        where = f"{self.file}:{line}" if line is not None else self.file
        super().__init__(f"{where}: {self.key_path}: {reason}")


class _DecimalLoader(yaml.SafeLoader):
    """SafeLoader that reads floats as exact Decimals from their source text."""


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal:
    text = loader.construct_scalar(node)  # type: ignore[arg-type]
    assert isinstance(text, str)
    try:
        return Decimal(text.replace("_", ""))
    except InvalidOperation as exc:  # .inf / .nan spellings
        raise yaml.constructor.ConstructorError(None, None, f"not a finite number: {text}", node.start_mark) from exc


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)

_DECIMAL_INT = re.compile(r"[-+]?(0|[1-9][0-9_]*)")


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    """Integers in decimal only: YAML 1.1 reads ``010`` as 8, ``0x10`` as 16 and ``1:30`` as 90.

    A desk writing ``max_position: 010`` or ``level_spacing_ticks: 010`` means ten; the other
    bases are an error naming the line and what YAML would have made of it.
    """
    text = loader.construct_scalar(node)  # type: ignore[arg-type]
    assert isinstance(text, str)
    value = yaml.SafeLoader.construct_yaml_int(loader, node)  # type: ignore[arg-type]
    if not _DECIMAL_INT.fullmatch(text):
        raise yaml.constructor.ConstructorError(
            None, None, f"{text} would be read as {value} (YAML reads a leading 0 as octal, 0x as hex, a:b as "
            "base 60); write the number in decimal", node.start_mark)
    return int(value)


_DecimalLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping with the same key twice; carries both (1-based) lines."""

    def __init__(self, key: object, first_line: int, second_line: int, node: yaml.Node) -> None:
        self.key, self.first_line, self.second_line = key, first_line, second_line
        super().__init__(None, None, f"duplicate key {key!r} (lines {first_line} and {second_line})", node.start_mark)


def _construct_mapping_once(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    """Like SafeLoader's mappings, but a key written twice is an error instead of "the last one wins"."""
    loader.flatten_mapping(node)
    seen: dict[object, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: let the normal constructor report it
            continue
        if first is not None:
            raise DuplicateKeyError(key, first, key_node.start_mark.line + 1, key_node)
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=True)


_DecimalLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping_once)


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file with exact decimals; errors name the file and line."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(file, "", f"cannot read file: {exc.strerror or exc}") from exc
    try:
        return yaml.load(text, Loader=_DecimalLoader)
    except DuplicateKeyError as exc:
        raise ConfigError(file, str(exc.key), f"duplicate key (lines {exc.first_line} and {exc.second_line});"
                          " YAML would silently keep the last one", line=exc.second_line) from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or "syntax error"
        raise ConfigError(file, "", f"invalid YAML: {problem}", line=line) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(file, "", f"invalid YAML: {exc}") from exc


def _structure_decimal(value: Any, _: type) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, float):
        raise ValueError(f"float {value!r} is not exact; write the number in YAML or as a string")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | str):
        try:
            result = Decimal(value)
        except InvalidOperation as exc:
            raise ValueError(f"not a number: {value!r}") from exc
        if not result.is_finite():
            raise ValueError(f"not a finite number: {value!r}")
        return result
    raise ValueError(f"expected a number, got {type(value).__name__}")


def _structure_int(value: Any, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise ValueError(f"expected an integer, got {value!r}")
    try:
        number = Decimal(value) if not isinstance(value, int) else value
    except InvalidOperation as exc:
        raise ValueError(f"expected an integer, got {value!r}") from exc
    if isinstance(number, Decimal):
        if number != number.to_integral_value():
            raise ValueError(f"expected an integer, got {value!r}")
        return int(number)
    return number


def _structure_float(value: Any, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float | str):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


def _structure_str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _structure_bool(value: Any, _: type) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def make_converter() -> cattrs.Converter:
    """A strict converter: unknown keys rejected, exact numbers, no silent coercion."""
    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_structure_hook(Decimal, _structure_decimal)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(float, _structure_float)
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(bool, _structure_bool)
    converter.register_structure_hook_factory(
        lambda cls: hasattr(cls, "__attrs_attrs__"),
        lambda cls: make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=True),
    )
    return converter


CONVERTER = make_converter()


def _format_path(path: str) -> str:
    # cattrs paths look like "$.a.b[0]"; present them as "a.b[0]".
    return path.removeprefix("$").removeprefix(".")


def _format_exception(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        known = [f.name for f in attrs.fields(exc.cl)] if attrs.has(exc.cl) else []
        parts = []
        import difflib  # only when a key is unknown: not on every start (issue 16)

        for key in sorted(exc.extra_fields):
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            parts.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        return "unknown key(s) " + ", ".join(parts) + (f"; known keys: {', '.join(known)}" if known else "")
    if isinstance(exc, KeyError):
        return "required key missing"
    if isinstance(exc, ValueError | TypeError) and str(exc):
        return str(exc)
    name = getattr(type_, "__name__", str(type_))
    return f"invalid value, expected {name}"


def structure(data: Any, cls: type[T], file: str | Path | None = None, root: str = "") -> T:
    """Build ``cls`` from plain data, raising one ConfigError for the first problem found."""
    try:
        return CONVERTER.structure(data, cls)
    except cattrs.BaseValidationError as exc:
        messages = cattrs.transform_error(exc, path=root or "$", format_exception=_format_exception)
        first = messages[0] if messages else str(exc)
        reason, _, path = first.rpartition(" @ ")
        reason = reason or first
        at = _type_at(cls, path.removeprefix(root or "$"))
        raise ConfigError(file, _format_path(_with_field(path, at, reason)), reason) from exc
    except (ValueError, TypeError) as exc:  # raised from an attrs validator or converter
        raise ConfigError(file, _format_path(_with_field(root, cls, str(exc))), str(exc)) from exc


def _with_field(path: str, cls: Any, reason: str) -> str:
    """``path``, made the field's own when ``reason`` starts with a field name of ``cls`` (the class there).

    Why: a check across fields raises from the class (``__attrs_post_init__``, a validator), so cattrs
    reports the section (``engine: tick_ms must be positive``); the dotted key is what a person searches
    the file for, and what the promise "a bad config names the key" means.
    """
    if cls is None or not attrs.has(cls):
        return path
    word = reason.split(" ", 1)[0].rstrip(":,;")
    if word not in {field.name for field in attrs.fields(cls)}:
        return path
    return f"{path}.{word}" if path else word


def _type_at(cls: Any, relative: str) -> Any:
    """The class found at ``relative`` (cattrs' ``.a.b[0]`` form) below ``cls``; None when it cannot be told."""
    current = cls
    for part in re.findall(r"\.([^.\[]+)|\[[^]]*\]", relative):
        if not attrs.has(current):
            return None
        if part:  # a field
            try:
                hints = typing.get_type_hints(current)
            except Exception:  # an annotation that does not resolve: keep the section's path
                return None
            current = hints.get(part)
        current = _element(current) if not part else _optional(current)
        if current is None:
            return None
    return _optional(current)


def _optional(tp: Any) -> Any:
    """``X`` of ``X | None``; ``tp`` itself otherwise."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return tp


def _element(tp: Any) -> Any:
    """The element class of ``list[X]``, ``tuple[X, ...]``, ``dict[str, X]`` (optional or not); None otherwise."""
    tp = _optional(tp)
    args = typing.get_args(tp)
    return _optional(args[-1]) if args else None


def load_yaml(path: str | Path, cls: type[T], secret_paths: Iterable[str] = ()) -> T:
    """Read ``path`` and structure it as ``cls``; ``${ENV}`` allowed only at ``secret_paths``."""
    data = read_yaml(path)
    data = expand_secrets(data, set(secret_paths), path)
    return structure(data, cls, file=path)


def expand_secrets(data: Any, secret_paths: set[str], file: str | Path | None, _path: str = "") -> Any:
    """Replace ``${NAME}`` with the environment value, only at the allowed dotted key paths.

    A ``${...}`` anywhere else is an error: the environment is for secrets,
    not a second configuration language.
    """
    if isinstance(data, dict):
        return {k: expand_secrets(v, secret_paths, file, f"{_path}.{k}" if _path else str(k)) for k, v in data.items()}
    if isinstance(data, list):
        return [expand_secrets(v, secret_paths, file, f"{_path}[{i}]") for i, v in enumerate(data)]
    if isinstance(data, str) and "${" in data:
        match = _ENV_PATTERN.match(data)
        generic = re.sub(r"\[\d+\]", "[]", _path)
        if match is None:
            raise ConfigError(file, _path, f"malformed environment reference {data!r}; write ${{NAME}}")
        if _path not in secret_paths and generic not in secret_paths:
            raise ConfigError(file, _path, "environment references are only allowed for secrets")
        name = match.group(1)
        value = os.environ.get(name)
        if value is None or value == "":
            raise ConfigError(file, _path, f"secret environment variable {name} is not set")
        return value
    return data
