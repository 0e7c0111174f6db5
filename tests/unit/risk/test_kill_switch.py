"""KillSwitch: every trigger fires; manual and auto resume policies."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mmkit.model import NS_PER_S, FairValue
from mmkit.risk.kill_switch import KillSwitch, KillSwitchConfig, KillSwitchEvent

D = Decimal
S = NS_PER_S


def fresh(now: int, confidence: float = 0.9) -> FairValue:
    return FairValue(price=D(100000), confidence=confidence, ts=now, sources=3)


def config(**kwargs: object) -> KillSwitchConfig:
    base: dict[str, object] = {
        "max_drawdown": D(500),
        "max_loss": D(1000),
        "stale_after_ns": 2 * S,
        "min_confidence": 0.3,
        "max_rejects": 3,
        "reject_window_ns": 10 * S,
        "resume": "manual",
        "cooldown_ns": 5 * S,
    }
    base.update(kwargs)
    return KillSwitchConfig(**base)  # type: ignore[arg-type]


def test_healthy_state_does_not_halt() -> None:
    ks = KillSwitch(config())
    assert ks.evaluate(0, fresh(0), D(0)) is False
    assert not ks.halted and ks.reason == ""


def test_drawdown_from_peak_trips() -> None:
    ks = KillSwitch(config())
    assert not ks.evaluate(1, fresh(1), D(800))  # peak 800
    assert not ks.evaluate(2, fresh(2), D("300.01"))  # drawdown 499.99
    assert ks.evaluate(3, fresh(3), D(300))  # drawdown 500: at the limit trips
    assert "drawdown" in ks.reason


def test_max_loss_trips() -> None:
    ks = KillSwitch(config(max_drawdown=None))
    assert not ks.evaluate(1, fresh(1), D(-999))
    assert ks.evaluate(2, fresh(2), D(-1000))
    assert "loss" in ks.reason


def armed(ks: KillSwitch) -> KillSwitch:
    """A switch that has seen one trusted price (price triggers arm only then)."""
    assert not ks.evaluate(0, fresh(0), D(0))
    return ks


def test_stale_reference_trips() -> None:
    ks = KillSwitch(config())
    assert not ks.evaluate(2 * S, fresh(0), D(0))  # exactly 2 s old: still fresh
    assert ks.evaluate(2 * S + 1, fresh(0), D(0))
    assert "stale" in ks.reason


def test_missing_reference_price_trips_once_a_price_was_seen() -> None:
    ks = KillSwitch(config())
    assert not ks.evaluate(1, fresh(1), D(0))
    assert ks.evaluate(2, FairValue(price=None, confidence=0.0, ts=2), D(0))
    assert "no reference price" in ks.reason


def test_no_price_yet_at_start_up_does_not_trip() -> None:
    """Before the first trusted price there is nothing to protect: controllers do not quote without one.

    Tripping here (with manual resume) would halt every engine forever at start-up.
    """
    ks = KillSwitch(config())
    for t in range(1, 5):
        assert not ks.evaluate(t * S, FairValue(price=None, confidence=0.0, ts=0), D(0))
    assert not ks.halted
    assert not ks.evaluate(5 * S, fresh(5 * S), D(0))
    assert ks.evaluate(6 * S, FairValue(price=None, confidence=0.0, ts=5 * S), D(0))


def test_low_confidence_trips() -> None:
    ks = KillSwitch(config())
    assert not ks.evaluate(1, fresh(1, confidence=0.3), D(0))
    assert ks.evaluate(2, fresh(2, confidence=0.29), D(0))
    assert "confidence" in ks.reason


def test_rejects_per_window_trip_and_age_out() -> None:
    ks = KillSwitch(config(resume="auto", cooldown_ns=1 * S))
    for t in (1, 2, 3):
        ks.on_reject(t * S)
    assert not ks.evaluate(3 * S, fresh(3 * S), D(0))  # 3 rejects: at the limit, not beyond
    ks.on_reject(4 * S)
    assert ks.evaluate(4 * S, fresh(4 * S), D(0))
    assert "rejects" in ks.reason
    # At 12 s the rejects at 1 s and 2 s are out of the 10 s window: condition clears, cool-down starts.
    assert ks.evaluate(12 * S, fresh(12 * S), D(0))
    assert not ks.evaluate(13 * S, fresh(13 * S), D(0))


def test_reject_without_time_uses_the_last_evaluation() -> None:
    ks = KillSwitch(config(max_rejects=1))
    ks.evaluate(100 * S, fresh(100 * S), D(0))
    ks.on_reject()
    ks.on_reject()
    assert ks.evaluate(100 * S, fresh(100 * S), D(0))


def test_inventory_emergency_trips() -> None:
    ks = KillSwitch(config())
    assert ks.evaluate(1, fresh(1), D(0), inventory_emergency=True)
    assert "inventory" in ks.reason


def test_manual_mode_stays_halted_until_reset_by_hand() -> None:
    trips: list[KillSwitchEvent] = []
    resumes: list[KillSwitchEvent] = []
    ks = armed(KillSwitch(config(resume="manual")))
    ks.add_trip_listener(trips.append)
    ks.add_resume_listener(resumes.append)
    assert ks.evaluate(1 * S, fresh(1 * S, confidence=0.1), D(0))
    # The condition clears and a long time passes: still halted.
    for t in (2, 10, 100):
        assert ks.evaluate(t * S, fresh(t * S), D(0))
    assert len(trips) == 1 and trips[0].halted and trips[0].ts_ns == 1 * S
    assert resumes == []
    ks.reset_by_hand(101 * S)
    assert not ks.halted
    assert [(e.halted, e.reason) for e in resumes] == [(False, "reset by hand")]
    assert not ks.evaluate(102 * S, fresh(102 * S), D(0))


def test_manual_reset_rebases_drawdown_but_not_max_loss() -> None:
    ks = KillSwitch(config())
    ks.evaluate(1, fresh(1), D(400))
    assert ks.evaluate(2, fresh(2), D(-200))  # drawdown 600
    ks.reset_by_hand(3, pnl_total=D(-200))
    assert not ks.evaluate(4, fresh(4), D(-250))  # drawdown from the new peak -200 is 50
    assert ks.evaluate(5, fresh(5), D(-1000))  # the absolute loss limit still holds


def test_reset_while_condition_persists_trips_again() -> None:
    ks = armed(KillSwitch(config()))
    assert ks.evaluate(1, fresh(1, confidence=0.0), D(0))
    ks.reset_by_hand(2)
    assert ks.evaluate(3, fresh(3, confidence=0.0), D(0))
    assert ks.halted


def test_auto_mode_resumes_only_after_clear_and_cooldown() -> None:
    resumes: list[KillSwitchEvent] = []
    ks = armed(KillSwitch(config(resume="auto", cooldown_ns=5 * S)))
    ks.add_resume_listener(resumes.append)
    assert ks.evaluate(0, fresh(0, confidence=0.1), D(0))
    # Condition still active after the cool-down length: no resume.
    assert ks.evaluate(10 * S, fresh(10 * S, confidence=0.1), D(0))
    # Clears at 11 s; cool-down runs from then.
    assert ks.evaluate(11 * S, fresh(11 * S), D(0))
    assert ks.evaluate(15 * S, fresh(15 * S), D(0))
    # Relapses at 15.5 s: the clock restarts.
    assert ks.evaluate(15 * S + S // 2, fresh(15 * S, confidence=0.1), D(0))
    assert ks.evaluate(16 * S, fresh(16 * S), D(0))
    assert ks.evaluate(20 * S, fresh(20 * S), D(0))
    assert resumes == []
    assert not ks.evaluate(21 * S, fresh(21 * S), D(0))
    assert not ks.halted
    assert len(resumes) == 1 and resumes[0].ts_ns == 21 * S


def test_listener_errors_do_not_block_the_switch() -> None:
    def boom(_: KillSwitchEvent) -> None:
        raise RuntimeError("bug")

    ks = armed(KillSwitch(config()))
    ks.add_trip_listener(boom)
    assert ks.evaluate(1, fresh(1, confidence=0.0), D(0))
    assert ks.halted


def test_external_trip() -> None:
    ks = KillSwitch(config())
    ks.trip(5, "operator pressed stop")
    assert ks.halted and ks.reason == "operator pressed stop"
    assert ks.evaluate(6, fresh(6), D(0))


@pytest.mark.parametrize(
    "kwargs",
    [{"resume": "sometimes"}, {"max_loss": D(-1)}, {"min_confidence": 1.5}, {"cooldown_ns": 0}, {"max_rejects": 0}],
)
def test_invalid_config_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        config(**kwargs)


def test_config_loads_from_yaml_data_with_located_errors() -> None:
    from mmkit.conf import ConfigError, structure

    cfg = structure(
        {"resume": "auto", "max_loss": "500", "max_drawdown": None, "min_confidence": "0.4"}, KillSwitchConfig
    )
    assert (cfg.resume, cfg.max_loss, cfg.max_drawdown, cfg.min_confidence) == ("auto", D(500), None, 0.4)
    with pytest.raises(ConfigError, match="resume"):
        structure({"resume": "sometimes"}, KillSwitchConfig, file="risk.yml")
    with pytest.raises(ConfigError, match="max_loss must be positive"):
        structure({"max_loss": "-5"}, KillSwitchConfig, file="risk.yml")
