"""Client ids: short, unique within a process and across restarts."""

from __future__ import annotations

import pytest

from mmkit.model import MAX_CLIENT_ID_LEN
from mmkit.orders.ids import ClientIdGenerator, Sequencer, base36


def test_base36() -> None:
    assert base36(0) == "0"
    assert base36(35) == "z"
    assert base36(36) == "10"
    assert int(base36(1_723_161_253_000_000_000), 36) == 1_723_161_253_000_000_000


def test_real_clock_ids_fit_and_are_unique() -> None:
    a, b = ClientIdGenerator("strat1"), ClientIdGenerator("strat1")
    ids = [g.next_id() for _ in range(5000) for g in (a, b)]
    assert len(set(ids)) == len(ids)
    assert max(len(i) for i in ids) <= MAX_CLIENT_ID_LEN


def test_two_generators_created_in_the_same_instant_never_collide() -> None:
    frozen = 1_723_161_253_123_456_789
    shared = Sequencer(lambda: frozen)  # the clock does not move at all
    a, b = ClientIdGenerator("mm", shared), ClientIdGenerator("mm", shared)
    ids = [g() for _ in range(1000) for g in (a, b)]
    assert len(set(ids)) == 2000


def test_unique_across_restart() -> None:
    now = [1_723_161_253_000_000_000]
    before = ClientIdGenerator("mm", Sequencer(lambda: now[0]))
    first_run = {before.next_id() for _ in range(10_000)}  # burst far faster than the clock
    now[0] += 50_000_000  # the restart takes at least a few ms
    after = ClientIdGenerator("mm", Sequencer(lambda: now[0]))
    second_run = {after.next_id() for _ in range(10_000)}
    assert len(first_run) == len(second_run) == 10_000
    assert not first_run & second_run


def test_ids_increase_even_if_wall_clock_steps_back() -> None:
    now = [2_000]
    seq = Sequencer(lambda: now[0])
    first = seq.next()
    now[0] = 1_000
    assert seq.next() == first + 1


@pytest.mark.parametrize("prefix", ["toolong7", "a-b", "é"])
def test_bad_prefix(prefix: str) -> None:
    with pytest.raises(ValueError):
        ClientIdGenerator(prefix)


def test_instances_sharing_two_letters_get_prefixes_that_tell_them_apart() -> None:
    """Red team: ``truex-btc`` and ``truex-eth`` both sent ids starting ``tr``; on one account (or a venue's
    blotter) nobody could say whose an order was."""
    from mmkit.orders.ids import MAX_PREFIX_LEN, instance_prefix

    btc, eth = instance_prefix("truex-btc"), instance_prefix("truex-eth")
    assert btc[:2] == eth[:2] == "tr" and btc != eth
    assert instance_prefix("truex-btc") == btc  # stable: the same in every process and release
    names = [f"desk-{i}" for i in range(500)]
    assert len({instance_prefix(n) for n in names}) == len(names)
    for name in ("truex-btc", "x", "--", "Ünïcode-9"):
        prefix = instance_prefix(name)
        assert len(prefix) == MAX_PREFIX_LEN and prefix.isascii() and prefix.isalnum() and prefix == prefix.lower()
        assert len(ClientIdGenerator(prefix=prefix)()) <= MAX_CLIENT_ID_LEN  # the full id still fits
