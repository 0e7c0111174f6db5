"""One instance per venue account and symbol: a machine-wide lock file, and an advisory lock on a shared store.

Why: the instance locks (mmkit.store.instance_lock, the journal lock) stop
two engines of *one instance*. Two instances (``truex-btc``, ``truex-eth``)
configured on one venue account and one symbol passed them: at start each
adopted the other's open orders (start-up reconciliation lists every open
order of the symbol, whatever its client id), cancelled them as strays and at
stop, and booked the other's fills as its own. Nothing refused it.

So ``mmkit start`` claims each (venue, account, symbol) it quotes before the
venue connects and holds the claim until the process ends:

* **On the machine**: a ``lockf`` lock (mmkit.store.pid_lock) on
  ``<lock dir>/<venue>-<symbol>-<hash>.lock``, the hash a sha256 of (venue,
  account, symbol). The kernel drops it when the holder dies: a SIGKILLed
  engine never blocks its restart, and a file left behind blocks nobody. The
  holder writes its pid, instance and host into the file for the refusal.
  The directory (:func:`market_lock_dir`) must be the same for every
  instance on the machine whatever its home, output directory, working
  directory or login session, so it depends on nothing of those:
  ``$MMKIT_LOCK_DIR`` if set (set it to one value for every instance, or
  not at all), else ``/run/lock/mmkit-<uid>`` where ``/run/lock`` is a
  world-writable sticky directory (it is not cleaned by age and not
  private per service as ``/tmp`` is under systemd's ``PrivateTmp=``), else
  ``/tmp/mmkit-<uid>/``. Per user: instances of two OS users are not checked
  against each other on one machine (run a desk's engines as one user).
* **Across hosts**, when the store is PostgreSQL: a session-level advisory
  lock keyed by the same hash (mmkit.store.advisory_lock, the instance
  lock's machinery). Two hosts without a shared PostgreSQL store cannot be
  checked: nothing both can see exists.

An account is known by what the config says it logs on as (each of the FIX
SenderCompID, the PartyID, the API key's sha256 prefix: mmkit.app.market_claim);
each is claimed on its own, so two configs that share any one of them meet.

**Every symbol of the account**, where what the venue does to orders is
per account rather than per symbol: Kraken's and Gemini's dead man's switches
cover every order of the API key (connectors/ccxt/profiles.py
``dead_mans_switch_scope``), so two instances on one key share one timer
whatever their symbols. Such an engine claims (venue, account,
:data:`ALL_SYMBOLS`) instead, with the reason (``MarketKey.shared``): one
claim mechanism, a wider key; a second instance on the key, any symbol, meets
it and is refused with that reason.

**The exchange, not the file name.** A key's venue is the venue's configured
name (the rules file's ``venue:``); a copy of ``conf/venues/kraken.yml``
renamed ``kraken_fast`` is another name for the same exchange, so two
instances on one API key under the two names held two different claims and
both quoted one account. So an engine whose connector says which exchange and
which of its markets it really trades (mmkit.app.market_claim) also claims
:attr:`MarketKey.exchange` keys: (exchange id, account, the exchange's own
symbol, or ALL_SYMBOLS), hashed apart from the name keys. The name keys stay,
so an engine of an older version (name keys only) still meets a new one on
the same name. An exchange key's holder writes its configured venue name into
its note (``(..., venue NAME)``), so a refusal names both names.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import stat
from collections.abc import Sequence
from pathlib import Path

import attrs
from loguru import logger
from sqlalchemy.engine import make_url

from mmkit.store.advisory_lock import AdvisoryLock, LockInUse, advisory_key
from mmkit.store.db import redact_url
from mmkit.store.pid_lock import LockHeld, still_named, take_pid_lock
from mmkit.store.private import private_dir

#: Environment variable that moves the machine-wide lock directory (the same value for every instance!).
ENV_LOCK_DIR = "MMKIT_LOCK_DIR"
#: The system's directory for lock files (FHS); used when every user may create in it (mode 1777).
SYSTEM_LOCK_DIR = Path("/run/lock")
FALLBACK_LOCK_DIR = Path("/tmp")
#: How long a start waits for a dying holder's store session before refusing (as the instance lock).
DEFAULT_WAIT_S = 3.0
DEFAULT_CHECK_INTERVAL_S = 2.0
#: The symbol of a claim on every symbol of an account (the venue's dead man's switch is per account).
ALL_SYMBOLS = "*"


class MarketInUse(Exception):
    """Another process (another instance) quotes this venue account and symbol."""


@attrs.frozen
class MarketKey:
    """One (venue, account identity, symbol) an engine quotes; ``account`` is never a secret."""

    venue: str
    account: str
    #: The symbol quoted, or :data:`ALL_SYMBOLS` for the whole account.
    symbol: str
    #: Why the claim covers the whole account (``symbol`` is ALL_SYMBOLS), for the refusal; not part of the key.
    shared: str = attrs.field(default="", eq=False)
    #: ``venue`` is the exchange's id (``kraken`` whatever the rules file is called) and ``symbol`` the
    #: exchange's own, not a configured name: a key of its own kind, never equal to a name key.
    exchange: bool = False
    #: On an exchange key: the configured venue name of the engine claiming it (for the refusal and the
    #: holder's note); not part of the key.
    named: str = attrs.field(default="", eq=False)

    @property
    def whole_account(self) -> bool:
        return self.symbol == ALL_SYMBOLS

    def describe(self) -> str:
        where = (f"exchange {self.venue} (as venue {self.named})" if self.exchange and self.named
                 else f"exchange {self.venue}" if self.exchange else f"venue {self.venue}")
        if self.whole_account:
            return f"{where}, account [{self.account}] (every symbol)"
        return f"{where}, account [{self.account}], symbol {self.symbol}"

    def _kind(self) -> str:
        return "mmkit-exchange" if self.exchange else "mmkit-market"

    def digest(self) -> str:
        raw = "\0".join((self._kind(), self.venue, self.account, self.symbol)).encode("utf-8")
        return hashlib.sha256(raw).hexdigest()

    def advisory_key(self) -> int:
        return advisory_key(self._kind(), self.venue, self.account, self.symbol)

    def file_name(self) -> str:
        """Readable where it can be (venue and symbol), unique by the hash (the account stays out of it)."""
        symbol = "every-symbol" if self.whole_account else self.symbol
        venue = f"exchange-{self.venue}" if self.exchange else self.venue
        readable = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{venue}-{symbol}")[:60]
        return f"{readable}-{self.digest()[:24]}.lock"


#: The holder's configured venue name at the end of an exchange key's note (the lock file's, or the store
#: connection's ``application_name``, then `` from <address>``, when it was not cut at 63 bytes: hence the
#: closing parenthesis).
_HOLDER_VENUE = re.compile(r"[(,] ?venue ([^\s()]+)\)(?: from \S+)?$")


def holder_venue(holder: str) -> str | None:
    """The configured venue name a holder of an exchange key wrote into its note, or None (unknown)."""
    found = _HOLDER_VENUE.search(holder.strip())
    return found.group(1) if found else None


def _venue_note(key: MarketKey) -> str:
    """``venue NAME`` on an exchange key that knows its configured name, else "" (see :func:`holder_venue`)."""
    return f"venue {key.named}" if key.exchange and key.named else ""


def market_lock_dir() -> Path:
    """The machine-wide directory of market lock files (see the module docstring for why this one)."""
    env = os.environ.get(ENV_LOCK_DIR)
    if env:
        return Path(env).expanduser().resolve()
    uid = os.getuid()
    if _shared_sticky(SYSTEM_LOCK_DIR):
        return SYSTEM_LOCK_DIR / f"mmkit-{uid}"
    return FALLBACK_LOCK_DIR / f"mmkit-{uid}" / "markets"


def _shared_sticky(path: Path) -> bool:
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISDIR(mode) and mode & 0o1777 == 0o1777 and os.access(path, os.W_OK | os.X_OK)


def _check_owned(directory: Path) -> None:
    """A lock directory someone else owns could have our lock files deleted under us: refuse it."""
    for path in (directory, directory.parent):
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        if (path == directory or path.name.startswith("mmkit-")) and info.st_uid != os.getuid():
            raise OSError(f"market lock directory {path} belongs to uid {info.st_uid}, not to this user "
                          f"(uid {os.getuid()}): another user could remove the locks in it; remove it or "
                          f"set ${ENV_LOCK_DIR}")
        if path == directory and info.st_mode & 0o022:
            raise OSError(f"market lock directory {path} is writable by other users (mode "
                          f"{stat.S_IMODE(info.st_mode):o}): they could delete or plant lock files in it; "
                          f"chmod go-w it or set ${ENV_LOCK_DIR}")


class MarketLock:
    """Held from :meth:`acquire` until :meth:`release`: a lock file per key, and an advisory lock per key on a
    PostgreSQL store (``store_url``; None or another backend: the file locks only)."""

    def __init__(
        self, keys: Sequence[MarketKey], instance: str, *, store_url: str | None = None,
        directory: Path | None = None, wait_s: float = DEFAULT_WAIT_S,
        check_interval_s: float = DEFAULT_CHECK_INTERVAL_S,
    ) -> None:
        self.keys = list(dict.fromkeys(keys))
        self.instance = instance
        self.store_url = store_url if store_url and make_url(store_url).get_backend_name() == "postgresql" else None
        self.directory = directory
        self.wait_s = wait_s
        self.check_interval_s = check_interval_s
        self._files: dict[MarketKey, tuple[Path, int]] = {}
        self._advisory: dict[MarketKey, AdvisoryLock] = {}
        #: Why the claim is no longer this process's alone (set by :meth:`check`), else None.
        self.problem: str | None = None

    @property
    def held(self) -> bool:
        return bool(self._files or self._advisory)

    def _note(self, key: MarketKey) -> str:
        """What the holder of ``key``'s lock file says of itself: the instance, the host, and on an exchange key
        the configured venue name (:func:`holder_venue` reads it back for the refusal)."""
        venue = _venue_note(key)
        return f"instance {self.instance} on {socket.gethostname()}" + (f" ({venue})" if venue else "")

    def acquire(self) -> None:
        """Take every key; MarketInUse (naming venue, account, symbol and the holder) if another process holds one.

        Nothing stays held after a refusal.
        """
        if self.held or not self.keys:
            return
        directory = private_dir(self.directory or market_lock_dir())
        _check_owned(directory)  # after creating it: one another user made first is not ours
        try:
            for key in self.keys:
                self._take_file(key, directory / key.file_name())
            if self.store_url is not None:
                for key in self.keys:
                    self._take_advisory(key)
        except BaseException:
            self.release()
            raise
        logger.bind(instance=self.instance).info(
            "market claimed for instance {}: {}{}", self.instance, "; ".join(k.describe() for k in self.keys),
            "" if self.store_url is None else f" (on this machine and on store {redact_url(self.store_url)})",
        )

    def _refusal(self, key: MarketKey, holder: str, where: str) -> str:
        if key.exchange:
            return self._exchange_refusal(key, holder, where)
        if key.whole_account:
            return (
                f"{key.describe()} is quoted by another mmkit process: {holder} holds it ({where}); "
                f"{key.shared or 'the account is claimed whole'}; so one instance per API key on this venue, "
                f"whatever the symbols: stop the other instance, or give this one ({self.instance!r}) its own "
                f"API key"
            )
        return (
            f"{key.describe()} is quoted by another mmkit process: {holder} holds it ({where}); two instances on "
            f"one account and symbol would adopt and cancel each other's orders and book each other's fills; "
            f"stop the other instance, or give this one ({self.instance!r}) another account or symbol"
        )

    def _exchange_refusal(self, key: MarketKey, holder: str, where: str) -> str:
        """Refused on the exchange (the name keys did not meet): name both configured venue names, and why."""
        theirs, ours = holder_venue(holder), key.named or "(unnamed)"
        account = f"exchange {key.venue}, account [{key.account}]"
        if theirs is None:
            names = (f"its venue name is not known here, but it trades {account} too: the same exchange account, "
                     f"whatever its venue is called")
        elif theirs != ours:
            names = (f"this instance's venue {ours} and the holder's venue {theirs} are two names for one exchange "
                     f"account ({account}: a venue rules file copied under another name is still the same exchange)")
        else:
            names = f"both quote venue {ours}, that is {account}"
        if key.whole_account:
            why = (f"{key.shared or 'the account is claimed whole'}; so one instance per API key on this exchange, "
                   f"whatever the symbols and venue names: stop the other instance, or give this one "
                   f"({self.instance!r}) its own API key")
        else:
            why = (f"two instances on one exchange account and symbol would adopt and cancel each other's orders and "
                   f"book each other's fills, whatever their venues are called; stop the other instance, or give this "
                   f"one ({self.instance!r}) another account or symbol")
        return f"{key.describe()} is quoted by another mmkit process: {holder} holds it ({where}); {names}; {why}"

    def _take_file(self, key: MarketKey, path: Path) -> None:
        try:
            fd = take_pid_lock(path, self._note(key))
        except LockHeld as held:
            who = f"pid {held.holder}" + (f", {held.note}" if held.note else "")
            raise MarketInUse(self._refusal(key, who, f"lock file {path}")) from None
        self._files[key] = (path, fd)

    def _take_advisory(self, key: MarketKey) -> None:
        assert self.store_url is not None
        url = redact_url(self.store_url)
        lock = AdvisoryLock(self.store_url, key.advisory_key(), name="market",
                            note=", ".join(filter(None, (self.instance, _venue_note(key)))),
                            check_interval_s=self.check_interval_s,
                            refusal=lambda holder: self._refusal(key, holder, f"advisory lock on store {url}"))
        try:
            lock.acquire(self.wait_s)
        except LockInUse as exc:
            raise MarketInUse(str(exc)) from None
        self._advisory[key] = lock

    def check(self) -> str | None:
        """Is every key still this process's? A lock file deleted under us is taken again on the new file; a
        dropped store lock is taken again by its watchdog. Returns (and keeps) why not, else None."""
        if self.problem is not None:
            return self.problem
        for key, (path, fd) in list(self._files.items()):
            if still_named(path, fd):
                continue
            logger.warning("market lock file {} was deleted or replaced while held; taking it again", path)
            try:
                new_fd = take_pid_lock(path, self._note(key))
            except LockHeld as held:
                self.problem = ("market lock lost: " + self._refusal(key, f"pid {held.holder}, {held.note}",
                                                                     f"lock file {path}, deleted under us"))
                break
            except OSError as exc:
                self.problem = f"market lock lost: {path} was deleted and cannot be taken again: {exc}"
                break
            os.close(fd)
            self._files[key] = (path, new_fd)
        else:
            for lock in self._advisory.values():
                if lock.problem is not None:
                    self.problem = lock.problem
                    break
        if self.problem is not None:
            logger.error("{}", self.problem)
        return self.problem

    def release(self) -> None:
        for _path, fd in self._files.values():
            os.close(fd)  # releases the record lock; the file stays (it blocks nobody)
        self._files.clear()
        for lock in self._advisory.values():
            lock.release()
        self._advisory.clear()
