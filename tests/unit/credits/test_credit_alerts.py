"""Alert rules: once per crossing, hysteresis through balance_recovered, spend cap once per period."""

from __future__ import annotations

from decimal import Decimal

from credit_factories import DEC, NOV, Tick, at, cap, grant, line, run

from udfs.credits import CreditPolicy

LOW_50 = CreditPolicy(low_balance_thresholds=["50"])


def kinds(alerts):
    return [(a.type, str(a.threshold), str(a.value)) for a in alerts]


def test_low_recovered_low_fires_twice_not_more():
    events = [
        grant("g1", 100),
        line(1, 60),  # 40 <= 50: low
        line(2, 10),  # still low: quiet
        grant("g2", 100),  # 130 > 50: recovered
        line(3, 20),  # 110: nothing
        line(4, 70),  # 40: low again
        line(5, 1),  # quiet
    ]
    result = run(events, LOW_50)
    assert kinds(result.alerts) == [
        ("balance_low", "50", "40"),
        ("balance_recovered", "50", "130"),
        ("balance_low", "50", "40"),
    ]
    assert len({a.alert_id for a in result.alerts}) == 3
    low = result.alerts[0]
    assert low.period_start == NOV[0] and low.event_time == at(2) and low.action is None and low.currency == "USD"


def test_threshold_is_inclusive_and_recovery_is_strictly_above():
    result = run([grant("g", 100), line(1, 50), grant("h", "0.01")], LOW_50)
    assert kinds(result.alerts) == [("balance_low", "50", "50"), ("balance_recovered", "50", "50.01")]


def test_a_grant_already_below_threshold_alerts_on_first_spend_only():
    result = run([grant("g", 30), line(1, 1), line(2, 1)], LOW_50)
    assert kinds(result.alerts) == [("balance_low", "50", "29")]


def test_percent_threshold_follows_granted_credit():
    policy = CreditPolicy(low_balance_percent=10)
    result = run([grant("g", 200), line(1, 179), line(2, 2)], policy)
    assert kinds(result.alerts) == [("balance_low", "20", "19")]
    assert result.alerts[0].threshold_percent == Decimal(10)


def test_several_thresholds_fire_in_the_order_they_are_crossed():
    policy = CreditPolicy(low_balance_thresholds=["10", "50"])
    result = run([grant("g", 100), line(1, 95)], policy)
    assert kinds(result.alerts) == [("balance_low", "50", "5"), ("balance_low", "10", "5")]


def test_exhausted_once_then_recovered():
    # h starts after the uncovered windows, so it has nothing to catch up and lifts the balance
    result = run([grant("g", 10), line(1, 15), line(2, 5), grant("h", 3, effective_at=at(3)), line(3, 9)])
    assert kinds(result.alerts) == [
        ("balance_exhausted", "0", "0"),
        ("balance_recovered", "0", "3"),
        ("balance_exhausted", "0", "0"),
    ]


def test_no_balance_alerts_for_a_customer_without_credit():
    assert run([line(1, 15), line(2, 5)], LOW_50).alerts == []


def test_expiry_can_cross_a_threshold():
    result = run([grant("g", 100, expires_at=at(5)), Tick(at(5))], LOW_50)
    assert kinds(result.alerts) == [("balance_low", "50", "0")]
    assert result.alerts[0].event_time == at(5)


def test_spend_cap_fires_once_per_period_with_block():
    policy = CreditPolicy(spend_cap_default="100")
    events = [line(1, 60), line(2, 40), line(3, 50), line(4, -90), line(5, 200), line(1, 100, period=DEC)]
    result = run(events, policy)
    assert kinds(result.alerts) == [("spend_cap_reached", "100", "100"), ("spend_cap_reached", "100", "100")]
    assert [a.period_start for a in result.alerts] == [NOV[0], DEC[0]]
    assert all(a.action == "block" for a in result.alerts)
    assert result.alerts[0].event_time == at(3)


def test_spend_cap_override_wins_and_fires_at_once_when_already_reached():
    policy = CreditPolicy(spend_cap_default="1000")
    result = run([line(1, 60), cap(50, at(10))], policy)
    assert kinds(result.alerts) == [("spend_cap_reached", "50", "60")]
    # the same alert id whether a line or the cap record made it fire: one alert per period
    again = run([cap(50, at(10)), line(1, 60)], policy)
    assert again.alerts[0].alert_id == result.alerts[0].alert_id


def test_spend_cap_override_for_later_periods_only():
    policy = CreditPolicy(spend_cap_default="1000")
    result = run([cap(50, DEC[0]), line(1, 60), line(1, 60, period=DEC)], policy)
    assert [a.period_start for a in result.alerts] == [DEC[0]]


def test_no_cap_no_alert():
    assert run([line(1, 10**6)]).alerts == []
