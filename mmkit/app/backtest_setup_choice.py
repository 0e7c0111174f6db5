"""Which setup a backtest runs, and the command-line options that only make sense for one of them.

Why a module of its own: ``mmkit backtest`` and the sweep's trials choose
the setup the same way (:func:`choose_setup`: ``replay`` on the recorded
venue's own book when the config quotes the recorded venue, else ``sim``),
and the options each setup reads must be checked against that choice
before anything runs (:func:`option_of_another_setup`), as must the
numeric options before anything is read (:func:`bad_numbers`).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from mmkit.backtest.replay import ReplayEvent
from mmkit.connector import VenueRules
from mmkit.sim.latency import parse_latency_ms

if TYPE_CHECKING:
    from mmkit.app.config import LoadedConfig


@attrs.frozen
class SetupChoice:
    """Which venue a config's backtest quotes on, and why (see :func:`default_setup`)."""

    setup: str
    rules: VenueRules | None
    symbol: str | None
    by_default: bool


@attrs.frozen
class SetupOption:
    """An option that only one setup reads, as ``mmkit backtest`` and a sweep file name it."""

    option: str  # on the command line
    key: str  # the argparse attribute and the sweep file's key
    setup: str  # the setup that reads it
    what: str  # what it sets there
    default: str  # its value when not given (as text)


#: The one list of setup-only options: the backtest command, the sweep file and a sweep's trials check it.
SETUP_OPTIONS = (
    SetupOption("--queue", "queue", "replay", "the queue position of our orders in the recorded book", "conservative"),
    SetupOption("--through-fill", "through_fill", "replay",
                "what a print or the recorded book moving through our price fills", "tape"),
    SetupOption("--taker-reach-bps", "taker_reach_bps", "sim", "how far the synthetic takers trade from the mid", "0"),
)


def option_of_another_setup(args: argparse.Namespace, choice: SetupChoice) -> str | None:
    """The usage error for an option given that the run's setup does not read, or None.

    Why: each was silently ignored, so ``--queue probabilistic`` on a run that
    fell back to the simulated venue (the config's venue has no recorded book)
    printed a report the user took for the queue model they asked for.
    """
    for entry in SETUP_OPTIONS:
        option, setup, what = entry.option, entry.setup, entry.what
        given = getattr(args, entry.key, None)
        if given is None or choice.setup == setup:
            continue
        if not choice.by_default:
            why = "asked with --setup"
        elif choice.setup == "sim":
            why = "the default: the config's venue has no recorded book in this data"
        else:
            why = "the default: the config's venue is the recorded one"
        return (f"{option} {given}: sets {what}, which only --setup {setup} models; this run is setup "
                f"{choice.setup} ({why}); leave {option} out, or run --setup {setup}")
    return None


def ignored_by_setup(setup: str, *, queue: str, through_fill: str, taker_reach_bps: str | float) -> str | None:
    """What a sweep asked, away from the defaults, that ``setup`` does not model (None: nothing).

    Why: a sweep with ``setup: auto`` learns each data set's setup only at its
    trial; a ``queue: probabilistic`` on a data set that runs the simulated
    venue was ignored there without a word, and the trial ranked as if it had
    modelled it. (An explicit setup is checked when the sweep file is read.)
    """
    asked = {"queue": queue, "through_fill": through_fill, "taker_reach_bps": taker_reach_bps}
    for entry in SETUP_OPTIONS:
        value = str(asked[entry.key])
        is_default = value == entry.default or (entry.key == "taker_reach_bps" and float(value) == 0)
        if setup != entry.setup and not is_default:
            return (f"{entry.key} {value}: only setup {entry.setup} models it, and this data set runs setup {setup} "
                    f"(setup: auto chose it); set setup: {entry.setup}, or leave {entry.key} out")
    return None


def choose_setup(loaded: LoadedConfig, events: Sequence[ReplayEvent], asked: str | None) -> SetupChoice:
    """The setup asked for, else the default; setup ``sim`` quotes the config's own venue rules and symbol."""
    from mmkit.app.build import venue_rules

    venue = loaded.config.venue
    quoted_rules = venue_rules(venue, loaded.path, "venue") if venue.rules else None
    setup = asked or default_setup(quoted_rules, events)
    rules = quoted_rules if setup == "sim" else None
    symbol = venue.symbol if rules is not None else None
    return SetupChoice(setup, rules, symbol, by_default=asked is None)


def default_setup(quoted_rules: VenueRules | None, events: Sequence[ReplayEvent]) -> str:
    """``replay`` when the quoted venue is the recorded one (quote against its book), else ``sim``."""
    recorded = events[0].venue if events else None
    return "replay" if quoted_rules is not None and quoted_rules.venue == recorded else "sim"


def bad_numbers(args: argparse.Namespace) -> str | None:
    """What is wrong with a numeric option, before anything is read or run (None when all are sound).

    Why: argparse takes any float, NaN and infinity included. A negative taker
    reach would bring the synthetic takers closer to the mid than the tape
    printed, and a share of the span above 100 % (or NaN, which no comparison
    passes) would switch the data-health verdict off without a word.
    """
    pct = getattr(args, "max_invalid_pct", None)
    if pct is not None and not (math.isfinite(pct) and 0 <= pct <= 100):
        return f"--max-invalid-pct {pct:g}: a share of the span must be within 0 and 100"
    reach = getattr(args, "taker_reach_bps", None)
    if reach is not None and not (math.isfinite(reach) and reach >= 0):
        return f"--taker-reach-bps {reach:g}: how much further the takers may trade must be 0 or more"
    latency = getattr(args, "latency_ms", None)
    if latency is not None:
        try:
            parse_latency_ms(latency)
        except ValueError as exc:
            return f"--latency-ms {exc}"
    return None


__all__ = ["SETUP_OPTIONS", "SetupChoice", "SetupOption", "bad_numbers", "choose_setup", "default_setup",
           "ignored_by_setup", "option_of_another_setup"]
