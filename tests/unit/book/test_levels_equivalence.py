"""The compiled book core (mmkit._speedups._levels.CLevels) against the pure one (mmkit.book.levels.PyLevels).

Both are driven with the same random stream (snapshots, diffs with new prices in and out of the heap
window, deletions of the best and of missing levels, clears, a drifting price that moves the windows)
and must agree on everything a caller can read after every single event. The OrderBook built on either
(``MMKIT_PURE_PYTHON``) must give the same Decimal answers.
"""

from __future__ import annotations

import random
from decimal import Decimal
from decimal import Decimal as D
from typing import Any

import pytest

from mmkit._speedups import ENV_PURE, levels_class
from mmkit.book.book import OrderBook
from mmkit.book.levels import PyLevels
from mmkit.model import Side
from tests.unit.book.cores import compiled_levels


def state(core: Any) -> tuple[object, ...]:
    bids, asks = core.levels(Side.BUY), core.levels(Side.SELL)
    probe = [p for p, _ in bids[:3] + asks[:3]] + [1, 10**6]
    return (
        bids, asks, core.count(Side.BUY), core.count(Side.SELL), core.best_bid(), core.best_ask(), core.bounds,
        core.is_crossed(), core.levels(Side.BUY, 5), core.levels(Side.SELL, 5),
        [core.size_at(Side.BUY, p) for p in probe], [core.size_at(Side.SELL, p) for p in probe],
    )


def random_levels(rng: random.Random, mid: int, sign: int, count: int) -> list[tuple[int, int]]:
    distances, sizes = (1, 2, 3, 8, 40, 300, 2500), (0, 0, 1, 7, 10**9)
    return [(mid + sign * rng.choice(distances), rng.choice(sizes)) for _ in range(count)]


@pytest.mark.parametrize("window", [5, 50, 1000])
@pytest.mark.parametrize("seed", range(4))
def test_compiled_and_pure_cores_agree_after_every_event(seed: int, window: int) -> None:
    rng = random.Random(seed)
    pure, compiled = PyLevels(window), compiled_levels()(window)
    mid = 5_000_000
    compared = 0
    windows = set()
    for step in range(3000):
        mid += rng.choice((-4, -1, 0, 1, 4)) + (9 if step % 800 < 400 else -9) * (step % 5 == 0)
        roll = rng.random()
        if roll < 0.02:
            bids, asks = random_levels(rng, mid, -1, 60), random_levels(rng, mid, 1, 60)
            for core in (pure, compiled):
                core.set_levels(bids, asks)
        elif roll < 0.025:
            for core in (pure, compiled):
                core.clear()
        else:
            bids = random_levels(rng, mid, -1, rng.randrange(0, 12))
            asks = random_levels(rng, mid, 1, rng.randrange(0, 12))
            if pure.bids and rng.random() < 0.2:
                bids.append((max(pure.bids), 0))  # the best goes
            if rng.random() < 0.1:
                asks.append((mid + 10**7, 0))  # a missing level deleted: no-op
            bids += [(p, 0) for p in pure.bids if p >= mid]
            asks += [(p, 0) for p in pure.asks if p <= mid]
            # the same stream in the forms callers hand in: tuples of tuples, lists, a generator
            form = step % 3
            for core in (pure, compiled):
                if form == 0:
                    core.apply(tuple(bids), tuple(asks))
                elif form == 1:
                    core.apply([list(level) for level in bids], asks)
                else:
                    core.apply(iter(bids), (level for level in asks))
        # read the best prices only sometimes: the heaps then carry stale roots across many updates
        if step % 3 == 0 or roll < 0.03:
            assert state(pure) == state(compiled), f"step {step}"
            compared += 1
            windows.add(pure.bounds)
        else:
            assert (pure.count(Side.BUY), pure.count(Side.SELL)) == (compiled.count(Side.BUY),
                                                                    compiled.count(Side.SELL)), f"step {step}"
    assert compared > 900
    assert state(pure) == state(compiled)
    assert len(windows) > 20, "the heap windows never moved: a stale window would go unnoticed"


def test_the_compiled_core_refuses_a_price_beyond_64_bits() -> None:
    """The one documented difference: the pure core stores such a price, the compiled one raises."""
    with pytest.raises(OverflowError):
        compiled_levels()().apply([(2**70, 1)], [])


def test_order_books_on_either_core_answer_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    books = []
    for pure in ("1", "0"):
        monkeypatch.setenv(ENV_PURE, pure)
        books.append(OrderBook(Decimal("0.01"), Decimal("0.001"), "v", "S"))
    assert type(books[0]._levels) is PyLevels and type(books[1]._levels) is compiled_levels()
    rng = random.Random(9)
    for step in range(500):
        bids = [(Decimal(100_000 - rng.randrange(1, 400)) / 100, Decimal(rng.randrange(0, 5)) / 1000)
                for _ in range(6)]
        asks = [(Decimal(100_000 + rng.randrange(1, 400)) / 100, Decimal(rng.randrange(0, 5)) / 1000)
                for _ in range(6)]
        answers = []
        for book in books:
            ib, ia = book._levels_to_int(bids), book._levels_to_int(asks)
            book.apply_levels_int(ib, ia, seq=step)
            answers.append((book.best_bid(), book.best_ask(), book.mid(), book.spread(), book.depth(Side.BUY, 5),
                            book.depth(Side.SELL, 5), book.bid_count, book.ask_count, book.is_crossed(),
                            book.vwap(Side.SELL, Decimal("0.004")) if book.ask_count else None, book.seq))
        assert answers[0] == answers[1], f"step {step}"


def test_the_env_switch_is_read_when_a_book_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_PURE, "1")
    assert levels_class() is PyLevels
    monkeypatch.setenv(ENV_PURE, "0")
    assert levels_class() is compiled_levels()
    monkeypatch.delenv(ENV_PURE)
    assert levels_class() is compiled_levels()


@pytest.mark.parametrize("seed", range(3))
def test_compiled_and_pure_diff_scans_agree(seed: int) -> None:
    from mmkit._speedups import _compiled
    from mmkit.book import levels as pure_module

    compiled_module = _compiled("_levels")
    assert compiled_module is not None
    rng = random.Random(seed)
    listed = 0
    for _ in range(3000):
        levels = [(rng.randrange(100, 110), rng.choice((0, 1, 5))) for _ in range(rng.randrange(0, 6))]
        price, current = rng.randrange(100, 110), rng.choice((0, 3))
        forms = (tuple(levels), levels, iter(list(levels)))
        answers = {pure_module.size_before_last_change(levels, price, current)}
        answers |= {compiled_module.size_before_last_change(form, price, current) for form in forms}
        assert len(answers) == 1, (levels, price, current, answers)
        listed += answers.pop() is not None
        table = {p: D(p) for p in rng.sample(range(95, 115), rng.randrange(0, 8))}
        twin = dict(table)
        pure_module.drop_listed(table, levels)
        compiled_module.drop_listed(twin, iter(levels) if rng.random() < 0.5 else tuple(levels))
        assert table == twin and list(table) == list(twin)
        assert not set(table) & {p for p, _ in levels}
    assert 500 < listed < 2500


def test_size_before_last_change_takes_the_last_listing() -> None:
    from mmkit.book.levels import size_before_last_change

    assert size_before_last_change([(5, 1), (6, 2)], 7, 9) is None
    assert size_before_last_change([(5, 1), (6, 2)], 5, 9) == 9
    assert size_before_last_change([(5, 1), (6, 2), (5, 4)], 5, 9) == 1


def test_heavy_churn_grows_shrinks_and_reuses_the_compiled_tables() -> None:
    """Thousands of levels added then deleted in waves (tables grow, fill with deleted slots, are rebuilt)."""
    rng = random.Random(11)
    pure, compiled = PyLevels(), compiled_levels()()
    for wave in range(6):
        prices = rng.sample(range(1, 50_000), 4000)
        for chunk in range(0, len(prices), 100):
            levels = [(p, rng.randrange(1, 9)) for p in prices[chunk:chunk + 100]]
            for core in (pure, compiled):
                core.apply(levels, [(p + 60_000, q) for p, q in levels])
        rng.shuffle(prices)
        for chunk in range(0, len(prices) - 50 * wave, 100):
            levels = [(p, 0) for p in prices[chunk:chunk + 100]]
            for core in (pure, compiled):
                core.apply(levels, [(p + 60_000, 0) for p, _ in levels])
        assert state(pure) == state(compiled), f"wave {wave}"
    assert pure.count(Side.BUY) > 100


@pytest.mark.parametrize("window", [5, 1000])
@pytest.mark.parametrize("seed", range(3))
def test_compiled_and_pure_apply_watched_agree_after_every_diff(seed: int, window: int) -> None:
    """apply_watched (the replay venue's one call per diff): same befores, same best prices, same book after."""
    rng = random.Random(seed)
    pure, compiled = PyLevels(window), compiled_levels()(window)
    mid = 5_000_000
    seen_listed = seen_unlisted = 0
    for step in range(2000):
        mid += rng.choice((-3, -1, 0, 1, 3))
        if step % 400 == 0:
            bids, asks = random_levels(rng, mid, -1, 40), random_levels(rng, mid, 1, 40)
            for core in (pure, compiled):
                core.set_levels(bids, asks)
            continue
        # Diffs listing a watched price zero, one or several times, sometimes deleting it.
        bids = random_levels(rng, mid, -1, rng.randrange(0, 8)) + [(mid - 2, rng.choice((0, 4)))] * rng.randrange(0, 3)
        asks = random_levels(rng, mid, 1, rng.randrange(0, 8)) + [(mid + 3, rng.choice((0, 6)))] * rng.randrange(0, 3)
        rng.shuffle(bids)
        rng.shuffle(asks)
        watched = [(True, mid - 2), (False, mid + 3), (True, mid - rng.choice((1, 8)))][: rng.randrange(0, 4)]
        answer = pure.apply_watched(tuple(bids), tuple(asks), watched)
        assert compiled.apply_watched(tuple(bids), list(asks), tuple(watched)) == answer, step
        assert state(pure) == state(compiled), step
        seen_listed += sum(before is not None for before in answer[0])
        seen_unlisted += sum(before is None for before in answer[0])
    assert seen_listed > 300 and seen_unlisted > 300


def test_apply_watched_reports_the_size_before_the_last_listing() -> None:
    for core in (PyLevels(), compiled_levels()()):
        core.set_levels([(100, 3), (99, 5)], [(101, 2)])
        watched = [(True, 100), (True, 99), (False, 101)]
        befores, bid, ask = core.apply_watched([(100, 7), (98, 1), (100, 0)], [], watched)
        assert (befores, bid, ask) == ([7, None, None], 99, 101)
        assert core.size_at(Side.BUY, 100) == 0
