"""Explanation steps are written when first read, and read the same as before.

Deadlines are computed without their words (ingest never shows them); `sla explain`, the
mention page and the API read them later. What they read must be exactly what the
deadline's own computation says, also when the planner shared the minute's moments.
"""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

from sla.planner import DeadlinePlanner
from sla.policy import Deadline, MentionFacts, Policy, PolicyMatch, compute_deadline
from tests.sla.test_calendar import IST, istanbul

FACTS = MentionFacts("twitter", "x")
# Seconds in the duration put some deadlines of one minute into the next minute.
ODD_SECONDS = Policy("odd", PolicyMatch(), timedelta(hours=2, seconds=45),
                     at_risk=(0.5, timedelta(minutes=30)), escalate_after=timedelta(hours=1))


def test_a_shared_minute_explains_each_mention_by_its_own_posting_time():
    planner = DeadlinePlanner([ODD_SECONDS], istanbul())
    posted = [datetime(2026, 11, 23, 10, 3, second, tzinfo=IST) for second in (0, 10, 30)]
    planned = [planner.plan(FACTS, moment) for moment in posted]
    assert planned == [compute_deadline(ODD_SECONDS, istanbul(), moment) for moment in posted]
    assert "due → 2026-11-23 12:03 +03:00" in planned[1].steps
    assert "due → 2026-11-23 12:04 +03:00" in planned[2].steps
    assert planned[2].deadline_at - planned[1].deadline_at == timedelta(seconds=20)


def test_steps_read_as_the_tuple_they_stand_for():
    posted = datetime(2026, 11, 23, 7, 3, tzinfo=UTC)
    deadline = compute_deadline(ODD_SECONDS, istanbul(), posted)
    written = tuple(deadline.steps)
    assert written[:2] == ("policy odd", "posted 2026-11-23 10:03 Europe/Istanbul (Monday)")
    assert deadline.steps[:2] == written[:2] and deadline.steps[-1] == written[-1]
    assert repr(deadline.steps) == repr(written)
    as_written = Deadline(deadline.policy, deadline.deadline_at, deadline.at_risk_at, written,
                          deadline.warnings, deadline.escalate_at)
    assert as_written == deadline and deadline == as_written
    assert hash(as_written) == hash(deadline)
    assert pickle.loads(pickle.dumps(deadline)) == deadline
    assert tuple(compute_deadline(ODD_SECONDS, istanbul(), posted).steps) == written
