"""Hedge client order ids: unique across instances sharing a hedge account, and never cut short.

Why these tests: the hedger's ids were ``H`` + the start time in ms + a counter, cut to 18
characters. Two instances hedging on one account that started in the same millisecond sent the same
ids (the venue refuses the second as a duplicate, or worse, a cancel meant for one instance's hedge
reaches the other's), and a longer configured prefix made the cut drop counter digits, so the 37th
hedge of a run reused the first one's id.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from mmkit.connector import rules_for
from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import MAX_CLIENT_ID_LEN
from mmkit.risk.hedge import HedgeConfig, HedgeExecutor
from mmkit.risk.inventory import InventoryConfig, InventoryManager
from mmkit.testing.fake_connector import FakeConnector

D = Decimal


def hedger(instance: str, prefix: str = "H", start_ns: int = 1_765_000_000_000_000_000) -> HedgeExecutor:
    instrument = Instrument("kraken", "BTC/USD", "BTC", "USD", (IncrementBand(D(0), D("0.1"), D("0.00000001")),))
    fake = FakeConnector(rules_for([instrument], "kraken"), validate=False)
    executor = HedgeExecutor(fake, InventoryManager(InventoryConfig()), touch=lambda side: D(100_000),
                             config=HedgeConfig(client_id_prefix=prefix), instance=instance)
    executor.start(None, start_ns)  # type: ignore[arg-type]
    return executor


def test_two_instances_started_in_the_same_millisecond_send_different_ids() -> None:
    btc, eth = hedger("truex-btc"), hedger("truex-eth")
    btc_ids = {btc.next_client_id() for _ in range(1_000)}
    eth_ids = {eth.next_client_id() for _ in range(1_000)}
    assert len(btc_ids) == len(eth_ids) == 1_000
    assert not btc_ids & eth_ids


def test_ids_are_never_cut_so_a_long_run_never_repeats_one() -> None:
    executor = hedger("truex-btc", prefix="HDG")  # the longest prefix allowed
    ids = [executor.next_client_id() for _ in range(50_000)]
    assert len(set(ids)) == len(ids)
    assert max(len(i) for i in ids) <= MAX_CLIENT_ID_LEN
    assert all(i.startswith("HDG") for i in ids)


def test_a_restart_of_the_same_instance_a_millisecond_later_sends_new_ids() -> None:
    first = hedger("truex-btc", start_ns=1_765_000_000_000_000_000)
    second = hedger("truex-btc", start_ns=1_765_000_000_001_000_000)
    assert not {first.next_client_id() for _ in range(100)} & {second.next_client_id() for _ in range(100)}


@pytest.mark.parametrize("prefix", ["HEDGE", "", "H-1", "Hé"])
def test_a_prefix_that_leaves_no_room_or_is_not_plain_ascii_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="client_id_prefix"):
        HedgeConfig(client_id_prefix=prefix)
