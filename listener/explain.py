"""`listener sla explain`: recompute a mention's deadline and show every calendar step,
then the alert moments the SLA engine works through for the stored deadline."""

from __future__ import annotations

from listener.humanize import time_left
from listener.models import Customer, Mention
from listener.services import Services
from listener.store import queries as q
from sla.moments import Moment
from sla.policy import MentionFacts, select_policy, sla_state


async def explain(services: Services, mention_id: int) -> tuple[str, bool]:
    now = services.clock.now()
    try:
        async with services.store.read() as session:
            row = await q.get_mention(session, mention_id)
            customer = (
                await session.get(Customer, row[0].customer_id)
                if row and row[0].customer_id
                else None
            )
    finally:
        await services.store.close()
    if row is None:
        return f"mention {mention_id} does not exist", False
    mention, _ = row
    lines = [
        f"mention {mention.id} · {mention.channel} via {mention.source} · status {mention.status}"
    ]
    steps, matched = deadline_steps(services, mention, customer)
    lines.extend(steps)
    if matched:
        state = sla_state(mention.deadline_at, mention.at_risk_at, mention.first_response_at,
                          now)
        lines.append(f"state now: {state} "
                     f"({time_left(mention.deadline_at, now, mention.first_response_at)})")
    return "\n".join(lines), True


def deadline_steps(services: Services, mention: Mention,
                   customer: Customer | None) -> tuple[list[str], bool]:
    """The policy, every calendar step and the alert moments, as `sla explain` and the
    mention page show them; False when no policy matches (no deadline)."""
    tz = services.config.tz
    facts = MentionFacts(
        channel=mention.channel,
        source=mention.source,
        lang=mention.lang,
        segment=customer.segment if customer else None,
        priority=mention.priority,
    )
    lines: list[str] = []
    planner = services.pipeline.planner
    policy = select_policy(planner.policies, facts)
    if policy is None:
        lines.append(
            "no SLA policy matches (channel, source, language, segment, priority); no deadline"
        )
        return lines, False
    lines.append(f"policy: {policy.name} (first match of {len(planner.policies)})")
    if mention.follow_up_of is not None:
        lines.append(f"follow-up of mention {mention.follow_up_of}: a new clock from when "
                     "the customer wrote again")
        deadline = planner.plan_follow_up(facts, mention.created_at)
    else:
        deadline = planner.plan(facts, mention.created_at)
    assert deadline is not None
    lines.extend(f"  {step}" for step in deadline.steps)
    if mention.deadline_at and mention.deadline_at != deadline.deadline_at:
        lines.append(
            f"stored deadline {mention.deadline_at.astimezone(tz).isoformat()} differs: "
            "the config changed since it was computed"
        )
    if mention.deadline_at is not None:
        moments = planner.moments(mention.sla_policy, mention.created_at, mention.deadline_at)
        lines.append("alert moments (stored deadline):")
        for number, moment in enumerate(moments):
            handled = " (handled)" if number < (mention.alerts_fired or 0) else ""
            lines.append(f"  {_moment_name(moment)} {moment.at.astimezone(tz):%Y-%m-%d %H:%M}"
                         f"{handled}")
    return lines, True


def _moment_name(moment: Moment) -> str:
    if moment.kind == "at_risk":
        return f"at-risk warning {moment.index + 1}"
    return "breach" if moment.kind == "breached" else "escalation"
