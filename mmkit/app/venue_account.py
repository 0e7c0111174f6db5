"""Which venue account a ledger belongs to: a non-secret fingerprint, recorded once, checked at every start.

Why: the store and the journal are an account's ledger, but nothing in them
said *which* account. A store copied from another account (a desk cloning a
set-up, a backup restored onto the wrong host) was reconciled against a venue
that no longer knew its orders: recovery closed them as not found and the
engine traded on the other account's position. Now each venue's account is
fingerprinted from the config (never a secret: identifiers the venue's logs
show anyway, and a sha256 prefix of an API key), recorded in the store
(``venue_accounts``, schema v4) and in the journal's session lines at the
first start, and compared at every start and by ``mmkit reconcile``: another
fingerprint refuses (exit 3), naming both and the venue. A store written
before v4 has none: it gets this start's, and is not refused.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from mmkit.app.engine import EngineStartError
from mmkit.store.accounts import stored_accounts

#: The hex digits of sha256(API key) kept: enough to tell keys apart, too few to matter if leaked.
KEY_DIGITS = 12


def key_fingerprint(api_key: str) -> str:
    return "api-key-sha256:" + hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:KEY_DIGITS]


def account_identities(settings: Mapping[str, Any], env: Mapping[str, str] | None = None) -> list[str]:
    """Each identity a venue section's settings log on as (never a secret); empty for a venue simulated here.

    TrueX: the order-entry session's SenderCompID/TargetCompID and the PartyID; any venue: the API key
    (``api_key``, or the variable ``api_key_env`` names), as a sha256 prefix. One list read by the ledger's
    fingerprint (:func:`account_fingerprint`) and the market claim (mmkit.app.market_claim), so the two
    cannot come to disagree on what "the account" is.
    """
    out: list[str] = []
    oe = settings.get("oe")
    if isinstance(oe, Mapping) and oe.get("sender_comp_id"):
        out.append(f"SenderCompID={oe['sender_comp_id']}/TargetCompID={oe.get('target_comp_id', '')}")
    if settings.get("party_id"):
        out.append(f"PartyID={settings['party_id']}")
    key = settings.get("api_key")
    if not key and settings.get("api_key_env"):
        key = (os.environ if env is None else env).get(str(settings["api_key_env"]))
    if isinstance(key, str) and key:
        out.append(key_fingerprint(key))
    return out


def account_fingerprint(settings: Mapping[str, Any], env: Mapping[str, str] | None = None) -> str | None:
    """The account a venue section's settings log on as (its identities, space-joined), or None (none)."""
    return " ".join(account_identities(settings, env)) or None


def account_refusal(
    current: Mapping[str, str], recorded: Mapping[str, str], where: str
) -> str | None:
    """Why ``current`` cannot use a ledger recorded under ``recorded`` (``where``: the store or journal), or None."""
    for venue, fingerprint in sorted(current.items()):
        other = recorded.get(venue)
        if other is not None and other != fingerprint:
            return (
                f"venue {venue}: {where} belongs to account [{other}], but this engine's account is "
                f"[{fingerprint}]: a store or journal copied from another account, or a config pointing at "
                f"another account; refusing (its orders and position are not this account's). Give each "
                f"account its own engine.instance and store"
            )
    return None


def changed_accounts(
    current: Mapping[str, str], recorded: Mapping[str, str]
) -> dict[str, tuple[str, str]]:
    """Venue -> (recorded, current) for each venue whose recorded fingerprint is not the current one."""
    return {v: (recorded[v], fp) for v, fp in sorted(current.items()) if v in recorded and recorded[v] != fp}


def store_account_refusal(store: Any, instance: str, current: Mapping[str, str], label: str) -> str | None:
    """:func:`account_refusal` against what the store recorded for ``instance`` (``label``: the store's URL)."""
    if not current:
        return None
    try:
        recorded = stored_accounts(store, instance)
    except SQLAlchemyError as exc:
        raise EngineStartError(f"cannot read the venue accounts of the store {label}: {exc}") from exc
    return account_refusal(current, recorded, f"the store {label}")


#: Appended to an account refusal by `mmkit reconcile`: the way out when it is the same account.
ACCEPT_HINT = ("if this is the same account under a new API key (or new comp ids), run `mmkit reconcile CONFIG "
               "--accept-account --reason TEXT` to re-assign the ledger to it")
