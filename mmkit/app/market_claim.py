"""Which (venue, account, symbol) an engine quotes (and hedges on, where the hedge venue's dead man's switch is
per API key), the claim ``mmkit start`` takes on it, and the gate that halts quoting and hedging if it is lost.

Why: see mmkit.store.market_lock. This module reads the config: the quoting
venue's name, the symbol, and the identities its settings log on as.

**The account.** A config does not name "the account"; it names what the
engine logs on as. Each of these is claimed on its own, so two configs that
share *any* of them are refused (a desk that gives one account two FIX
sessions still shares the PartyID; two sub-accounts under one API key share
the key):

* TrueX: the order-entry session (``SenderCompID=.../TargetCompID=...``) and
  the ``PartyID``;
* any venue: the API key (``api_key``, or the variable ``api_key_env``
  names), as a sha256 prefix (mmkit.app.venue_account.key_fingerprint);
* a ccxt venue: the exchange account the settings name (``account``), so
  that two API keys of one account meet;
* none of these (an out-of-process venue the config identifies no account
  for): ``unidentified``, so two such instances on one venue and symbol are
  refused rather than let through.

**Every symbol, where the venue's dead man's switch is per account.** A
connector whose venue cancels (or keeps alive) every order of the account
together, whatever the symbol, says so with ``account_wide_claim`` (the
reason, else None; ccxt: from the profile's ``dead_mans_switch_scope``, as on
Kraken and Gemini): its engine claims (venue, identity,
:data:`~mmkit.store.market_lock.ALL_SYMBOLS`), so a second instance on the
same key is refused whatever its symbol, with that reason. Per-symbol claims
cannot meet such a claim (another key), but every engine on that venue claims
the same way: the declaration is the venue's, not the config's.

**The exchange, whatever the venue is called.** The venue of a key is the
venue's configured name (the rules file's ``venue:``). A copy of
conf/venues/kraken.yml under another name (``kraken_fast``, other rate
limits) is still Kraken: two instances on one API key under the two names
claimed two different markets, both started, adopted and cancelled each
other's orders and shared Kraken's per-key dead man's switch. So a connector
that knows which exchange and market it really trades says so with
``exchange_market(symbol)`` -> (exchange id, the exchange's own symbol)
(ccxt: the profile's ccxt id and unified symbol; TrueX: ``truex`` and the
rules' venue symbol; the FIX session and PartyID are already identities),
and the engine claims each identity on it too
(:attr:`~mmkit.store.market_lock.MarketKey.exchange` keys, ALL_SYMBOLS where
the claim is account-wide). The name keys stay: an engine of an older version
claims only those, and still meets a new one on the same name. A connector
that declares no exchange (an out-of-process venue of a plug-in) is claimed
by its name only, as before.

A venue simulated inside the process (``connector: sim``, the quoting venue of
``--paper``, the hedge venue of ``--sim-hedge``) is a new, empty account every
run: nothing to claim. ``--paper`` with a live hedge venue still claims that.

**A hedge venue whose dead man's switch is per API key is claimed**, as a
quoting venue there (:func:`hedge_keys`): each identity of
``hedge.venue.settings``, every symbol, on the configured name and on the
exchange, the reason naming it this config's hedge venue. Why: the hedge
connector keeps the venue's switch armed on its key like any connector there.
The shipped Kraken maker (quoting Kraken with ``${KRAKEN_API_KEY}``) and the
shipped Coinbase maker (hedging on Kraken with the same variable) both
started: the hedger's refreshes kept a hung Kraken maker's quotes alive, and
its clean stop disarmed CancelAllOrdersAfter for the whole key. A quoting
venue's whole-account reason says the holder may be a hedger, for the maker
refused by one. Two makers hedging on one such key are refused too: they
share the timer as well.

**Other hedge venues are not claimed** (per-symbol claims: no switch, as on
Coinbase, or one per session; simulated in the process). The hedger
(mmkit.risk.hedge) sends taker orders under its own client ids (``H`` + four
digits of the instance + its start time + a counter), cancels only those it
sent, and is never reconciled against the venue's open orders at start, so it
neither adopts nor cancels another instance's orders; and several makers
hedging into one account and symbol, or a maker hedging on another maker's
account, is an ordinary desk set-up. Claiming the hedge market would refuse it
for no protection.

**A lost claim holds the hedger too** (:class:`MarketClaimGate`): the books
are no longer this run's alone, and the claim lost may be the hedge venue's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from loguru import logger

from mmkit.app import venue_account
from mmkit.app.engine import EngineStartError
from mmkit.app.outcome import ProblemKind
from mmkit.model import NS_PER_S
from mmkit.store.market_lock import ALL_SYMBOLS, MarketInUse, MarketKey, MarketLock

if TYPE_CHECKING:
    from mmkit.risk.hedge import HedgeExecutor

#: Identity of an out-of-process venue whose settings name no account.
UNIDENTIFIED = "unidentified"


def account_identities(settings: Mapping[str, Any], env: Mapping[str, str] | None = None) -> list[str]:
    """Each identity a venue section's settings log on as (never a secret), and the exchange account the
    settings name (``account``: ``account=<name>``); ``[UNIDENTIFIED]`` if none.

    Why the named account too: two API keys of one exchange account are two identities, so their claims
    never met. Not in the ledger's fingerprint (mmkit.app.venue_account): naming the account in a running
    desk's config must not make its own store refuse the next start.
    """
    out = venue_account.account_identities(settings, env)
    account = settings.get("account")
    if isinstance(account, str) and account.strip():
        out.append(f"account={account.strip()}")
    return out or [UNIDENTIFIED]


#: Added to the reason of a quoting venue's whole-account claim: its holder may be another config's hedger.
HOLDER_MAY_HEDGE = ("the holder may quote on the key or hedge on it: a hedge venue whose dead man's switch is per "
                    "API key is claimed too")


def market_keys(built: Any) -> list[MarketKey]:
    """The quoting venue's (venue name, identity, symbol) keys, then the same identities on the exchange the
    connector really trades (if it says which), then the hedge venue's (:func:`hedge_keys`); none for a venue
    simulated in this process."""
    from mmkit.sim.base_venue import SimulatedVenue

    venue = built.engine.venue
    keys: list[MarketKey] = []
    if not isinstance(venue, SimulatedVenue):
        shared = account_wide_claim(venue)
        keys += _keys(venue, account_identities(built.config.venue.settings), built.engine.symbol,
                      f"{shared}; {HOLDER_MAY_HEDGE}" if shared else None)
    return keys + hedge_keys(built)


def hedge_keys(built: Any) -> list[MarketKey]:
    """The hedge venue's keys where its connector's dead man's switch is per API key (``account_wide_claim``):
    each identity of ``hedge.venue.settings``, every symbol, on its name and its exchange, the reason naming it
    this config's hedge venue; none for a per-symbol venue, a simulated one, or no hedging (module docstring)."""
    from mmkit.sim.base_venue import SimulatedVenue

    hedge = getattr(built, "hedge", None)
    section = built.config.hedge.venue
    if hedge is None or section is None or isinstance(hedge.connector, SimulatedVenue):
        return []
    connector = hedge.connector
    shared = account_wide_claim(connector)
    if shared is None:
        return []
    reason = (f"{connector.venue} is this config's HEDGE venue (hedge.venue), and {shared}; the hedger's "
              f"connector keeps that switch armed on this key too: give the hedger its own API key "
              f"(hedge.venue.settings)")
    return _keys(connector, account_identities(section.settings), hedge.config.symbol, reason)


def _keys(connector: Any, identities: list[str], symbol: str, shared: str | None) -> list[MarketKey]:
    """(name, identity, symbol) for each identity, then the same on the exchange if the connector says which;
    every symbol, with the reason, where ``shared`` says why."""
    keys = [MarketKey(connector.venue, identity, ALL_SYMBOLS if shared else symbol, shared or "")
            for identity in identities]
    real = exchange_market(connector, symbol)
    if real is not None:
        exchange, native = real
        keys += [MarketKey(exchange, identity, ALL_SYMBOLS if shared else native, shared or "", exchange=True,
                           named=connector.venue) for identity in identities]
    return keys


def exchange_market(connector: object, symbol: str) -> tuple[str, str] | None:
    """Which exchange, and which of its markets, ``symbol`` on this connector really is (its optional
    ``exchange_market(symbol)``), whatever the venue is named in the config; None if it does not say."""
    method = getattr(connector, "exchange_market", None)
    if method is None:
        return None
    real = method(symbol)
    if not (isinstance(real, tuple) and len(real) == 2 and all(isinstance(p, str) and p.strip() for p in real)):
        raise TypeError(f"{type(connector).__name__}.exchange_market({symbol!r}) must return (exchange id, the "
                        f"exchange's symbol) as two non-empty str, not {real!r}")
    return real


def account_wide_claim(connector: object) -> str | None:
    """Why the connector's venue needs one instance per account, whatever the symbol (its optional
    ``account_wide_claim``), or None: claim per symbol."""
    reason = getattr(connector, "account_wide_claim", None)
    if reason is not None and not (isinstance(reason, str) and reason):
        raise TypeError(f"{type(connector).__name__}.account_wide_claim must be a non-empty str or None, "
                        f"not {reason!r}")
    return reason


def market_lock_for(built: Any) -> MarketLock:
    """The claim of a built engine: its keys, its instance, and its store (advisory locks if PostgreSQL).

    EngineStartError if it cannot be made (nothing is held yet).
    """
    from mmkit.app.persistence import default_store_url

    cfg = built.config
    try:
        url = default_store_url(cfg.store, cfg.engine.instance, cfg.engine.output_dir)
        return MarketLock(market_keys(built), cfg.engine.instance, store_url=url)
    except Exception as exc:  # a store URL the claim cannot read: refuse, as an unreadable store does
        raise EngineStartError(f"cannot claim the market for instance {cfg.engine.instance!r}: {exc}") from exc


def claim_market(lock: MarketLock) -> None:
    """Take the claim; EngineStartError (exit 3, before anything is sent) if another process holds it."""
    try:
        lock.acquire()
    except MarketInUse as exc:
        raise EngineStartError(str(exc)) from exc
    except Exception as exc:
        raise EngineStartError(f"cannot claim the market for instance {lock.instance!r}: {exc}") from exc


class MarketClaimGate:
    """A risk gate (StrategyRunner.gates): checks the claim every ``period_s``; once lost, halts quoting, and
    hedging (``hedge``, the HedgeExecutor), for good.

    Lost means another process may now quote (or hedge on) the same account (the store dropped our advisory
    lock and another took it, or our lock file was deleted and another took the new one): this run's
    orders and fills are no longer its own alone, so it records a LEDGER_HALT (exit 5), quotes no more and
    hedges no more (:meth:`~mmkit.risk.hedge.HedgeExecutor.hold`: a hedge sized on a position it cannot trust
    is a new risk, not a reduction; and the claim may have been the hedge venue's key). The position left is
    in the final report, for the operator.
    """

    def __init__(self, lock: MarketLock, engine: Any, period_s: float = 2.0,
                 hedge: HedgeExecutor | None = None) -> None:
        self.lock = lock
        self.engine = engine
        self.hedge = hedge
        self.period_ns = int(period_s * NS_PER_S)
        self._next = 0
        self.reason: str | None = None

    def __call__(self, ts_ns: int) -> str | None:
        if self.reason is None and ts_ns >= self._next:
            self._next = ts_ns + self.period_ns
            problem = self.lock.check()
            if problem is not None:
                self.reason = problem
                # From now on the symbol may be another instance's: cancel our orders one by one, never all.
                self.engine.orders.venue_wide_cancel = False
                logger.error("quoting halted: {}", problem)
                self.engine.outcome.record(ProblemKind.LEDGER_HALT, problem, ts_ns)
                if self.hedge is not None:
                    self.hedge.hold(problem)
                self._leave_shared_switches(problem)
        return self.reason

    def _leave_shared_switches(self, problem: str) -> None:
        """Leave every per-key dead man's switch we kept armed (quoting and hedge venue) to the key's new holder.

        Why: such a switch covers the new holder's orders too; refreshing it keeps them alive should that
        instance hang, and our clean stop's disarm would switch its protection off
        (``yield_shared_switch`` on the ccxt connector). A connector without one is left as it is.
        """
        connectors = [self.engine.venue]
        if self.hedge is not None:
            connectors.append(self.hedge.connector)
        for connector in connectors:
            leave = getattr(connector, "yield_shared_switch", None)
            if leave is not None and account_wide_claim(connector) is not None:
                leave(problem)
