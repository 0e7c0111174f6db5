"""The sweep file (``mmkit sweep SWEEP.yml``), read and checked before anything runs.

A sweep file names a base strategy config, the data sets (recordings, each a
file, a directory or a glob, optionally cut into time windows), the
parameters to vary (dotted paths into the config), the objective (a dotted
path into report.json) with constraints, and the search (``grid`` or
``optuna``). Every mistake is one :class:`SweepError` naming the sweep file
and the key, raised here or in :mod:`mmkit.research.space` before a single
trial starts: a desk must not learn of a typo an hour into a sweep.

Relative paths (the config, the data) are relative to the working directory,
as for every other mmkit command.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Sequence
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

import attrs

from mmkit.conf import ConfigError, read_yaml
from mmkit.sim.latency import parse_latency_ms

Direction = Literal["maximize", "minimize"]
Mode = Literal["sweep", "walk_forward"]
Method = Literal["grid", "optuna"]

_TOP_KEYS = frozenset(
    {"name", "config", "data", "parameters", "objective", "constraints", "search", "mode", "seed", "setup", "queue",
     "taker_reach_bps", "latency_ms", "funding", "through_fill", "balances"}
)
_CONSTRAINT = re.compile(r"^\s*(abs\(\s*(?P<abs>[^)\s]+)\s*\)|(?P<path>[^\s<>=!]+))\s*(?P<op><=|>=|==|!=|<|>)\s*"
                         r"(?P<value>[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?)\s*$")


class SweepError(ConfigError):
    """A problem with a sweep file: ``file: key: reason`` (exit 2, like every config error)."""


@attrs.frozen
class DataSet:
    """One data set a trial runs on: a recording and an optional time window (ns, inclusive like --from/--to)."""

    label: str
    path: Path
    start_ns: int | None = None
    end_ns: int | None = None


@attrs.frozen
class Parameter:
    """One swept parameter: a dotted path into the strategy config and its values or range.

    ``values`` for a list (grid and optuna categorical), else ``low``/``high``
    with an optional ``step`` (required by grid) and ``log`` (optuna only).
    """

    path: str
    values: tuple[Any, ...] | None = None
    low: Decimal | None = None
    high: Decimal | None = None
    step: Decimal | None = None
    log: bool = False
    integer: bool = False


@attrs.frozen
class Constraint:
    """``metric OP number``: a trial whose report breaks it is infeasible (listed, never ranked best)."""

    text: str
    path: str
    op: str
    value: float
    absolute: bool = False


@attrs.frozen
class Search:
    method: Method = "grid"
    #: optuna: parameter sets to try; each runs on every (in-sample) data set.
    trials: int = 20
    #: optuna: the sampler's seed (the search is reproducible with it).
    seed: int = 0
    #: optuna: parameter sets asked for at once; fixed, not the worker count, so the search does not depend on it.
    batch: int = 4


@attrs.frozen
class SweepSpec:
    file: Path
    name: str
    config: Path
    datasets: tuple[DataSet, ...]
    parameters: tuple[Parameter, ...]
    objective: str
    direction: Direction
    constraints: tuple[Constraint, ...]
    search: Search
    mode: Mode = "sweep"
    seed: int = 7
    setup: str = "auto"
    queue: str = "conservative"
    taker_reach_bps: Decimal = Decimal(0)
    #: Latency between us and the venue in ms, ``"5"`` or ``"0.5,20"`` (as ``mmkit backtest --latency-ms``);
    #: empty: the backtest's default.
    latency_ms: str = ""
    #: A perpetual's funding settlements (as ``mmkit backtest --funding``); empty: none (reports say so).
    funding: str = ""
    #: Setup replay: what a print or the book moving through our price fills (``--through-fill``).
    through_fill: str = "tape"
    #: The starting account of every trial (asset -> amount), written into each trial's config as
    #: ``simulation.balances`` (replacing the base config's); None: the base config's, else the default.
    balances: dict[str, Decimal] | None = None


def _fail(file: Path, key: str, reason: str) -> SweepError:
    return SweepError(file, key, reason)


def _parse_time(file: Path, key: str, value: Any) -> int | None:
    from mmkit.app.backtest_cmd import parse_time

    if value is None:
        return None
    text = str(value)
    try:
        return parse_time(text)
    except ValueError as exc:
        raise _fail(file, key, str(exc)) from exc


def _parse_duration_s(file: Path, key: str, value: Any) -> Decimal:
    text = str(value).strip()
    match = re.fullmatch(r"(\d+(\.\d+)?)\s*(s|m|h)?", text)
    if match is None:
        raise _fail(file, key, f"not a duration: {text!r} (e.g. 120, 120s, 2m, 1h)")
    number = Decimal(match.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[match.group(3)]
    if number <= 0:
        raise _fail(file, key, "must be positive")
    return number


def _expand_path(file: Path, key: str, text: str) -> list[Path]:
    if any(ch in text for ch in "*?["):
        matches = sorted(Path(p) for p in glob.glob(text))
        if not matches:
            raise _fail(file, key, f"no file matches {text!r}")
        return matches
    path = Path(text)
    if not path.exists():
        raise _fail(file, key, f"no such recording: {path}")
    return [path]


def _datasets(file: Path, raw: Any) -> tuple[DataSet, ...]:
    if raw is None:
        raise _fail(file, "data", "required: the recordings to run on")
    entries = raw if isinstance(raw, list) else [raw]
    out: list[DataSet] = []
    for i, item in enumerate(entries):
        key = f"data[{i}]"
        entry = {"path": item} if isinstance(item, str) else item
        if not isinstance(entry, dict):
            raise _fail(file, key, "expected a path or a mapping with path (and from/to, windows)")
        unknown = set(entry) - {"path", "from", "to", "windows", "label"}
        if unknown:
            raise _fail(file, key, f"unknown key(s) {', '.join(sorted(map(repr, unknown)))}")
        if "path" not in entry:
            raise _fail(file, f"{key}.path", "required")
        paths = _expand_path(file, f"{key}.path", str(entry["path"]))
        start = _parse_time(file, f"{key}.from", entry.get("from"))
        end = _parse_time(file, f"{key}.to", entry.get("to"))
        if start is not None and end is not None and end <= start:
            raise _fail(file, f"{key}.to", "must be after from")
        windows = entry.get("windows")
        for path in paths:
            base = str(entry.get("label") or path.name) if len(paths) == 1 else path.name
            if windows is None:
                out.append(DataSet(base, path, start, end))
                continue
            if start is None or end is None:
                raise _fail(file, f"{key}.windows", "needs from and to: the span to cut into windows")
            if not isinstance(windows, dict) or set(windows) - {"every", "count"} or len(windows) != 1:
                raise _fail(file, f"{key}.windows", "expected {every: DURATION} or {count: N}")
            if "count" in windows:
                count = windows["count"]
                if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                    raise _fail(file, f"{key}.windows.count", "must be a positive integer")
                width = (end - start) // count
            else:
                width = int(_parse_duration_s(file, f"{key}.windows.every", windows["every"]) * 1_000_000_000)
                count = (end - start) // width
                if count < 1:
                    raise _fail(file, f"{key}.windows.every", "longer than the span from..to")
            for n in range(count):
                out.append(DataSet(f"{base}#w{n}", path, start + n * width, start + (n + 1) * width))
    labels = [d.label for d in out]
    for label in labels:
        if labels.count(label) > 1:
            raise _fail(file, "data", f"two data sets are both labelled {label!r}; give them a label")
    return tuple(out)


def _check_time_order(file: Path, datasets: Sequence[DataSet]) -> None:
    """Walk-forward's data sets must follow each other in time: each starts where (or after) the previous ends.

    Why: a fold optimises on data set n and calls n+1 "out of sample". Listed
    out of order (a glob of days sorted some other way, windows written by
    hand), or overlapping, n+1 is the past or shares the very data the set
    was tuned on, and the out-of-sample figure is in-sample without a word.
    A data set without ``from``/``to`` spans its recording (the first and
    last depth diff of its files, :func:`mmkit.app.backtest_data.recording_notes`).
    """
    from mmkit.backtest.health import utc_text

    spans = [_span(d) for d in datasets]
    for (before, (_, ended)), (after, (began, _)) in pairwise(zip(datasets, spans, strict=True)):
        if ended is not None and began is not None and began < ended:
            raise _fail(file, "data", f"walk_forward: data set {after.label!r} starts at {utc_text(began)}, before "
                                      f"{before.label!r}, listed before it, ends ({utc_text(ended)}): each fold "
                                      "is evaluated on the data set after the one it was tuned on, so they "
                                      "must be listed in time order and must not overlap")


def _span(dataset: DataSet) -> tuple[int | None, int | None]:
    """A data set's (start, end) in ns: its window where given, else its recording's (None: unknown)."""
    start, end = dataset.start_ns, dataset.end_ns
    if start is None or end is None:
        from mmkit.app.backtest_data import recording_notes

        try:
            notes = recording_notes(dataset.path)
        except (OSError, ValueError):
            notes = []  # an unreadable recording fails its trials, with its own message
        firsts = [n.first_event_ns for n in notes if n.first_event_ns is not None]
        lasts = [n.last_event_ns for n in notes if n.last_event_ns is not None]
        start = start if start is not None else (min(firsts) if firsts else None)
        end = end if end is not None else (max(lasts) if lasts else None)
    return start, end


def _number(file: Path, key: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise _fail(file, key, f"expected a number, got {value!r}")
    return Decimal(value)


def _parameters(file: Path, raw: Any, method: Method) -> tuple[Parameter, ...]:
    if not isinstance(raw, dict) or not raw:
        raise _fail(file, "parameters", "required: a mapping of dotted config paths to values or ranges")
    out: list[Parameter] = []
    for path, spec in raw.items():
        key = f"parameters.{path}"
        if not isinstance(path, str) or not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+", path):
            raise _fail(file, key, "expected a dotted path into the config, e.g. strategy.params.base_spread_pct")
        if isinstance(spec, list):
            if not spec:
                raise _fail(file, key, "empty list of values")
            out.append(Parameter(path, values=tuple(spec)))
            continue
        if not isinstance(spec, dict):
            raise _fail(file, key, "expected a list of values or {low, high, step} / {low, high, log}")
        unknown = set(spec) - {"low", "high", "step", "log", "values"}
        if unknown:
            raise _fail(file, key, f"unknown key(s) {', '.join(sorted(map(repr, unknown)))}")
        if "values" in spec:
            values = spec["values"]
            if not isinstance(values, list) or not values or len(spec) != 1:
                raise _fail(file, f"{key}.values", "expected a non-empty list (and nothing else)")
            out.append(Parameter(path, values=tuple(values)))
            continue
        if "low" not in spec or "high" not in spec:
            raise _fail(file, key, "a range needs low and high")
        low, high = _number(file, f"{key}.low", spec["low"]), _number(file, f"{key}.high", spec["high"])
        if high < low:
            raise _fail(file, f"{key}.high", "must not be below low")
        step = _number(file, f"{key}.step", spec["step"]) if "step" in spec else None
        if step is not None and step <= 0:
            raise _fail(file, f"{key}.step", "must be positive")
        if step is not None and (high - low) % step != 0:
            # Why: the grid (and Optuna's stepped range) stopped at the last step below high, so the end of the
            # range the file names was never tried, without a word.
            shown = [low + k * step for k in range(int((high - low) // step) + 1)]
            values = ", ".join(str(v) for v in shown[:4]) + (", ..." if len(shown) > 4 else "")
            raise _fail(file, f"{key}.step", f"step {step} does not land on high {high} (from low {low}: {values}); "
                                             "choose a high that the steps reach, or list the values")
        log = spec.get("log", False)
        if not isinstance(log, bool):
            raise _fail(file, f"{key}.log", "expected true or false")
        if log and low <= 0:
            raise _fail(file, f"{key}.low", "a log range needs low > 0")
        if method == "grid" and step is None:
            raise _fail(file, f"{key}.step", "required by a grid search (or list the values)")
        if log and step is not None:
            raise _fail(file, f"{key}.log", "choose step or log, not both")
        integer = all(isinstance(spec.get(k), int) for k in ("low", "high")) and (step is None or isinstance(
            spec.get("step"), int))
        out.append(Parameter(path, low=low, high=high, step=step, log=log, integer=integer))
    return tuple(out)


def _constraints(file: Path, raw: Any) -> tuple[Constraint, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail(file, "constraints", "expected a list like ['inventory.mean_abs <= 0.5']")
    out: list[Constraint] = []
    for i, text in enumerate(raw):
        match = _CONSTRAINT.match(str(text)) if isinstance(text, str) else None
        if match is None:
            raise _fail(file, f"constraints[{i}]", f"expected 'metric OP number' or 'abs(metric) OP number', "
                                                   f"got {text!r}")
        path = match.group("abs") or match.group("path")
        out.append(Constraint(str(text).strip(), path, match.group("op"), float(match.group("value")),
                              absolute=match.group("abs") is not None))
    return tuple(out)


def _objective(file: Path, raw: Any) -> tuple[str, Direction]:
    if isinstance(raw, str):
        raw = {"metric": raw}
    if not isinstance(raw, dict) or "metric" not in raw or set(raw) - {"metric", "direction"}:
        raise _fail(file, "objective", "expected {metric: DOTTED.PATH.IN.REPORT, direction: maximize|minimize}")
    metric = raw["metric"]
    if not isinstance(metric, str) or not metric or "*" in metric:
        raise _fail(file, "objective.metric", "expected one dotted path into report.json, e.g. pnl.total")
    direction = raw.get("direction", "maximize")
    if direction not in ("maximize", "minimize"):
        raise _fail(file, "objective.direction", "must be maximize or minimize")
    return metric, direction


def _search(file: Path, raw: Any) -> Search:
    if raw is None:
        return Search()
    if isinstance(raw, str):
        raw = {"method": raw}
    if not isinstance(raw, dict):
        raise _fail(file, "search", "expected grid, optuna or {method: optuna, trials: N, seed: S}")
    unknown = set(raw) - {"method", "trials", "seed", "batch", "sampler"}
    if unknown:
        raise _fail(file, "search", f"unknown key(s) {', '.join(sorted(map(repr, unknown)))}")
    method = raw.get("method", "grid")
    if method not in ("grid", "optuna"):
        raise _fail(file, "search.method", "must be grid or optuna")
    if raw.get("sampler", "tpe") != "tpe":
        raise _fail(file, "search.sampler", "only tpe is supported")
    values: dict[str, int] = {}
    for name, default, minimum in (("trials", 20, 1), ("seed", 0, 0), ("batch", 4, 1)):
        value = raw.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise _fail(file, f"search.{name}", f"expected an integer >= {minimum}")
        values[name] = value
    return Search(method=method, trials=values["trials"], seed=values["seed"], batch=values["batch"])


def _funding(file: Path, value: Any) -> str:
    """``funding``: a readable funding file (checked against each trial's contract and span when it runs)."""
    from mmkit.backtest.funding import FundingFormatError, load_funding

    if value is None:
        return ""
    if not isinstance(value, str) or not value:
        raise _fail(file, "funding", "expected the path of a funding file (as mmkit backtest --funding)")
    try:
        load_funding(Path(value), None)
    except FundingFormatError as exc:
        raise _fail(file, "funding", str(exc)) from None
    return value


def _balances(file: Path, raw: Any) -> dict[str, Decimal] | None:
    """``balances``: amounts checked as the strategy file's ``simulation.balances`` are (key named).

    The assets are checked against each trial's quoted instrument when it runs: with setup auto or
    replay that is the recording's, which is not known here.
    """
    from mmkit.app.backtest_balances import BalanceError, check_amounts

    if raw is None:
        return None
    try:
        return check_amounts(raw, "balances")
    except BalanceError as exc:
        raise _fail(file, exc.key, exc.reason) from None


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and check a sweep file (everything but the parameter paths: see :func:`mmkit.research.space.check`)."""
    file = Path(path)
    raw = read_yaml(file)
    if not isinstance(raw, dict):
        raise _fail(file, "", "the file must contain a mapping")
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise _fail(file, "", f"unknown key(s) {', '.join(sorted(map(repr, unknown)))}")
    if "config" not in raw or not isinstance(raw["config"], str):
        raise _fail(file, "config", "required: the base strategy config, e.g. strategies/layered_example.yml")
    config = Path(raw["config"])
    if not config.is_file():
        raise _fail(file, "config", f"no such file: {config}")
    search = _search(file, raw.get("search"))
    mode = raw.get("mode", "sweep")
    if mode not in ("sweep", "walk_forward"):
        raise _fail(file, "mode", "must be sweep or walk_forward")
    datasets = _datasets(file, raw.get("data"))
    if mode == "walk_forward" and len(datasets) < 2:
        raise _fail(file, "data", "walk_forward needs at least two data sets (optimise on n, evaluate on n+1)")
    if mode == "walk_forward":
        _check_time_order(file, datasets)
    metric, direction = _objective(file, raw.get("objective"))
    seed = raw.get("seed", 7)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise _fail(file, "seed", "expected an integer")
    setup = raw.get("setup", "auto")
    if setup not in ("auto", "sim", "replay"):
        raise _fail(file, "setup", "must be auto (mmkit backtest's default), sim or replay (as --setup)")
    reach = raw.get("taker_reach_bps", 0)
    if isinstance(reach, bool) or not isinstance(reach, int | Decimal) or reach < 0:
        raise _fail(file, "taker_reach_bps", "expected a number >= 0 (as mmkit backtest --taker-reach-bps)")
    latency = raw.get("latency_ms")
    latency_ms = "" if latency is None else str(latency)
    if isinstance(latency, bool) or (latency is not None and not isinstance(latency, int | Decimal | str)):
        raise _fail(file, "latency_ms", "expected ms each way, or 'entry,response' (as mmkit backtest --latency-ms)")
    if latency is not None:
        try:
            parse_latency_ms(latency_ms)
        except ValueError as exc:
            raise _fail(file, "latency_ms", str(exc)) from None
    funding = _funding(file, raw.get("funding"))
    through_fill = raw.get("through_fill", "tape")
    if through_fill not in ("tape", "whole"):
        raise _fail(file, "through_fill", "must be tape or whole (as mmkit backtest --through-fill)")
    queue = raw.get("queue", "conservative")
    if queue not in ("conservative", "probabilistic"):
        raise _fail(file, "queue", "must be conservative or probabilistic")
    from mmkit.app.backtest_setup_choice import SETUP_OPTIONS

    for entry in SETUP_OPTIONS:  # silently ignored before, as by mmkit backtest
        if entry.key in raw and setup not in ("auto", entry.setup):
            raise _fail(file, entry.key, f"only setup {entry.setup} models it, and this sweep's setup is {setup}: "
                                         f"leave {entry.key} out, or set setup: {entry.setup}")
    name = raw.get("name", file.stem)
    if not isinstance(name, str) or not re.fullmatch(r"[\w.-]+", name):
        raise _fail(file, "name", "letters, digits, '.', '_' and '-' only (it names the output directory)")
    return SweepSpec(
        file=file, name=name, config=config, datasets=datasets,
        parameters=_parameters(file, raw.get("parameters"), search.method),
        objective=metric, direction=direction, constraints=_constraints(file, raw.get("constraints")),
        search=search, mode=mode, seed=seed, setup=setup, queue=queue, taker_reach_bps=Decimal(reach),
        latency_ms=latency_ms, funding=funding, through_fill=through_fill,
        balances=_balances(file, raw.get("balances")),
    )
