"""`listener calls import` as a call centre uses it, on SQLite and PostgreSQL: calls land
on the right customer's timeline whatever way the number is written, a promised callback
is an open item on its own SLA clock, and importing the same export again changes nothing."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from listener.calls_import import import_calls
from listener.clock import FixedClock
from listener.customers_import import import_customers
from listener.models import Customer, CustomerContact, Mention
from listener.store.customers import timeline
from tests.conftest import BASE_CONFIG, IST, make_config
from tests.test_cli import listener, write_config

EXAMPLES = Path(__file__).parents[1] / "examples"
CALLS = EXAMPLES / "calls.csv"
MONDAY_12 = datetime(2026, 11, 23, 12, 0, tzinfo=IST)
PHONE_SETUP: dict[str, Any] = {
    "agents": [*BASE_CONFIG["agents"],
               {"id": "zeynep", "name": "Zeynep", "channels": ["phone"],
                "languages": ["tr", "en"], "shift": "mon-fri 09:00-18:00"}],
    "sla": {"policies": [
        {"name": "callback-4h", "match": {"channels": ["phone"]}, "first_response": "4h",
         "at_risk": "1h"},
        *BASE_CONFIG["sla"]["policies"],
    ]},
}
BAD_LINES = (
    "C-bad-1,not a number,Ghost,2026-11-23T09:00:00+03:00,60,ayse,x,y,resolved\n"
    "C-bad-2,0532 999 88 77,Ghost,yesterday morning,60,ayse,x,y,resolved\n"
    "C-bad-3,0532 999 88 77,Ghost,2026-11-23T09:00:00+03:00,ages,ayse,x,y,resolved\n"
    ",,Ghost,2026-11-23T09:00:00+03:00,60,ayse,x,y,resolved\n"
)


@pytest.fixture
def config(db_url: str) -> Any:
    return make_config(db_url, **PHONE_SETUP)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(MONDAY_12)


async def count(services: Any, model: Any, *where: Any) -> int:
    async with services.store.read() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def phone_mentions(services: Any) -> list[Mention]:
    async with services.store.read() as session:
        return list(await session.scalars(
            select(Mention).where(Mention.channel == "phone").order_by(Mention.created_at)))


async def customer_by_crm_id(services: Any, external_id: str) -> Customer:
    async with services.store.read() as session:
        found = await session.scalar(select(Customer).where(Customer.external_id == external_id))
    assert found is not None
    return found


def test_cli_reports_bad_lines_by_number_and_a_rerun_changes_nothing(
        tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path, db_url, **PHONE_SETUP)
    data = tmp_path / "calls.csv"
    data.write_text(CALLS.read_text(encoding="utf-8") + BAD_LINES, encoding="utf-8")
    # A wide backfill: the example's callbacks are queued whatever day the test runs.
    args = ("calls", "import", "--config", str(config), "--backfill", "36500d", str(data))
    first = listener(*args)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().endswith(
        "10 calls: 6 recorded, 0 already recorded, 4 rejected; 3 callbacks queued")
    assert re.findall(r"line (\d+): skipped", first.stderr) == ["8", "9", "10", "11"]
    assert "line 8: skipped: phone: not a phone number: 'not a number'" in first.stderr
    assert "line 9: skipped: started_at is not a time: 'yesterday morning'" in first.stderr
    assert "line 10: skipped: duration is not a call length: 'ages'" in first.stderr
    assert "line 11: skipped: phone is required" in first.stderr
    assert "calls: 100%" in first.stderr  # the progress bar ran to the end

    again = listener(*args)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().endswith(
        "10 calls: 0 recorded, 6 already recorded, 4 rejected; 0 callbacks queued")


def test_cli_refuses_a_file_without_the_needed_columns(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path, db_url, **PHONE_SETUP)
    data = tmp_path / "calls.csv"
    data.write_text("number;when;notes\n0532 111 22 33;2026-11-23 09:00;hi\n", encoding="utf-8")
    result = listener("calls", "import", "--config", str(config), str(data))
    assert result.returncode == 0, result.stderr
    assert "line 1: skipped: the CSV header needs phone and started_at" in result.stderr
    missing = listener("calls", "import", "--config", str(config), str(tmp_path / "no.csv"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr
    assert "Traceback" not in missing.stderr + result.stderr
    bad_backfill = listener("calls", "import", "--config", str(config), "--backfill", "soon",
                            str(data))
    assert bad_backfill.returncode == 2 and "expected a duration" in bad_backfill.stderr


async def test_calls_join_the_crm_customer_by_phone_however_it_is_written(
        services: Any) -> None:
    await import_customers(services, EXAMPLES / "customers.csv", progress=False)
    report = await import_calls(services, CALLS, progress=False)
    assert (report.recorded, report.unchanged, report.bad_lines) == (6, 0, [])
    # "0532 111 22 33", "+90 (532) 111-2233" and the CRM's number are one customer.
    ali = await customer_by_crm_id(services, "CRM-1001")
    async with services.store.read() as session:
        items, _ = await timeline(session, ali.id)
    calls = [item for item in items if item["type"] == "call"]
    assert [item["text"][:11] for item in calls] == ["Called agai", "Kargo 3 gün"]
    assert calls[0]["at"] > calls[1]["at"]  # newest first
    assert calls[1]["call"] == {"external_id": "C-20261123-001", "phone": "+905321112233",
                                "duration_seconds": 272, "topic": "delivery"}
    assert calls[1]["status"] == "resolved" and calls[1]["actor"] == "zeynep"
    assert calls[0]["call"]["external_id"].startswith("sha256:")  # no call id: phone+time
    assert calls[0]["call"]["duration_seconds"] == 95
    # A number nobody had before is a new customer, named as the export names them.
    async with services.store.read() as session:
        murat = await session.scalar(select(Customer).where(
            Customer.display_name == "Murat Şahin"))
    assert murat is not None
    assert await count(services, Customer, Customer.external_id.is_(None)) == 2


async def test_a_promised_callback_is_an_open_item_with_the_callback_deadline(
        services: Any) -> None:
    await import_customers(services, EXAMPLES / "customers.csv", progress=False)
    report = await import_calls(services, CALLS, progress=False)
    assert report.queued == 3
    callbacks = await phone_mentions(services)
    deniz = await customer_by_crm_id(services, "CRM-1002")
    first = callbacks[0]
    assert first.customer_id == deniz.id and first.source == "calls"
    assert first.text.startswith("Fatura iki kez kesilmiş")
    assert first.status == "assigned" and first.assignee == "zeynep"
    assert first.sla_policy == "callback-4h"
    # 09:12:30 on a Monday, 4h of business time: 13:12:30 the same day.
    assert first.deadline_at == datetime(2026, 11, 23, 13, 12, 30, tzinfo=IST)
    assert first.at_risk_at == datetime(2026, 11, 23, 12, 12, 30, tzinfo=IST)
    # "geri arama" (Turkish) and "callback requested" promise one too; "resolved" does not.
    assert [m.created_at.astimezone(IST).strftime("%H:%M") for m in callbacks] == [
        "09:12", "09:47", "11:32"]
    async with services.store.read() as session:
        deniz_call = await session.scalar(select(CustomerContact).where(
            CustomerContact.external_id == "C-20261123-002"))
        items, _ = await timeline(session, deniz.id)
    assert deniz_call is not None and deniz_call.mention_id == first.id
    assert [(i["type"], i["mention_id"]) for i in items] == [("call", first.id),
                                                            ("mention", first.id)]


async def test_importing_the_same_export_again_changes_nothing(services: Any) -> None:
    await import_calls(services, CALLS, progress=False)
    before = [await count(services, model) for model in (CustomerContact, Mention, Customer)]
    again = await import_calls(services, CALLS, progress=False)
    assert (again.recorded, again.unchanged, again.queued) == (0, 6, 0)
    assert [await count(services, model) for model in (CustomerContact, Mention, Customer)] \
        == before == [6, 3, 5]


async def test_old_callbacks_are_history_not_queue(services: Any, clock: FixedClock) -> None:
    clock.advance(timedelta(days=3))
    report = await import_calls(services, CALLS, progress=False)
    assert (report.recorded, report.queued, report.stale) == (6, 0, 3)
    assert "3 older than the backfill kept as history" in report.summary()
    assert await phone_mentions(services) == []
    async with services.store.read() as session:
        calls = list(await session.scalars(select(CustomerContact)))
    assert len(calls) == 6 and all(call.mention_id is None for call in calls)
