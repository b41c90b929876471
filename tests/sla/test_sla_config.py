"""The SLA alert keys as an operator writes them in the config, and what they become."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from listener.config import ConfigError, parse_config
from sla.planner import DeadlinePlanner
from sla.policy import MentionFacts
from tests.conftest import BASE_CONFIG, IST

AGENTS = [{"id": "ayse", "channels": ["twitter"], "teams": ["social"]},
          {"id": "zeynep", "channels": ["web"], "teams": ["lead-team"]}]


def config_with(policy: dict[str, Any] | None = None, **sections: Any):
    sla = {"policies": [{"name": "vip", **(policy or {})}], **sections.pop("sla", {})}
    return parse_config({**BASE_CONFIG, "agents": AGENTS, "sla": sla, **sections})


def problems(**kwargs: Any) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as error:
        config_with(**kwargs)
    return error.value.problems


def test_alert_keys_reach_the_policy():
    config = config_with({"first_response": "2h", "at_risk": ["1h", "75%"],
                          "escalate_after": "30m", "escalate_to": ["lead-team", "ayse"],
                          "next_response": "1h"})
    [policy] = DeadlinePlanner.from_config(config).policies
    assert policy.at_risk == (timedelta(hours=1), 0.75)
    assert policy.escalate_after == timedelta(minutes=30)
    assert policy.escalate_to == ("lead-team", "ayse")
    assert policy.next_response == timedelta(hours=1)
    assert config.sla.next_response_window == timedelta(hours=24)


def test_a_single_at_risk_value_is_still_one_warning():
    [policy] = DeadlinePlanner.from_config(config_with({"at_risk": "25%"})).policies
    assert policy.at_risk == (0.25,)
    [policy] = DeadlinePlanner.from_config(config_with()).policies
    assert policy.at_risk == () and policy.escalate_after is None and policy.escalate_to == ()


@pytest.mark.parametrize(
    ("policy", "sla", "expected"),
    [
        ({"at_risk": ["1h", "soon"]}, {}, ("sla.policies[0].at_risk[1]", "soon")),
        ({"escalate_after": "1h", "escalate_to": ["nobody"]}, {},
         ("sla.policies[0].escalate_to", "'nobody' is neither an agent id nor a team")),
        ({"escalate_to": ["lead-team"]}, {}, ("sla.policies[0].escalate_to", "escalate_after")),
        ({"escalate_after": "0s"}, {}, ("sla.policies[0].escalate_after", "longer than 0s")),
        ({"next_response": "tomorrow"}, {}, ("sla.policies[0].next_response", "tomorrow")),
        ({}, {"next_response_window": "0m"}, ("sla.next_response_window", "longer than 0s")),
    ],
)
def test_alert_keys_are_checked_with_their_key_path(policy, sla, expected):
    key, detail = expected
    found = problems(policy=policy, sla=sla)
    assert [path for path, _ in found] == [key]
    assert detail in found[0][1]


def test_a_date_both_open_and_closed_is_a_config_error():
    calendar = {**BASE_CONFIG["calendar"], "open": ["2026-11-29", "2026-12-31"]}
    assert problems(calendar=calendar) == [
        ("calendar.open", "2026-12-31 is also in calendar.closed; a date is either open or closed")]


def test_an_open_sunday_takes_the_weekend_clock():
    calendar = {**BASE_CONFIG["calendar"], "open": ["2026-11-29"]}
    config = config_with({"first_response": "same_day", "cutoff": "16:00"}, calendar=calendar)
    assert config.calendar.open == [date(2026, 11, 29)]
    planner = DeadlinePlanner.from_config(config)
    saturday_evening = datetime(2026, 11, 28, 15, tzinfo=IST)  # after Saturday's 14:00 close
    deadline = planner.plan(MentionFacts("twitter", "x"), saturday_evening)
    assert deadline.deadline_at == datetime(2026, 11, 29, 18, tzinfo=IST)
    assert "next business day: Sunday 2026-11-29 (extra open date)" in deadline.steps
