"""`/api/v1/openapi.json` is the truth about the API: every route is in it, and every
status and JSON body the running app answers with is one it declares (JSON Schema 2020-12,
objects closed while checking so an undocumented field fails too). Runs on both databases.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, ClassVar

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from connectors.base import Batch, RawAuthor, RawItem, ReplyRefused, ReplyTarget, SentReply
from connectors.webhook import SIGNATURE_HEADER, AuthorIn, MentionIn, sign
from listener import db
from listener.app import init_app
from listener.web.openapi import document
from tests.conftest import MONDAY_10, make_config
from tests.web.test_alerts import ALERTS, add_alerts
from tests.web.test_api import AUTH, SECRET, mention, push
from tests.web.test_share_of_voice_api import share_of_voice_calls

OPENAPI = "/api/v1/openapi.json"
MENTIONS = "/api/v1/mentions"
MENTION = "/api/v1/mentions/{id}"
ASSIGN = "/api/v1/mentions/{id}/assign"
RESPOND = "/api/v1/mentions/{id}/respond"
IGNORE = "/api/v1/mentions/{id}/ignore"
REPLY = "/api/v1/mentions/{id}/reply"
CUSTOMER = "/api/v1/customers/{id}"
AGENT_STATUS = "/api/v1/agents/{agent_id}/status"
WEBHOOK = "/api/v1/webhooks/{source_id}"
TOO_LARGE = b"[" + b" " * (8 * 1024 * 1024) + b"]"
META_SECRET = "meta-app-s3cret"
FORMATS = FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _time_with_offset(value: object) -> bool:
    return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is not None


@pytest.fixture
def config(db_url: str) -> Any:
    """The usual webhook source, a Mastodon one that may post replies (its platform is the
    double below) so sending and each way a platform refuses can be exercised, and an X
    one whose read budget shows on /api/v1/sources. Nothing here reaches a network."""
    return make_config(db_url, sources=[
        {"id": "site-form", "kind": "webhook", "secret": SECRET},
        {"id": "masto", "kind": "mastodon", "hashtag": "acme", "base_url": "http://127.0.0.1:9",
         "access_token": "masto-token", "send_replies": True},
        {"id": "x-brand", "kind": "twitter", "query": "acme", "bearer_token": "x-token",
         "base_url": "http://127.0.0.1:9", "monthly_reads": 10000},
        {"id": "insta", "kind": "instagram", "account_id": "17841400000000000",
         "access_token": "meta-token", "app_secret": META_SECRET, "verify_token": "hub-token",
         "base_url": "http://127.0.0.1:9"},
    ])


class MastodonDouble:
    """Stands in for the Mastodon connector: one toot to poll, and replies that succeed
    or are refused as the test says."""

    kind: ClassVar[str] = "mastodon"
    polled: ClassVar[bool] = True

    def __init__(self, replaced: Any):
        self.replaced = replaced
        self.refusal: ReplyRefused | None = None
        self.toot = RawItem(
            external_id="109", text="@acme my parcel never arrived, third week now",
            created_at=MONDAY_10 - timedelta(minutes=20), channel="mastodon",
            author=RawAuthor("deniz@mastodon.social", "Deniz"),
            url="https://mastodon.social/@deniz/109", thread="109")

    async def fetch(self, cursor: str | None, now: datetime) -> Batch:
        return Batch(items=[] if cursor else [self.toot], cursor="1")

    def missing_reply_credentials(self) -> list[str]:
        return []

    async def reply(self, target: ReplyTarget, text: str) -> SentReply:
        if self.refusal is not None:
            raise self.refusal
        return SentReply("110", "https://mastodon.social/@acme/110")

    async def close(self) -> None:
        await self.replaced.close()


def schema_types(schema: dict[str, Any]) -> list[Any]:
    kinds = schema.get("type", [])
    return kinds if isinstance(kinds, list) else [kinds]


def closed(node: Any) -> Any:
    """The document with every object schema that does not say otherwise closed
    (`additionalProperties: false`): a response field missing from the document fails."""
    if isinstance(node, list):
        return [closed(value) for value in node]
    if not isinstance(node, dict):
        return node
    out = {key: closed(value) for key, value in node.items()}
    if "properties" in node and "object" in schema_types(node):
        out.setdefault("additionalProperties", False)
    return out


def as_query_value(raw: str, schema: dict[str, Any]) -> Any:
    if "integer" in schema_types(schema):
        try:
            return int(raw)
        except ValueError:
            return raw
    return raw


class Contract:
    """Calls the API and checks each answer against the document; remembers which
    (path, method, status) were seen, so the test can show each declared one happens."""

    def __init__(self, client: Any, doc: dict[str, Any]):
        self.client = client
        self.doc = doc
        self.strict = closed(doc)
        self.seen: set[tuple[str, str, str]] = set()

    def validator(self, schema: dict[str, Any], strict: bool = True) -> Draft202012Validator:
        components = (self.strict if strict else self.doc)["components"]
        return Draft202012Validator({**schema, "components": components},
                                    format_checker=FORMATS)

    def operation(self, method: str, path: str, strict: bool = False) -> dict[str, Any]:
        return (self.strict if strict else self.doc)["paths"][path][method]

    async def call(self, method: str, path: str, status: int, *, params: Any = None,
                   json_body: Any = None, data: bytes | None = None,
                   headers: dict[str, str] | None = None, body_valid: bool | None = None,
                   **path_values: Any) -> Any:
        response = await self.client.request(
            method.upper(), path.format(**path_values), params=params, json=json_body,
            data=data, headers=AUTH if headers is None else headers)
        self.check_request(method, path, status, params, json_body, body_valid)
        return await self.expect(response, method, path, status)

    async def expect(self, response: Any, method: str, path: str, status: int,
                     documented: bool = True) -> Any:
        """Checks the status and body; `documented=False` is for the catch-all `default`."""
        assert response.status == status, await response.text()
        declared = self.operation(method, path, strict=True)["responses"]
        if documented:
            assert str(status) in declared, (
                f"{method.upper()} {path} answered {status}, which the document does not "
                "declare")
            spec = declared[str(status)]
            if "$ref" in spec:  # a response shared through components/responses
                spec = self.strict["components"]["responses"][spec["$ref"].split("/")[-1]]
        else:
            assert str(status) not in declared
            spec = declared["default"]
        if "application/json" not in spec["content"]:  # the webhook handshake's plain text
            [(media, described)] = spec["content"].items()
            assert response.content_type == media
            text = await response.text()
            self.validator(described["schema"]).validate(text)
            self.seen.add((path, method, str(status)))
            return text
        body = await response.json()
        errors = list(self.validator(spec["content"]["application/json"]["schema"])
                      .iter_errors(body))
        assert not errors, f"{method.upper()} {path} {status}: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)
        for name, header in spec.get("headers", {}).items():
            if name in response.headers:
                value = as_query_value(response.headers[name], header["schema"])
                self.validator(header["schema"]).validate(value)
        if documented:
            self.seen.add((path, method, str(status)))
        return body

    def check_request(self, method: str, path: str, status: int, params: Any, body: Any,
                      body_valid: bool | None) -> None:
        """What the test sends is what the document describes: a request that succeeds
        uses only declared, valid parameters and a body matching the request schema; a
        body the test marks invalid must fail that schema."""
        operation = self.operation(method, path)
        if params and status < 300:
            declared = {p["name"]: p["schema"] for p in operation["parameters"]
                        if p["in"] == "query"}
            for name, raw in dict(params).items():
                assert name in declared, f"{name} is not a documented parameter of {path}"
                self.validator(declared[name]).validate(as_query_value(raw, declared[name]))
        if body_valid is None and status < 300 and body is not None:
            body_valid = True
        if body_valid is not None:
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            valid = self.validator(schema, strict=False).is_valid(body)
            assert valid == body_valid, f"{path} body {body!r} valid={valid} per the document"

    def declared(self) -> set[tuple[str, str, str]]:
        return {(path, method, status) for path, operations in self.doc["paths"].items()
                for method, operation in operations.items()
                for status in operation["responses"] if status != "default"}


async def signed_push(api: Contract, payload: Any, status: int, body_valid: bool,
                      source: str = "site-form") -> Any:
    response = await push(api.client, payload, source=source)
    api.check_request("post", WEBHOOK, status, None, payload, body_valid)
    return await api.expect(response, "post", WEBHOOK, status)


async def test_every_answer_is_one_the_document_declares(aiohttp_client: Any, services: Any,
                                                         clock: Any) -> None:
    client = await aiohttp_client(init_app(services, background=False))
    masto = services.coordinator.sources["masto"]
    platform = masto.connector = MastodonDouble(masto.connector)
    doc = await (await client.get(OPENAPI)).json()
    api = Contract(client, doc)
    assert doc == json.loads(json.dumps(document()))
    await api.call("get", OPENAPI, 200, headers={})

    await ingest(api, services)
    ids = {m["external_id"]: m["id"] for m in (await api.call("get", MENTIONS, 200))["items"]}
    await list_mentions(api)
    await mention_detail(api, ids)
    await assign_and_respond(api, ids)
    await reply(api, ids, platform)
    await drafts(api, ids)
    await directory(api, ids)
    await customers(api, ids)
    await ignoring(api, ids)
    await alert_log(api, services, ids)
    await share_of_voice_calls(api)
    await every_secured_operation_needs_a_token(api)
    await meta_webhooks(api)  # last: its mention would change the counts above
    wrong_method = await client.delete(MENTIONS, headers=AUTH)
    await api.expect(wrong_method, "get", MENTIONS, 405, documented=False)
    await database_down(api, services, ids)  # last: the database is gone after it

    assert api.declared() - api.seen == set(), "declared but never produced by the test"


# operationId -> (path values, query, JSON body): a request only the database can refuse.
WHILE_DOWN: dict[str, tuple[dict[str, Any], dict[str, str] | None, Any]] = {
    "listMentions": ({}, None, None),
    "getMention": ({"id": 1}, None, None),
    "assignMention": ({"id": 1}, None, {"agent": "ayse"}),
    "respondMention": ({"id": 1}, None, {"note": "called back"}),
    "ignoreMention": ({"id": 1}, None, {"reason": "spam"}),
    "replyMention": ({"id": 1}, None, {"text": "hi"}),
    "draftReply": ({"id": 1}, {"intent": "apology"}, None),
    "listAgents": ({}, None, None),
    "setAgentStatus": ({"agent_id": "john"}, None, {"status": "away"}),
    "listCustomers": ({}, None, None),
    "getCustomer": ({"id": 1}, None, None),
    "addCustomerIdentity": ({"id": 1}, None, {"kind": "email", "value": "a@example.com"}),
    "mergeCustomers": ({"id": 1}, None, {"from": 2}),
    "splitCustomer": ({"id": 1}, None, {"identity": 1}),
    "undoCustomerLink": ({"id": 1}, None, {}),
    "addCustomerNote": ({"id": 1}, None, {"text": "called"}),
    "addCustomerContact": ({"id": 1}, None, {}),
    "slaSummary": ({}, None, None),
    "shareOfVoice": ({}, None, None),
    "listSources": ({}, None, None),
    "listAlerts": ({}, None, None),
}


async def database_down(api: Contract, services: Any, ids: dict[str, int]) -> None:
    """Every operation that touches the database answers 503 with Retry-After while it
    cannot be reached (here: a database file in a directory that does not exist), so a
    client retries instead of giving up on a 500."""
    await services.store.close()
    services.store.__init__(db.create_engine("sqlite+aiosqlite:////nonexistent/listener.db"))
    for path, operations in api.doc["paths"].items():
        for method, operation in operations.items():
            if "503" not in operation["responses"]:
                continue
            if operation["operationId"] == "pushMentions":
                refused = await signed_push(api, [mention("down-1")], 503, body_valid=True)
            else:
                values, params, body = WHILE_DOWN[operation["operationId"]]
                refused = await api.call(method, path, 503, params=params, json_body=body,
                                         **values)
            assert refused["error"]["code"] == "unavailable"
    retry = await api.client.get(MENTIONS, headers=AUTH)
    assert int(retry.headers["Retry-After"]) > 0


async def ingest(api: Contract, services: Any) -> None:
    pushed = await signed_push(api, [
        mention("t-1", "My order never arrived, terrible service", handle="jane", name="Jane"),
        mention("w-1", "Faturam iki kez kesildi", channel="web", handle="form-1",
                email="deniz@example.com", name="Deniz Kaya"),
        mention("w-2", "Where is my refund?", channel="web", handle="form-2"),
    ], 202, True)
    assert pushed["stored"] == 3 and len(pushed["ids"]) == 3
    single = {**mention("w-3", channel="email", handle="a@example.com"), "id": 77,
              "lang": None, "in_reply_to": None, "extra": "ignored"}
    assert (await signed_push(api, single, 202, True))["stored"] == 1
    assert (await signed_push(api, mention("t-1"), 202, True))["duplicates"] == 1
    broken = mention("t-9")
    del broken["author"]
    await signed_push(api, [mention("t-8"), broken], 422, False)
    await signed_push(api, [], 422, False)
    await signed_push(api, "not a mention", 422, False)
    await signed_push(api, {**mention("t-9"), "created_at": "2026-11-23T09:00:00"}, 422, False)
    await signed_push(api, mention("t-9"), 404, True, source="nope")
    body = json.dumps(mention("t-9")).encode()
    for signature in ({}, {SIGNATURE_HEADER: sign("guessed", body)}):
        await api.call("post", WEBHOOK, 401, data=body, headers=signature,
                       source_id="site-form")
    await api.call("post", WEBHOOK, 413, data=TOO_LARGE, source_id="site-form",
                   headers={SIGNATURE_HEADER: sign(SECRET, TOO_LARGE)})
    await api.call("post", WEBHOOK, 422, data=b"{not json", source_id="site-form",
                   headers={SIGNATURE_HEADER: sign(SECRET, b"{not json")})
    assert await services.coordinator.poll("masto") == "ok"


async def meta_webhooks(api: Contract) -> None:
    """An Instagram source takes Meta's handshake and signed deliveries on the same path."""
    hub = {"hub.mode": "subscribe", "hub.verify_token": "hub-token", "hub.challenge": "42"}
    assert await api.call("get", WEBHOOK, 200, params=hub, headers={}, source_id="insta") \
        == "42"
    await api.call("get", WEBHOOK, 403, params={**hub, "hub.verify_token": "guess"},
                   headers={}, source_id="insta")
    await api.call("get", WEBHOOK, 404, params=hub, headers={}, source_id="nope")
    delivery = {"object": "instagram", "entry": [{"id": "17841400000000000", "time": 1795000000,
                "changes": [{"field": "comments", "value": {
                    "id": "17900000000000001", "text": "Kargom nerede?",
                    "from": {"id": "1", "username": "deniz"}, "media": {"id": "1790"}}}]}]}
    body = json.dumps(delivery).encode()
    api.check_request("post", WEBHOOK, 202, None, delivery, True)
    stored = await api.call("post", WEBHOOK, 202, data=body, source_id="insta",
                            headers={"X-Hub-Signature-256": sign(META_SECRET, body)})
    assert stored["stored"] == 1


async def list_mentions(api: Contract) -> None:
    seen, cursor = [], None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = await api.call("get", MENTIONS, 200, params=params)
        seen += [m["id"] for m in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert len(seen) == len(set(seen)) == 5
    filters = {"status": "assigned", "channel": "web", "source": "site-form",
               "assignee": "john", "sla_state": "on_track", "q": "refund", "limit": "500"}
    [found] = (await api.call("get", MENTIONS, 200, params=filters))["items"]
    assert found["external_id"] == "w-2"
    for bad in ({"limit": "0"}, {"limit": "501"}, {"limit": "ten"}, {"status": "open"},
                {"sla_state": "late"}):
        error = await api.call("get", MENTIONS, 400, params=bad)
        assert error["error"]["code"] == "bad_request"
    for cursor in ("%%%", "bm9wZQ"):
        error = await api.call("get", MENTIONS, 400, params={"cursor": cursor})
        assert error["error"]["code"] == "bad_cursor"


async def mention_detail(api: Contract, ids: dict[str, int]) -> None:
    detail = await api.call("get", MENTION, 200, id=ids["w-1"])
    assert detail["customer"]["email"] == "deniz@example.com"
    assert detail["events"][0]["kind"] == "ingested"
    for missing in (999999, "abc"):
        await api.call("get", MENTION, 404, id=missing)


async def assign_and_respond(api: Contract, ids: dict[str, int]) -> None:
    web_1 = ids["w-1"]
    assigned = await api.call("post", ASSIGN, 200, json_body={"agent": "ayse", "by": "lead"},
                              id=web_1)
    assert assigned["assignee"] == "ayse" and assigned["status"] == "assigned"
    unassigned = await api.call("post", ASSIGN, 200, json_body={"agent": None, "by": None},
                                id=web_1)
    assert unassigned["assignee"] is None and unassigned["status"] == "new"
    for body, valid in (({}, False), ({"agent": 5}, False), ({"agent": ""}, False), ([], False),
                        ({"agent": "nobody"}, True)):
        await api.call("post", ASSIGN, 422, json_body=body, body_valid=valid, id=web_1)
    await api.call("post", ASSIGN, 404, json_body={"agent": "john"}, id=999999)

    responded = await api.call("post", RESPOND, 200, json_body={"note": "called back"},
                               id=web_1)
    assert responded["sla"]["state"] == "met" and responded["status"] == "responded"
    await api.call("post", RESPOND, 409, json_body={"note": None}, body_valid=True, id=web_1)
    await api.call("post", RESPOND, 422, json_body={"note": 5}, body_valid=False,
                   id=ids["w-2"])
    await api.call("post", RESPOND, 404, json_body={}, id=999999)
    for path in (ASSIGN, RESPOND, IGNORE, REPLY):
        await api.call("post", path, 400, data=b"{not json",
                       headers={**AUTH, "Content-Type": "application/json"}, id=web_1)
        await api.call("post", path, 413, data=TOO_LARGE,
                       headers={**AUTH, "Content-Type": "application/json"}, id=web_1)


async def ignoring(api: Contract, ids: dict[str, int]) -> None:
    ignored = await api.call("post", IGNORE, 200, id=ids["t-1"],
                             json_body={"reason": "bot account", "by": "ayse"})
    assert ignored["status"] == "ignored"
    again = await api.call("post", IGNORE, 409, json_body={"reason": "spam"}, id=ids["t-1"])
    assert again["error"]["code"] == "conflict"
    for body, valid in (({}, False), ({"reason": "   "}, False), ({"reason": 5}, False)):
        await api.call("post", IGNORE, 422, json_body=body, body_valid=valid, id=ids["w-2"])
    await api.call("post", IGNORE, 404, json_body={"reason": "spam"}, id=999999)


async def reply(api: Contract, ids: dict[str, int], platform: MastodonDouble) -> None:
    pushed = ids["w-2"]
    draft = await api.call("post", REPLY, 200, json_body={"template": "apology"}, id=pushed)
    assert draft["sent"] is False and draft["draft"]
    own = await api.call("post", REPLY, 200, json_body={"text": "Bakıyoruz", "template": ""},
                         id=pushed)
    assert own == {"draft": "Bakıyoruz", "sent": False}
    cannot = await api.call("post", REPLY, 409, json_body={"text": "Merhaba", "send": True},
                            id=pushed)
    assert cannot["error"]["code"] == "cannot_send"
    for body, valid in (({}, False), ({"text": "", "template": None}, False),
                        ({"text": "hi", "send": "yes"}, False), ({"template": "nope"}, False),
                        ({"template": "No Such"}, False)):
        await api.call("post", REPLY, 422, json_body=body, body_valid=valid, id=pushed)
    await api.call("post", REPLY, 404, json_body={"text": "hi"}, id=999999)

    toot = ids["109"]
    send = {"text": "@deniz we are on it", "send": True, "by": "ayse"}
    for status, refusal in ((429, ReplyRefused(429, "rate limited", retry_after=29.5)),
                            (422, ReplyRefused(422, "text too long")),
                            (502, ReplyRefused(401, "token revoked"))):
        platform.refusal = refusal
        refused = await api.call("post", REPLY, status, json_body=send, id=toot)
        assert refused["error"]["code"] == "platform_refused"
    platform.refusal = None
    sent = await api.call("post", REPLY, 200, json_body=send, id=toot)
    assert sent["sent"] is True and sent["reply"]["id"] == "110"
    assert sent["mention"]["status"] == "responded"
    assert sent["mention"]["response"]["external_id"] == "110"
    detail = await api.call("get", MENTION, 200, id=toot)
    assert detail["events"][-1]["kind"] == "replied"


DRAFT = "/api/v1/mentions/{id}/draft"


async def drafts(api: Contract, ids: dict[str, int]) -> None:
    catalog = await api.call("get", "/api/v1/templates", 200)
    assert "need-more-info" in catalog["intents"] and catalog["limits"]["twitter"] == 280
    draft = await api.call("get", DRAFT, 200, params={"intent": "apology", "lang": "tr"},
                           id=ids["t-1"])
    assert draft["limit"] == 280 and draft["text"].startswith("@jane")
    for params in ({}, {"intent": "apology", "lang": "de"}):
        assert (await api.call("get", DRAFT, 400, params=params, id=ids["t-1"])
                )["error"]["code"] == "bad_request"
    unknown = await api.call("get", DRAFT, 400, params={"intent": "nope"}, id=ids["t-1"])
    assert unknown["error"]["code"] == "unknown_template"
    await api.call("get", DRAFT, 404, params={"intent": "apology"}, id=999999)
    too_long = await api.call("post", REPLY, 422, json_body={"text": "a" * 501, "send": True},
                              id=ids["109"])
    assert too_long["error"]["code"] == "too_long"


async def directory(api: Contract, ids: dict[str, int]) -> None:
    agents = await api.call("get", "/api/v1/agents", 200)
    assert {a["id"] for a in agents["items"]} == {"ayse", "john"}
    away = await api.call("post", AGENT_STATUS, 200, json_body={"status": "away", "by": "lead"},
                          agent_id="john")
    assert away["status"] == "away"
    back = await api.call("post", AGENT_STATUS, 200, json_body={"status": "available"},
                          agent_id="john")
    assert back["status"] == "available"
    await api.call("post", AGENT_STATUS, 404, json_body={"status": "away"}, agent_id="nobody")
    for body, valid in (({}, False), ({"status": "busy"}, False), ([], False)):
        await api.call("post", AGENT_STATUS, 422, json_body=body, body_valid=valid,
                       agent_id="john")
    await api.call("post", AGENT_STATUS, 400, data=b"{not json", agent_id="john",
                   headers={**AUTH, "Content-Type": "application/json"})
    await api.call("post", AGENT_STATUS, 413, data=TOO_LARGE, agent_id="john",
                   headers={**AUTH, "Content-Type": "application/json"})
    detail = await api.call("get", MENTION, 200, id=ids["w-1"])
    customer = await api.call("get", CUSTOMER, 200, id=detail["customer_id"])
    assert customer["history"][0]["channel"] == "web"
    await api.call("get", CUSTOMER, 404, id=999999)
    summary = await api.call("get", "/api/v1/sla/summary", 200)
    assert summary["open"] == 3
    sources = await api.call("get", "/api/v1/sources", 200)
    by_id = {s["id"]: s for s in sources["items"]}
    assert list(by_id) == ["site-form", "masto", "x-brand", "insta"]
    assert by_id["x-brand"]["read_budget"]["monthly_reads"] == 10000
    assert by_id["masto"]["read_budget"] is None
    standard_keys_only = {**api.strict["components"]["schemas"]["Source"],
                          "additionalProperties": False}
    for source in sources["items"]:  # no connector here adds top-level keys of its own
        api.validator(standard_keys_only).validate(source)


CUSTOMERS = "/api/v1/customers"
IDENTITIES = "/api/v1/customers/{id}/identities"
MERGE = "/api/v1/customers/{id}/merge"
SPLIT = "/api/v1/customers/{id}/split"
UNDO = "/api/v1/customer-links/{id}/undo"
NOTES = "/api/v1/customers/{id}/notes"
CONTACTS = "/api/v1/customers/{id}/contacts"


async def customers(api: Contract, ids: dict[str, int]) -> None:
    """Search, link, merge, split, undo and notes, each way they answer."""
    jane = (await api.call("get", MENTION, 200, id=ids["t-1"]))["customer_id"]
    deniz = (await api.call("get", MENTION, 200, id=ids["w-1"]))["customer_id"]
    page = await api.call("get", CUSTOMERS, 200, params={"q": "deniz@example.com"})
    assert deniz in [c["id"] for c in page["items"]]
    first = await api.call("get", CUSTOMERS, 200, params={"limit": "1"})
    await api.call("get", CUSTOMERS, 200, params={"cursor": first["next_cursor"]})
    for params in ({"limit": "0"}, {"cursor": "nope"}):
        await api.call("get", CUSTOMERS, 400, params=params)
    linked = await api.call("post", IDENTITIES, 200, id=jane, json_body={
        "kind": "phone", "value": "0532 123 45 67", "by": "lead"})
    assert linked["link"]["actor"] == "api:lead"
    assert (await api.call("post", IDENTITIES, 200, id=jane, json_body={
        "kind": "phone", "value": "+90 532 123 4567"}))["link"] is None
    await api.call("post", IDENTITIES, 409, id=deniz,
                   json_body={"kind": "phone", "value": "+905321234567"})
    await api.call("post", IDENTITIES, 404, id=999999,
                   json_body={"kind": "email", "value": "x@example.com"})
    for body, valid in (({"kind": "fax", "value": "1"}, False),
                        ({"kind": "handle", "value": "ali"}, True), ([], False)):
        await api.call("post", IDENTITIES, 422, id=jane, json_body=body, body_valid=valid)
    note = await api.call("post", NOTES, 201, id=jane,
                          json_body={"kind": "offer", "text": "10% off", "author": "ayse"})
    assert note["kind"] == "offer"
    await api.call("post", NOTES, 404, id=999999, json_body={"text": "hi"})
    await api.call("post", NOTES, 422, id=jane, json_body={"text": ""}, body_valid=False)
    await contacts(api, jane, deniz)
    merged = await api.call("post", MERGE, 200, id=deniz, json_body={"from": jane})
    assert merged["link"]["action"] == "merge"
    timeline = await api.call("get", CUSTOMER, 200, id=deniz, params={"limit": "1"})
    await api.call("get", CUSTOMER, 200, id=deniz, params={"cursor": timeline["next_cursor"]})
    await api.call("get", CUSTOMER, 400, id=deniz, params={"cursor": "nope"})
    await api.call("post", NOTES, 409, id=jane, json_body={"text": "hi"})
    await api.call("post", MERGE, 409, id=deniz, json_body={"from": jane})
    await api.call("post", MERGE, 404, id=deniz, json_body={"from": 999999})
    await api.call("post", MERGE, 422, id=deniz, json_body={"from": deniz})
    await api.call("post", MERGE, 422, id=deniz, json_body={}, body_valid=False)
    undone = await api.call("post", UNDO, 200, id=merged["link"]["id"], json_body={"by": "lead"})
    assert undone["link"]["action"] == "undo"
    await api.call("post", UNDO, 409, id=merged["link"]["id"])
    await api.call("post", UNDO, 422, id=undone["link"]["id"])
    await api.call("post", UNDO, 404, id=999999)
    phone = next(i for i in (await api.call("get", CUSTOMER, 200, id=jane))["identities"]
                 if i["kind"] == "phone")
    split = await api.call("post", SPLIT, 201, id=jane, json_body={"identity": phone["id"]})
    assert split["customer"]["identities"][0]["value"] == "+905321234567"
    await api.call("post", SPLIT, 404, id=jane, json_body={"identity": phone["id"]})
    only = split["customer"]["identities"][0]["id"]
    await api.call("post", SPLIT, 422, id=split["customer"]["id"], json_body={"identity": only})
    await api.call("post", SPLIT, 422, id=jane, json_body={"identity": "x"}, body_valid=False)
    await api.call("post", UNDO, 200, id=split["link"]["id"])
    await api.call("post", SPLIT, 409, id=split["customer"]["id"],
                   json_body={"identity": only})
    for path in (IDENTITIES, MERGE, SPLIT, UNDO, NOTES, CONTACTS):
        await api.call("post", path, 400, data=b"{not json", id=jane,
                       headers={**AUTH, "Content-Type": "application/json"})
        await api.call("post", path, 413, data=TOO_LARGE, id=jane,
                       headers={**AUTH, "Content-Type": "application/json"})


async def contacts(api: Contract, jane: int, deniz: int) -> None:
    """A call with a promised callback, the same call again, and each refusal."""
    call = {"call_id": "C-1", "phone": "0532 123 45 67", "name": "Jane", "duration": 95,
            "started_at": "2026-11-23T09:40:00+03:00", "agent": "ayse", "topic": "delivery",
            "summary": "Parcel late", "outcome": "callback_promised", "by": "lead"}
    recorded = await api.call("post", CONTACTS, 201, id=jane, json_body=call)
    assert recorded["callback_mention_id"] is not None
    assert (await api.call("post", CONTACTS, 200, id=jane, json_body=call))["id"] == \
        recorded["id"]
    customer = await api.call("get", CUSTOMER, 200, id=jane)
    assert "call" in [item["type"] for item in customer["timeline"]]
    await api.call("post", CONTACTS, 409, id=deniz, json_body={"phone": "+905321234567"})
    await api.call("post", CONTACTS, 404, id=999999, json_body={"summary": "hi"})
    await api.call("post", CONTACTS, 422, id=jane, json_body={"phone": "call me"},
                   body_valid=True)
    await api.call("post", CONTACTS, 422, id=jane, json_body={"agent": 5}, body_valid=False)


async def alert_log(api: Contract, services: Any, ids: dict[str, int]) -> None:
    """One alert in each delivery state, as the worker leaves them."""
    await add_alerts(services, [
        {"mention_id": ids["w-2"], "kind": "at_risk", "state": "sent", "attempts": 1,
         "sent_at": MONDAY_10, "delivered_in": None},
        {"mention_id": ids["w-2"], "kind": "breached", "state": "pending", "attempts": 2,
         "last_error": "HTTP 503: try later"},
        {"mention_id": None, "kind": "spike", "state": "failed", "attempts": 1,
         "last_error": "HTTP 404: no_service"},
    ])
    every = (await api.call("get", ALERTS, 200))["items"]
    assert [a["kind"] for a in every] == ["spike", "breached", "at_risk"]
    filters = {"state": "pending", "kind": "breached", "limit": "500"}
    [pending] = (await api.call("get", ALERTS, 200, params=filters))["items"]
    assert pending["next_attempt_at"] is not None and pending["sent_at"] is None
    for bad in ({"limit": "0"}, {"limit": "501"}, {"state": "lost"}, {"kind": "late"}):
        error = await api.call("get", ALERTS, 400, params=bad)
        assert error["error"]["code"] == "bad_request"


async def every_secured_operation_needs_a_token(api: Contract) -> None:
    for path, operations in api.doc["paths"].items():
        for method, operation in operations.items():
            if operation.get("security") == []:
                continue
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                await api.call(method, path, 401, headers=headers, id=1, agent_id="ayse")


async def test_a_platform_retry_after_reaches_the_client(aiohttp_client: Any, services: Any
                                                         ) -> None:
    client = await aiohttp_client(init_app(services, background=False))
    masto = services.coordinator.sources["masto"]
    platform = masto.connector = MastodonDouble(masto.connector)
    assert await services.coordinator.poll("masto") == "ok"
    [toot] = (await (await client.get(MENTIONS, headers=AUTH)).json())["items"]
    platform.refusal = ReplyRefused(429, "rate limited", retry_after=29.5)
    response = await client.post(REPLY.format(id=toot["id"]), headers=AUTH,
                                 json={"text": "hi", "send": True})
    assert response.status == 429 and response.headers["Retry-After"] == "30"
    header = document()["paths"][REPLY]["post"]["responses"]["429"]["headers"]
    assert header["Retry-After"]["schema"]["type"] == "integer"


async def test_every_api_route_is_documented_and_nothing_else(services: Any) -> None:
    """A new endpoint cannot be left out of the document, nor a removed one kept in it.
    HEAD comes with every GET in aiohttp and is not listed separately."""
    app = init_app(services, background=False)
    routed = {(route.resource.canonical, route.method.lower())
              for route in app.router.routes()
              if route.resource is not None and route.method != "HEAD"
              and route.resource.canonical.startswith("/api/v1/")}
    documented = {(path, method) for path, operations in document()["paths"].items()
                  for method in operations}
    assert routed == documented


def test_the_webhook_body_schema_is_the_parsers_model() -> None:
    schemas = document()["components"]["schemas"]
    for name, model in (("MentionIn", MentionIn), ("AuthorIn", AuthorIn)):
        schema = schemas[name]
        assert set(schema["properties"]) == set(model.model_fields), name
        required = {n for n, f in model.model_fields.items() if f.is_required()}
        assert set(schema["required"]) == required, name


def test_the_document_is_well_formed() -> None:
    """Every schema is valid 2020-12, and every reference points at a schema."""
    doc = document()
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    text = json.dumps(doc)
    for name in {part.split('"')[0] for part in text.split("#/components/schemas/")[1:]}:
        assert name in doc["components"]["schemas"], name
    operation_ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(operation_ids) == len(set(operation_ids))


async def test_every_api_route_wants_a_known_token_and_every_405_says_what_is_allowed(
        aiohttp_client: Any, services: Any) -> None:
    """Walks the router: each Bearer route refuses no token and a wrong one with 401 (the
    webhook and this document are open), and a method a path does not take is a 405
    whose Allow lists the methods the document gives for it."""
    client = await aiohttp_client(init_app(services, background=False))
    doc = document()
    for path, operations in doc["paths"].items():
        concrete = path.format(id=1, source_id="site-form", agent_id="ayse")
        for method, operation in operations.items():
            for headers in ({}, {"Authorization": "Bearer not-a-token"}):
                response = await client.request(method.upper(), concrete, headers=headers)
                if operation.get("security") == []:
                    assert response.status != 401 or method == "post", (method, path)
                else:
                    assert response.status == 401, (method, path, headers)
                    assert (await response.json())["error"]["code"] == "unauthorized"
        refused = await client.request("PATCH", concrete, headers=AUTH)
        assert refused.status == 405, path
        allowed = {m.strip().lower() for m in refused.headers["Allow"].split(",")}
        assert allowed - {"head"} == set(operations), path
        assert (await refused.json())["error"]["code"] == "method_not_allowed"
