"""A CRM segment raises priority at ingest, before the deadline and the agent are chosen,
so SLA policies and routing rules see it; it never lowers what the text earned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connectors.base import RawAuthor, RawItem
from listener.app import build_services, prepare_database
from listener.config import ConfigError
from listener.customers_import import import_customers
from listener.models import Mention
from listener.pipeline.enrich import at_least
from listener.pipeline.ingest import SourceInfo
from tests.conftest import BASE_CONFIG, MONDAY_10, make_config

CRM = """external_id,name,identities,segment,lifetime_value,notes
CRM-1,Ali Veli,twitter:@aliveli,vip,50000,
CRM-2,Zeynep Demir,twitter:@zeynep_d,at_risk,3100,
CRM-3,Can Öz,twitter:@canoz,high_value,9000,
"""
QUESTION = "Is your store open on Sunday?"  # neutral: the enricher says "normal"


def tweet(n: int, handle: str, text: str = QUESTION) -> RawItem:
    return RawItem(external_id=f"t{n}", text=text, created_at=MONDAY_10, channel="twitter",
                   author=RawAuthor(handle, handle), lang="en")


async def ingest_as(db_url: str, clock: Any, enricher: Any, tmp_path: Path,
                    items: list[RawItem], **overrides: Any) -> dict[str, Mention]:
    config = make_config(
        db_url,
        routing={"rules": [{"match": {"segment": "vip"}, "agents": ["john"]},
                           {"match": {"priority": "high"}, "agents": ["ayse"]}]},
        sla={"policies": [{"name": "vip-1h", "match": {"segment": "vip"},
                           "first_response": "1h"},
                          {"name": "high-2h", "match": {"priority": ["urgent", "high"]},
                           "first_response": "2h"},
                          *BASE_CONFIG["sla"]["policies"]]},
        **overrides)
    services = build_services(config, clock=clock, enricher=enricher)
    await prepare_database(services, migrate=True)
    crm = tmp_path / "crm.csv"
    crm.write_text(CRM, encoding="utf-8")
    assert not (await import_customers(services, crm, progress=False)).bad_lines
    await services.pipeline.ingest(SourceInfo("x", "twitter", "twitter"), items)
    async with services.store.read() as session:
        stored = {m.external_id: m for m in await session.scalars(select(Mention))}
    await services.store.close()
    return stored


async def test_segments_raise_priority_before_policies_and_rules(
        db_url: str, clock: Any, enricher: Any, tmp_path: Path) -> None:
    stored = await ingest_as(db_url, clock, enricher, tmp_path, [
        tweet(1, "aliveli"),
        tweet(2, "zeynep_d"),
        tweet(3, "canoz"),
        tweet(4, "stranger"),
        tweet(5, "aliveli", "This is a scam, my lawyer will sue you"),
        tweet(6, "aliveli", "Thanks, great service"),
    ])
    seen = {key: (m.priority, m.sla_policy) for key, m in stored.items()}
    assert seen == {
        "t1": ("high", "vip-1h"),  # a vip's plain question
        "t2": ("high", "high-2h"),  # at_risk: the policy matched on the raised priority
        "t3": ("normal", "social-same-day"),  # high_value has no floor by default
        "t4": ("normal", "social-same-day"),
        "t5": ("urgent", "vip-1h"),  # already above the floor: kept
        "t6": ("high", "vip-1h"),  # praise is "low" for others; not for a vip
    }
    assert {stored[k].assignee for k in ("t1", "t5", "t6")} == {"john"}  # segment rule
    assert stored["t2"].assignee == "ayse"  # the `priority: high` rule saw the raise


async def test_an_empty_mapping_turns_it_off(db_url: str, clock: Any, enricher: Any,
                                             tmp_path: Path) -> None:
    stored = await ingest_as(db_url, clock, enricher, tmp_path,
                             [tweet(1, "aliveli"), tweet(2, "zeynep_d")],
                             customers={"segment_priority": {}})
    assert [stored[k].priority for k in ("t1", "t2")] == ["normal", "normal"]


@pytest.mark.parametrize(("priority", "floor", "expected"), [
    ("low", "high", "high"), ("urgent", "high", "urgent"), ("normal", None, "normal"),
    ("high", "low", "high"),
])
def test_at_least_never_lowers(priority: str, floor: str | None, expected: str) -> None:
    assert at_least(priority, floor) == expected


def test_the_config_refuses_an_unknown_priority() -> None:
    with pytest.raises(ConfigError, match="segment_priority"):
        make_config("sqlite+aiosqlite:///x.db", customers={"segment_priority": {"vip": "top"}})
