"""A store (or journal) copied from another venue ACCOUNT must be refused, not reconciled.

Before: nothing in the store or the journal said which account they belonged
to. Started on account B with account A's store, recovery asked B's venue
about A's open orders, B did not know them (closed as not found, CANCELED),
and the engine traded on A's position as B's. Now each venue's account
fingerprint (never a secret) is recorded at the first start and checked at
every start and by ``mmkit reconcile``; an old store without one gets it.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path

import pytest

from mmkit.app.config import StoreSection
from mmkit.app.engine import EngineStartError
from mmkit.app.outcome import EXIT_START_REFUSED
from mmkit.app.persistence import attach_persistence
from mmkit.app.persistence_iterator import Persistence
from mmkit.app.reconcile import run_reconcile
from mmkit.app.venue_account import account_fingerprint
from mmkit.connector import load_venue_rules
from mmkit.model import ZERO, Side
from mmkit.store import schema
from mmkit.store.accounts import stored_accounts
from mmkit.store.db import create_store_engine
from mmkit.testing.fake_connector import FakeConnector
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController

REPO = Path(__file__).resolve().parents[2]
A = {"sim": "api-key-sha256:aaaaaaaaaaaa"}
B = {"sim": "api-key-sha256:bbbbbbbbbbbb"}


def harness(venue: FakeConnector) -> Harness:
    controller = SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.01")))
    return Harness(controller, rules=venue.rules, venue=venue)


def store_of(out: Path) -> StoreSection:
    return StoreSection(url=f"sqlite:///{out / 'store' / 'desk.sqlite'}")


async def run_a(out: Path, accounts: dict[str, str] | None) -> FakeConnector:
    """Account A trades: 0.004 bought, quotes left resting (the copy is taken while it runs)."""
    venue = FakeConnector(load_venue_rules("sim"))
    h = harness(venue)
    p = attach_persistence(h.engine, store_of(out), "mm1", out, accounts=accounts)
    await h.engine.start()
    h.set_fair("60000")
    h.tick(2)
    venue.fill(next(o for o in venue.open_orders if o.side is Side.BUY).client_id, "0.004")
    h.tick()
    assert p.close() == 0  # the process ends without a stop: its quotes stay open in the ledger
    return venue


async def start(out: Path, venue: FakeConnector, accounts: dict[str, str] | None) -> tuple[Harness, Persistence]:
    h = harness(venue)
    p = attach_persistence(h.engine, store_of(out), "mm1", out, accounts=accounts)
    await h.engine.start()
    return h, p


async def test_a_store_copied_from_another_account_is_refused_naming_both(tmp_path: Path) -> None:
    venue_a = await run_a(tmp_path / "a", A)
    (tmp_path / "b" / "store").mkdir(parents=True)  # the desk clones A's store for B (a journal of its own)
    shutil.copy(tmp_path / "a" / "store" / "desk.sqlite", tmp_path / "b" / "store" / "desk.sqlite")

    venue_b = FakeConnector(load_venue_rules("sim"))  # B's account: it knows none of A's orders
    b = harness(venue_b)
    pb = attach_persistence(b.engine, store_of(tmp_path / "b"), "mm1", tmp_path / "b", accounts=B)
    refusal = (r"venue sim: the store sqlite:///.*/b/store/desk\.sqlite belongs to account "
               r"\[api-key-sha256:aaaaaaaaaaaa\], but this engine's account is \[api-key-sha256:bbbbbbbbbbbb\]")
    with pytest.raises(EngineStartError, match=refusal):
        await b.engine.start()
    assert b.position == ZERO and not venue_b.actions  # before: started on A's 0.004, A's orders CANCELED
    assert pb.close() == 0

    out = io.StringIO()  # reconcile says the same and asks the venue nothing
    url = store_of(tmp_path / "b").url
    assert url is not None
    code = await run_reconcile(harness(venue_b).engine, url, str(tmp_path / "b" / "store" / "desk.journal"),
                               str(tmp_path / "b" / "audit.jsonl"), "mm1", accept_venue=True, reason="x", out=out,
                               accounts=B)
    assert code == EXIT_START_REFUSED and "belongs to account [api-key-sha256:aaaaaaaaaaaa]" in out.getvalue()
    assert not venue_b.actions

    (tmp_path / "b" / "store" / "desk.sqlite").unlink()  # only the journal copied, a new store: the journal says
    shutil.copy(tmp_path / "a" / "store" / "desk.journal", tmp_path / "b" / "store" / "desk.journal")
    c = harness(venue_b)
    pc = attach_persistence(c.engine, store_of(tmp_path / "b"), "mm1", tmp_path / "b", accounts=B)
    with pytest.raises(EngineStartError, match=r"venue sim: the journal .*desk\.journal belongs to account "
                                               r"\[api-key-sha256:aaaaaaaaaaaa\]"):
        await c.engine.start()
    assert pc.close() == 0

    a2, pa2 = await start(tmp_path / "a", venue_a, A)  # A's own restart on its own store goes on
    assert a2.position == D("0.004")
    a2.stop()
    assert pa2.close() == 0


async def test_a_store_from_before_accounts_were_recorded_gets_them_and_is_not_refused(tmp_path: Path) -> None:
    url = store_of(tmp_path).url
    assert url is not None
    engine = create_store_engine(url)
    schema.migrate(engine, schema.MIGRATIONS[:3])  # a v3 store: no venue_accounts table
    venue = await run_a(tmp_path, None)  # and a run that recorded no account (before this code)
    engine.dispose()
    journal = tmp_path / "store" / "desk.journal"
    assert "accounts" not in journal.read_text()

    h, p = await start(tmp_path, venue, A)  # migrated to v4, recorded, not refused
    assert h.position == D("0.004")
    h.stop()
    assert p.close() == 0
    engine = create_store_engine(url)
    assert stored_accounts(engine, "mm1") == A
    engine.dispose()
    assert "aaaaaaaaaaaa" in journal.read_text()  # the checkpoint names it too

    other = harness(FakeConnector(load_venue_rules("sim")))
    po = attach_persistence(other.engine, store_of(tmp_path), "mm1", tmp_path, accounts=B)
    with pytest.raises(EngineStartError, match=r"belongs to account \[api-key-sha256:aaaaaaaaaaaa\]"):
        await other.engine.start()
    assert po.close() == 0


def test_the_fingerprint_names_the_account_and_never_a_secret() -> None:
    truex = {"oe": {"sender_comp_id": "MMKIT_OE", "target_comp_id": "TRUEX_UAT_OE"}, "party_id": "DESK1",
             "api_key": "key-one", "secret_key": "very-secret-value"}
    fp = account_fingerprint(truex)
    assert fp is not None
    assert fp.startswith("SenderCompID=MMKIT_OE/TargetCompID=TRUEX_UAT_OE PartyID=DESK1 api-key-sha256:")
    assert "key-one" not in fp and "very-secret" not in fp
    assert account_fingerprint({**truex, "api_key": "key-two"}) != fp  # another key: another account
    ccxt = {"profile": "kraken", "api_key": "kraken-key", "secret_key": "s3cret", "password": "pw"}
    kraken = account_fingerprint(ccxt)
    assert kraken is not None and kraken.startswith("api-key-sha256:") and len(kraken) == len("api-key-sha256:") + 12
    assert account_fingerprint({"api_key_env": "MY_KEY"}, env={"MY_KEY": "kraken-key"}) == kraken
    assert account_fingerprint({}) is None  # a venue simulated in the process: no account


def test_mmkit_start_records_the_truex_account_from_its_config(tmp_path: Path) -> None:
    """The shipped TrueX config through build + persist_built: the OE comp ids, PartyID and key prefix."""
    script = (
        "from mmkit.app.build import build\n"
        "from mmkit.app.config import ConfigOverrides, load_engine_config\n"
        "from mmkit.app.persistence import persist_built\n"
        "from mmkit.clock import Clock, ClockMode\n"
        "import sys\n"
        "loaded = load_engine_config('strategies/truex_btc_pyusd.yml', ConfigOverrides(output_dir=sys.argv[1]))\n"
        "p = persist_built(build(loaded, Clock(ClockMode.REALTIME, tick_ns=100_000_000)))\n"
        "print(p.accounts['truex']); print(p.journal.accounts == p.accounts)\n"
        "p.close()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "TRUEX_API_KEY": "uat-key", "TRUEX_SECRET_KEY": "uat-secret",
           "KRAKEN_API_KEY": "kk", "KRAKEN_SECRET_KEY": "ks"}
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = done.stdout.strip().splitlines()[-2:]
    assert first.startswith("SenderCompID=MMKIT_OE/TargetCompID=TRUEX_UAT_OE PartyID=MMKIT_CLIENT api-key-sha256:")
    assert "uat-key" not in done.stdout and "uat-secret" not in done.stdout
    assert second == "True"


async def test_a_rotated_api_key_is_refused_until_reconcile_accepts_the_account(tmp_path: Path) -> None:
    """The same account under a new API key fingerprints differently: refused like another account, and
    `mmkit reconcile --accept-account --reason` re-assigns the ledger (audited), no hand edit."""
    venue = await run_a(tmp_path, A)
    rotated = {"sim": "api-key-sha256:cccccccccccc"}
    h = harness(venue)
    p = attach_persistence(h.engine, store_of(tmp_path), "mm1", tmp_path, accounts=rotated)
    with pytest.raises(EngineStartError, match=r"belongs to account \[api-key-sha256:aaaaaaaaaaaa\]"):
        await h.engine.start()
    assert p.close() == 0

    url = store_of(tmp_path).url
    assert url is not None
    journal, audit = tmp_path / "store" / "desk.journal", tmp_path / "audit.jsonl"
    out = io.StringIO()
    code = await run_reconcile(harness(venue).engine, url, str(journal), str(audit), "mm1", accept_venue=False,
                               reason="", out=out, accounts=rotated)
    assert code == EXIT_START_REFUSED and "--accept-account --reason TEXT" in out.getvalue(), out.getvalue()

    out = io.StringIO()
    code = await run_reconcile(harness(venue).engine, url, str(journal), str(audit), "mm1", accept_venue=False,
                               reason="key rotated, ticket 88", out=out, accounts=rotated, accept_account=True)
    assert code == 0, out.getvalue()
    assert ("ledger of venue sim re-assigned from account [api-key-sha256:aaaaaaaaaaaa] to "
            "[api-key-sha256:cccccccccccc] (key rotated, ticket 88)") in out.getvalue()
    assert '"reconcile_accept_account"' in audit.read_text() and "key rotated, ticket 88" in audit.read_text()

    h2, p2 = await start(tmp_path, venue, rotated)  # the ledger goes on under the new key
    assert h2.position == D("0.004")
    h2.stop()
    assert p2.close() == 0
    h3 = harness(venue)  # and the old key is the other account now
    p3 = attach_persistence(h3.engine, store_of(tmp_path), "mm1", tmp_path, accounts=A)
    with pytest.raises(EngineStartError, match=r"belongs to account \[api-key-sha256:cccccccccccc\]"):
        await h3.engine.start()
    assert p3.close() == 0
