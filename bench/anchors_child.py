"""One measurement of bench/compare_anchors.py in its own process (not a benchmark by itself).

``python -m bench.anchors_child JOB [ARGS]`` prints its result as one line
``ANCHOR {json}`` (other libraries print to stdout too; the prefix finds ours).
Each job runs in a fresh process because import and warm-up state would
otherwise leak from one engine's run into the next; only hftbacktest's maker
runs as a worker (``hbt_worker``) that answers ``run`` on stdin, because its
figure is by definition the warm one (numba has compiled the loop).

Jobs: ``mmkit_replay``, ``mmkit_replay_silent`` (the same run quoting nothing), ``nautilus_replay``, ``hbt_worker``,
``mmkit_first_read`` (``MMKIT_CACHE_DIR`` must be an empty directory; the
fresh read, then a warm one in the same process), ``hbt_prepare DIR``
(untimed), ``hbt_convert PREPARED_DIR OUT_DIR`` (a cold conversion, then the
warm one), ``book REPETITIONS``, ``anchor_figures MODULE [quick]`` (another
bench's figures: ``{"figures": {...}}``, or ``{"figures": null}`` when the
module has no ``anchor_figures``).
"""

from __future__ import annotations

import time

began = time.perf_counter()

import json  # noqa: E402 -- the imports are timed apart
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from loguru import logger  # noqa: E402

from bench.anchors_settings import MakerSpec  # noqa: E402
from bench.bench_backtest import _data_dir  # noqa: E402
from mmkit.app.backtest_cmd import load_events  # noqa: E402

MARK = "ANCHOR "


def emit(result: dict[str, Any]) -> None:
    print(MARK + json.dumps(result), flush=True)


def _mmkit_replay(silent: bool = False) -> dict[str, Any]:
    from bench.anchors_mmkit import maker_outcome, run_maker

    imported = time.perf_counter()
    events = load_events(_data_dir(), freeze=True)
    result = run_maker(events, MakerSpec(), silent=silent)
    return {"import_s": imported - began, "run_s": result.run_s, **maker_outcome(result)}


def _sequenced_events() -> list[Any]:
    from bench.validate_hftbacktest import sequenced

    return sequenced(load_events(_data_dir(), freeze=True))


def _nautilus_replay() -> dict[str, Any]:
    from bench.anchors_nautilus import build_engine, market_data, run_maker

    imported = time.perf_counter()
    spec = MakerSpec()
    engine, strategy = build_engine(market_data(_sequenced_events(), spec), spec)
    return {"import_s": imported - began, **run_maker(engine, strategy)}


def _hbt_worker() -> None:
    """Prepare, compile (the cold run, reported), then one warm run per ``run`` line on stdin."""
    from bench.anchors_hbt import run_maker
    from bench.validate_hftbacktest import to_hftbacktest

    spec = MakerSpec()
    data = to_hftbacktest(_sequenced_events())
    emit({"cold": True, **run_maker(data, spec)})
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            return
        if command != "run":
            raise SystemExit(f"hbt_worker: unknown command {command!r}")
        emit({"cold": False, **run_maker(data, spec)})


def _mmkit_first_read() -> dict[str, Any]:
    """The user's wait (this fresh process, empty cache), then the same read again warm in this process.

    ``read_s``: the first read in this fresh process (imports timed apart). ``warm_s``: a second first
    read here, its in-process cache cleared and a new empty disk cache, once the first read's events are
    released: like for like with hftbacktest's warm conversion.
    """
    import gc

    from bench.first_read import mmkit_first_read_in_process
    from mmkit.backtest.binance import clear_recording_cache

    imported = time.perf_counter()
    events = load_events(_data_dir(), freeze=True)  # empty MMKIT_CACHE_DIR: parse and write the cache
    read_s = time.perf_counter() - imported
    count = len(events)
    del events
    clear_recording_cache()
    gc.unfreeze()
    gc.collect()
    return {"import_s": imported - began, "read_s": read_s, "warm_s": mmkit_first_read_in_process(_data_dir()),
            "events": count}


def _hbt_convert(prepared_dir: str, out_dir: str) -> dict[str, Any]:
    """hftbacktest's conversion twice in this process: ``cold_s`` (numba compiling), then ``read_s`` (warm).

    Its converter's event-order passes are numba functions compiled on first use and not cached on
    disk, so the first call in a process pays the compiling (~1 s); issue 16's figure is the warm one.
    """
    import contextlib
    import io

    from bench.anchors_hbt import convert

    imported = time.perf_counter()
    prepared = sorted(Path(prepared_dir).glob("*.gz"))
    if not prepared:
        raise SystemExit(f"hbt_convert: no prepared .gz files in {prepared_dir}")
    target = Path(out_dir)
    with contextlib.redirect_stdout(io.StringIO()):  # the converter narrates its steps
        cold = convert(prepared, target)
        seconds = convert(prepared, target)  # the same .npz names, overwritten
    return {"import_s": imported - began, "cold_s": cold, "read_s": seconds}


def _hbt_prepare(target_dir: str) -> dict[str, Any]:
    """The recording's files reshaped for hftbacktest's converter (untimed preparation of ``hbt_convert``)."""
    from bench.anchors_hbt import futures_shaped
    from mmkit.backtest.binance import recording_files

    lines = sum(futures_shaped(path, Path(target_dir) / path.name) for path in recording_files(_data_dir()))
    return {"lines": lines}


def _book(repetitions: int) -> dict[str, Any]:
    """mmkit's OrderBook and Nautilus's, alternating in this process; the final tops must agree."""
    from bench.anchors_nautilus import book_deltas, run_book
    from bench.bench_book import _run_book
    from mmkit.backtest.binance import load_int_recording, recording_files

    rec = load_int_recording(recording_files(_data_dir()))
    snapshot, diffs = book_deltas(rec)
    tick = float(rec.price_increment)
    runs: dict[str, list[float]] = {"mmkit OrderBook": [], "NautilusTrader OrderBook": []}
    for _ in range(repetitions):
        timing, bid, ask = _run_book(rec)
        runs["mmkit OrderBook"].append(timing["wall"])
        seconds, nt_bid, nt_ask = run_book(snapshot, diffs)
        runs["NautilusTrader OrderBook"].append(seconds)
        if (round(nt_bid / tick), round(nt_ask / tick)) != (bid, ask):
            raise SystemExit(f"books disagree on the final top: mmkit {bid}/{ask} ticks, Nautilus {nt_bid}/{nt_ask}")
    return {"level_updates": rec.level_updates, "diffs": len(rec.diffs), "runs": runs}


def _anchor_figures(module_name: str, quick: bool) -> dict[str, Any]:
    """Another bench's ``anchor_figures()`` in this fresh process, so nothing an earlier section ran shares it.

    Why a child: in compare_anchors' own process the decision path ran after
    the FIX bench and four sections of work (their heap, their imports);
    the live engine it stands for runs in a process of its own.
    """
    import importlib
    import inspect

    function = getattr(importlib.import_module(module_name), "anchor_figures", None)
    if function is None:
        return {"figures": None}
    if quick and "quick" in inspect.signature(function).parameters:
        return {"figures": function(quick=True)}
    return {"figures": function()}


def main(argv: list[str]) -> None:
    logger.remove()
    if not argv:
        raise SystemExit("usage: python -m bench.anchors_child JOB [ARGS]")
    job, args = argv[0], argv[1:]
    if job == "hbt_worker":
        _hbt_worker()
        return
    jobs = {
        "mmkit_replay": _mmkit_replay,
        "mmkit_replay_silent": lambda: _mmkit_replay(silent=True),
        "nautilus_replay": _nautilus_replay,
        "mmkit_first_read": _mmkit_first_read,
        "hbt_prepare": lambda: _hbt_prepare(*args),
        "hbt_convert": lambda: _hbt_convert(*args),
        "book": lambda: _book(int(args[0])),
        "anchor_figures": lambda: _anchor_figures(args[0], args[1:] == ["quick"]),
    }
    if job not in jobs:
        raise SystemExit(f"unknown job {job!r} ({', '.join(sorted([*jobs, 'hbt_worker']))})")
    emit(jobs[job]())


if __name__ == "__main__":
    main(sys.argv[1:])
