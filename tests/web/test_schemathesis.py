"""Schemathesis, run from /api/v1/openapi.json with every check and every phase against
the real app, finds nothing: no 5xx, no answer the document does not describe, no
schema-valid request refused, no invalid one accepted, every 405 naming the allowed
methods. On SQLite and PostgreSQL, seeded and deterministic.

The `st` command runs in a subprocess and imports this module as its hooks
(SCHEMATHESIS_HOOKS): webhook bodies are signed with the source's secret, as a real
sender would, and cursors are generated the way the API makes them, since an opaque
cursor cannot be described in JSON Schema beyond "one this API returned".
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import strategies as st

from connectors.meta import META_SIGNATURE_HEADER
from connectors.webhook import SIGNATURE_HEADER, sign
from listener.app import init_app
from listener.reports import RangeError, parse_range
from listener.store.customers import encode_timeline_cursor
from listener.store.queries import encode_cursor
from tests.conftest import IST, MONDAY_10, make_config

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-token"
SECRETS = {"site-form": "s3cret-hook", "insta": "meta-app-s3cret"}
HEADERS = {"site-form": SIGNATURE_HEADER, "insta": META_SIGNATURE_HEADER}
SEED = 12
MAX_EXAMPLES = 12
ST_TIMEOUT = 240
SHARE_OF_VOICE = "/api/v1/reports/share-of-voice"
REFUSED_BY_MEANING = {"assignMention": 422, "addCustomerIdentity": 422, "mergeCustomers": 422,
                      "splitCustomer": 422, "addCustomerContact": 422, "pushMentions": 422,
                      "undoCustomerLink": 422, "shareOfVoice": 400}

schemathesis.openapi.format("cursor", st.integers(1, 2**31 - 1).map(encode_cursor))
schemathesis.openapi.format("timeline-cursor", st.builds(
    encode_timeline_cursor, st.datetimes(timezones=st.just(MONDAY_10.tzinfo)),
    st.sampled_from(("mention", "note", "call")), st.integers(1, 2**31 - 1)))


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Sign a webhook body the way its source expects, over the exact bytes sent."""
    secret = SECRETS.get(str(case.path_parameters.get("source_id")))
    if case.method != "POST" or secret is None or case.body is None:
        return
    if not isinstance(case.body, (dict, list)):
        return
    body = json.dumps(case.body).encode()
    kwargs["data"] = body
    case.headers[HEADERS[case.path_parameters["source_id"]]] = sign(secret, body)


@schemathesis.hook
def filter_query(context: Any, query: dict[str, Any] | None) -> bool:
    """Share of voice: a range of real dates that is backwards or over 366 days is a 400
    the document states in words; JSON Schema cannot compare two parameters."""
    if context.operation is None or context.operation.path != SHARE_OF_VOICE or not query:
        return True
    if not all(_is_date(query.get(name, "")) for name in ("from", "to")):
        return True
    try:
        parse_range(query.get("from") or None, query.get("to") or None, MONDAY_10, IST)
    except RangeError:
        return False
    return True


def _is_date(text: Any) -> bool:
    try:
        return text == "" or (isinstance(text, str) and bool(date.fromisoformat(text)))
    except (TypeError, ValueError):
        return False


def write_settings(directory: Path) -> None:
    """Refusals of schema-valid requests that JSON Schema cannot rule out, each declared
    in the document: a 422 that depends on what is stored or configured (an agent id
    that is not configured, a phone number that is not one, merging a customer into
    itself, a webhook body of the other source kind, undoing a record that is itself an
    undo) and share of voice's 400 for a
    range over 366 days. A 413 for a body over 8 MiB is a refusal like any other."""
    lines = ["[checks.negative_data_rejection]",
             'expected-statuses = ["400", "401", "403", "404", "405", "409", "413", '
             '"415", "422", "429"]', ""]
    for operation_id, status in REFUSED_BY_MEANING.items():
        lines += ["[[operations]]", f'include-operation-id = "{operation_id}"',
                  "checks.positive_data_acceptance.expected-statuses = "
                  f'["2xx", "401", "403", "404", "409", "429", "{status}"]', ""]
    (directory / "schemathesis.toml").write_text("\n".join(lines))


@pytest.fixture
def config(db_url: str) -> Any:
    return make_config(db_url, sources=[
        {"id": "site-form", "kind": "webhook", "secret": SECRETS["site-form"]},
        {"id": "insta", "kind": "instagram", "account_id": "17841400000000000",
         "access_token": "meta-token", "app_secret": SECRETS["insta"],
         "verify_token": "hub-token", "base_url": "http://127.0.0.1:9"},
    ])


async def test_schemathesis_finds_nothing(aiohttp_server: Any, services: Any,
                                          tmp_path: Path) -> None:
    server = await aiohttp_server(init_app(services, background=False))
    write_settings(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SCHEMATHESIS_HOOKS": __name__,
           "NO_COLOR": "1"}
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "st"), "run",
        str(server.make_url("/api/v1/openapi.json")),
        "--checks", "all", "--seed", str(SEED), "--generation-deterministic",
        "--max-examples", str(MAX_EXAMPLES), "--workers", "1", "--no-color",
        "--header", f"Authorization: Bearer {TOKEN}", "--request-timeout", "20",
        "--suppress-health-check", "all",
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), ST_TIMEOUT)
    report = output.decode(errors="replace")
    assert process.returncode == 0, report
