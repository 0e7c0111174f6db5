"""The parameter space of a sweep: dotted paths checked against the config classes, values applied to a config.

A parameter path such as ``strategy.params.base_spread_pct`` must name a
field of the strategy's own config class (resolved by dotted name, as the
app does, so the framework never imports a strategy), ``risk.inventory.x``
a field of :class:`~mmkit.risk.inventory.InventoryConfig`, and any other
path a field of the engine config (:class:`~mmkit.app.config.EngineConfig`).
Then every grid point (or both ends of a range and every choice) is applied
to the base config and put through the same validation ``mmkit backtest``
runs. Both happen before any trial: :func:`check` raises one
:class:`~mmkit.research.spec.SweepError` naming the sweep file and the key.
"""

from __future__ import annotations

import itertools
import re
import tempfile
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import yaml

from mmkit.app.config import SECRET_PATHS, EngineConfig
from mmkit.conf import ConfigError, read_yaml
from mmkit.research.spec import Parameter, SweepError, SweepSpec

#: Above this many grid points, only the first this many are put through the full config validation.
MAX_VALIDATED_POINTS = 2000


def grid_values(param: Parameter) -> list[Any]:
    """The values a grid search tries for ``param`` (exact decimal steps, never float drift)."""
    if param.values is not None:
        return list(param.values)
    assert param.low is not None and param.high is not None and param.step is not None
    out: list[Any] = []
    value = param.low
    while value <= param.high:
        out.append(int(value) if param.integer else value)
        value += param.step
    return out


def grid_points(params: Sequence[Parameter]) -> list[dict[str, Any]]:
    """Every combination of the parameters' grid values, in a fixed order (the sweep file's)."""
    names = [p.path for p in params]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(grid_values(p) for p in params))]


def probe_points(params: Sequence[Parameter]) -> list[dict[str, Any]]:
    """Points that exercise every end and every choice (for an optuna space, which has no grid)."""
    points: list[dict[str, Any]] = []
    for param in params:
        values = list(param.values) if param.values is not None else [param.low, param.high]
        for value in values:
            point = {p.path: _first(p) for p in params}
            point[param.path] = int(value) if param.integer and isinstance(value, Decimal) else value
            points.append(point)
    return points


def _first(param: Parameter) -> Any:
    if param.values is not None:
        return param.values[0]
    assert param.low is not None
    return int(param.low) if param.integer else param.low


def apply(config: Mapping[str, Any], point: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the raw config with each dotted path set to its value (sections created as needed)."""
    out: dict[str, Any] = _copy(config)
    for path, value in point.items():
        node = out
        *parents, leaf = path.split(".")
        for key in parents:
            child = node.get(key)
            if child is None:
                child = {}
            elif not isinstance(child, dict):
                raise ValueError(f"{path}: {key} is not a section")
            node[key] = child
            node = child
        node[leaf] = value
    return out


def _copy(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _copy(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_copy(v) for v in node]
    return node


class _Dumper(yaml.SafeDumper):
    """Decimals as exact YAML floats (read back as the same Decimal by :func:`mmkit.conf.read_yaml`)."""


def _represent_decimal(dumper: yaml.SafeDumper, value: Decimal) -> yaml.Node:
    text = format(value, "f")
    if "." not in text:
        text += ".0"
    return dumper.represent_scalar("tag:yaml.org,2002:float", text)


_Dumper.add_representer(Decimal, _represent_decimal)


def dump_config(config: Mapping[str, Any]) -> str:
    """The YAML text of a trial's config: what it ran, readable by ``mmkit backtest`` as it is."""
    return yaml.dump(dict(config), Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)


def load_base(spec: SweepSpec) -> dict[str, Any]:
    try:
        data = read_yaml(spec.config)
    except ConfigError as exc:
        raise SweepError(spec.file, "config", str(exc)) from exc
    if not isinstance(data, dict):
        raise SweepError(spec.file, "config", f"{spec.config}: the file must contain a mapping of sections")
    return data


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unwrap(tp: Any) -> Any:
    """``X | None`` -> X."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return tp


def _mapped_sections(base: Mapping[str, Any], spec: SweepSpec) -> dict[str, type | None]:
    """The mapping-typed config sections whose keys a config class of their own defines."""
    from mmkit.app.resolve import resolve_dotted
    from mmkit.risk.hedge import HedgeConfig
    from mmkit.risk.inventory import InventoryConfig

    controller_name = (base.get("strategy") or {}).get("controller")
    params_class: type | None = None
    if isinstance(controller_name, str):
        try:
            cls = resolve_dotted(controller_name, spec.config, "strategy.controller")
        except ConfigError as exc:
            raise SweepError(spec.file, "config", str(exc)) from exc
        params_class = getattr(cls, "config_class", None)
    return {"strategy.params": params_class, "risk.inventory": InventoryConfig, "hedge.params": HedgeConfig}


def check_path(path: str, base: Mapping[str, Any], spec: SweepSpec) -> None:
    """Raise SweepError unless ``path`` names a settable leaf field of the config (or of a part's config class)."""
    key = f"parameters.{path}"
    if path in SECRET_PATHS or path.startswith(("venue.settings", "hedge.venue.settings", "store.")):
        raise SweepError(spec.file, key, "not a tunable parameter (connection settings and storage are not swept)")
    if path == "simulation.balances" or path.startswith("simulation.balances."):
        # A mapping of asset -> amount: one asset's amount is a value (checked with the rest of the config).
        if path.count(".") != 2:
            raise SweepError(spec.file, key, "name one asset's balance, e.g. simulation.balances.USDT")
        return
    mapped = _mapped_sections(base, spec)
    cls: Any = EngineConfig
    parts = path.split(".")
    for i, part in enumerate(parts):
        prefix = ".".join(parts[: i + 1])
        if not (isinstance(cls, type) and attrs.has(cls)):
            raise SweepError(spec.file, key, f"{'.'.join(parts[:i])} has no fields (it is not a section)")
        names = attrs.fields_dict(cls)
        if part not in names:
            raise SweepError(spec.file, key, f"{cls.__name__} has no field {part!r} "
                                             f"(fields: {', '.join(sorted(names))})")
        field_type = _unwrap(_hints(cls)[part])
        if prefix in mapped:
            target = mapped[prefix]
            if target is None:
                raise SweepError(spec.file, key, f"{prefix} takes no parameters here")
            cls = target
            continue
        cls = field_type
    if isinstance(cls, type) and attrs.has(cls):
        raise SweepError(spec.file, key, f"{path} is a section, not a value: name one of its fields")
    if typing.get_origin(cls) in (list, dict) or cls in (list, dict):
        raise SweepError(spec.file, key, f"{path} is a list or mapping, not a value")


def validate_config(config: Mapping[str, Any], *, label: str = "trial") -> None:
    """Put a config through what ``mmkit backtest`` checks (load, controller, risk); raises ConfigError."""
    from mmkit.app.build import build_controller, risk_settings
    from mmkit.app.config import ConfigOverrides, load_engine_config

    with tempfile.TemporaryDirectory(prefix="mmkit-sweep-check-") as tmp:
        file = Path(tmp) / f"{label}.yml"
        file.write_text(dump_config(config), encoding="utf-8")
        loaded = load_engine_config(file, ConfigOverrides(backtest=True))
        build_controller(loaded)
        risk_settings(loaded)


def check(spec: SweepSpec) -> dict[str, Any]:
    """Check every parameter path and every value the search can try; return the raw base config.

    The sweep file's ``balances`` are written into it as ``simulation.balances`` first: every trial's
    config (its text and so its key) carries the account it started from, and ``mmkit backtest`` of a
    trial's config.yml starts from it too.
    """
    base = load_base(spec)
    simulation = base.get("simulation")
    if spec.balances is not None and (simulation is None or isinstance(simulation, dict)):  # else: named below
        base = {**base, "simulation": {**(simulation or {}), "balances": dict(spec.balances)}}
    try:
        validate_config(base, label=spec.config.stem)
    except ConfigError as exc:
        raise SweepError(spec.file, "config", f"{spec.config}: {exc.key_path}: {exc.reason}") from exc
    for param in spec.parameters:
        check_path(param.path, base, spec)
    points = grid_points(spec.parameters) if spec.search.method == "grid" else probe_points(spec.parameters)
    for point in _limited(points):
        try:
            validate_config(apply(base, point), label=spec.config.stem)
        except (ConfigError, ValueError) as exc:
            key_path = getattr(exc, "key_path", "")
            reason = getattr(exc, "reason", str(exc))
            culprit = _culprit(key_path, reason, point)
            raise SweepError(spec.file, f"parameters.{culprit}",
                             f"value {_show(point.get(culprit))} is rejected by the config: {key_path}: {reason}"
                             ) from exc
    return base


def _limited(points: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield from points[:MAX_VALIDATED_POINTS]


def _culprit(key_path: str, reason: str, point: Mapping[str, Any]) -> str:
    """The swept path the config error points at: that key, or the one inside its section the reason names."""
    key_path = key_path.removeprefix("$").removeprefix(".")
    if key_path in point:
        return key_path
    inside = [path for path in point if path.startswith(f"{key_path}.")] or list(point)
    named = [path for path in inside if re.search(rf"\b{re.escape(path.rsplit('.', 1)[-1])}\b", reason)]
    return (named or inside)[0]


def _show(value: Any) -> str:
    return format(value, "f") if isinstance(value, Decimal) else repr(value)


def plain(value: Any) -> Any:
    """A parameter value as JSON/Parquet can hold it (Decimal -> its exact text as float or int)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and "." not in str(value) else float(value)
    return value
