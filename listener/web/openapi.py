"""The OpenAPI 3.1 document for /api/v1: a table of the routes over the schemas in
`openapi_schemas`. tests/web/test_openapi.py checks it against the running app: every
route is here, and every status and body it declares is one the handlers really produce.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from connectors.meta import META_SIGNATURE_HEADER
from connectors.webhook import SIGNATURE_HEADER
from listener.models import STATUSES
from listener.services import SERVICES
from listener.store.alerts import STATES as ALERT_STATES
from listener.store.queries import SLA_STATES
from listener.web.alerts import MAX_LIMIT as MAX_ALERTS
from listener.web.api import MAX_ID, MAX_LIMIT, MAX_MENTION_ID
from listener.web.openapi_schemas import COMPONENTS, STRING, Schema, enum, error, ref
from responders.alerts.base import ALERT_KINDS
from responders.drafts import ALIASES, INTENTS, LANGS

routes = web.RouteTableDef()

ERROR_TEXT = {
    400: "A query parameter or the JSON body cannot be read",
    401: "Missing or refused credentials",
    403: "The verify token does not match",
    404: "No such mention, customer or source",
    409: "Conflicts with the mention's state",
    413: "Body larger than 8 MiB",
    422: "The body is readable but not acceptable",
    429: "The platform is rate limiting replies; try after Retry-After seconds",
    502: "The platform refused or failed (its own credentials or a server error)",
}
UNAUTHORIZED = {401: ("unauthorized",)}
JSON_BODY_ERRORS = {400: ("bad_json",), 413: ("too_large",)}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait, when the platform said",
        "required": False,
        "schema": {"type": "integer", "minimum": 0},
    }
}


def query(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


def or_empty(schema: Schema) -> Schema:
    """A filter that an empty value (`?status=`) leaves off, as if not given."""
    if "enum" in schema:
        return {**schema, "enum": [*schema["enum"], ""]}
    return {"anyOf": [schema, {"const": ""}]}


TEXT: Schema = {"type": "string", "pattern": "^[^\\u0000]*$",
                "description": "no NUL characters (400)"}
CURSOR: Schema = {"type": "string", "format": "cursor", "pattern": "^[A-Za-z0-9_-]*=*$",
                  "description": "opaque: only a `next_cursor` this API returned is one "
                                 "(400 bad_cursor otherwise)"}


PATH_PARAMETERS: dict[str, Schema] = {
    "id": {"name": "id", "in": "path", "required": True,
           "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID},
           "description": "numeric id; anything else is a 404"},
    "source_id": {"name": "source_id", "in": "path", "required": True,
                  "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.-]+$"},
                  "description": "id of an enabled webhook source (sources[].id)"},
    "agent_id": {"name": "agent_id", "in": "path", "required": True,
                 "schema": {"type": "string"}, "description": "agent id (agents[].id)"},
}
MENTION_ID: Schema = {**PATH_PARAMETERS["id"],
                      "schema": {"type": "integer", "minimum": 0, "maximum": MAX_MENTION_ID}}


def path_parameter(path: str, name: str) -> Schema:
    """Mention ids are 64-bit; customers, links and the rest are not."""
    if name == "id" and path.startswith("/api/v1/mentions/"):
        return MENTION_ID
    return PATH_PARAMETERS[name]


MENTION_FILTERS = (
    query("status", or_empty(enum(STATUSES)), "only this status"),
    query("channel", TEXT, "only this channel"),
    query("source", TEXT, "only this source id"),
    query("assignee", TEXT, "only mentions assigned to this agent id"),
    query("sla_state", or_empty(enum(SLA_STATES)), "only this SLA state, as of now"),
    query("q", TEXT, "text or author handle contains this, ignoring case"),
    query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50},
          "page size"),
    query("cursor", CURSOR, "`next_cursor` of the previous page"),
)
CUSTOMER_FILTERS = (
    query("q", TEXT, "part of a name, handle, e-mail or external id; a phone in any format"),
    query("segment", TEXT, "only this segment, e.g. vip"),
    query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50},
          "page size"),
    query("cursor", CURSOR, "next_cursor of the previous page"),
)
TIMELINE_PAGE = (
    query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50},
          "timeline page size"),
    query("cursor", {**CURSOR, "format": "timeline-cursor"},
          "the timeline's next_cursor of the previous page"),
)
ALERT_FILTERS = (
    query("state", or_empty(enum(ALERT_STATES)), "only alerts in this delivery state"),
    query("kind", or_empty(enum(ALERT_KINDS)), "only this kind of alert"),
    query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_ALERTS, "default": 50},
          "how many, newest first"),
)
DRAFT_PARAMETERS = (
    {"name": "intent", "in": "query", "required": True,
     "schema": {"type": "string", "pattern": "^[a-z0-9_-]{1,50}$"},
     "description": "an intent of GET /api/v1/templates, e.g. apology"},
    query("lang", enum(LANGS), "the draft's language; default the mention's, else en"),
)
LOCAL_DATE: Schema = or_empty({"type": "string", "format": "date"})
REPORT_RANGE = (
    query("from", LOCAL_DATE, "first local day (YYYY-MM-DD, the configured time zone), "
                              "included; default six days before `to`"),
    query("to", LOCAL_DATE, "last local day, included; default today"),
)
SIGNATURE = {
    "name": SIGNATURE_HEADER, "in": "header", "required": False,
    "schema": {"type": "string", "description": "anything else is a 401"},
    "description": ("`webhook` sources: sha256=<hex HMAC-SHA256 of the raw body, keyed with "
                    "the source secret>"),
}
META_SIGNATURE = {
    "name": META_SIGNATURE_HEADER, "in": "header", "required": False,
    "schema": {"type": "string", "description": "anything else is a 401"},
    "description": ("`instagram` and `facebook` sources (sent by Meta): sha256=<hex "
                    "HMAC-SHA256 of the raw body, keyed with the source's app_secret>"),
}
HUB_PARAMETERS = (
    query("hub.mode", {"type": "string", "enum": ["subscribe"]}, "always subscribe"),
    query("hub.verify_token", STRING, "must equal the source's verify_token"),
    query("hub.challenge", STRING, "echoed back as the plain-text body"),
)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    tag: str
    summary: str
    status: int
    response: Schema
    errors: dict[int, tuple[str, ...]] = field(default_factory=dict)
    parameters: tuple[Schema, ...] = ()
    body: str | None = None  # a component name
    body_required: bool = True
    bearer: bool = True
    description: str = ""
    repeat_status: int | None = None  # answered, with the same body, to a repeated request
    media: str = "application/json"  # of the success body
    database: bool = True  # reads or writes it, so may answer 503 while it is unreachable


OPERATIONS = (
    Operation("get", "/api/v1/mentions", "listMentions", "mentions",
              "List mentions, newest first, a page at a time", 200, ref("MentionPage"),
              {400: ("bad_request", "bad_cursor")}, MENTION_FILTERS),
    Operation("get", "/api/v1/mentions/{id}", "getMention", "mentions",
              "One mention with its customer's cross-channel history and its events", 200,
              ref("MentionDetail"), {404: ("not_found",)}),
    Operation("post", "/api/v1/mentions/{id}/assign", "assignMention", "mentions",
              "Assign to an agent, or unassign with null", 200, ref("Mention"),
              {**JSON_BODY_ERRORS, 404: ("not_found",), 422: ("invalid",)},
              body="AssignRequest",
              description="422 also when the agent is not configured."),
    Operation("post", "/api/v1/mentions/{id}/respond", "respondMention", "mentions",
              "Mark responded: stops the SLA clock", 200, ref("Mention"),
              {**JSON_BODY_ERRORS, 404: ("not_found",), 409: ("conflict",),
               422: ("invalid",)},
              body="RespondRequest", body_required=False,
              description="409 when the mention was already answered."),
    Operation("post", "/api/v1/mentions/{id}/ignore", "ignoreMention", "mentions",
              "Ignore with a reason: out of the queue, no deadline alerts", 200, ref("Mention"),
              {**JSON_BODY_ERRORS, 404: ("not_found",), 409: ("conflict",),
               422: ("invalid",)},
              body="IgnoreRequest",
              description=("The mention's status becomes ignored and the reason is kept in "
                           "its events. 409 when it is not open (answered, closed or "
                           "ignored already); 422 without a reason.")),
    Operation("post", "/api/v1/mentions/{id}/reply", "replyMention", "mentions",
              "Draft a reply, and with send: true post it on the platform", 200,
              {"oneOf": [ref("ReplyDraft"), ref("ReplySent")]},
              {**JSON_BODY_ERRORS, 404: ("not_found",), 409: ("cannot_send",),
               422: ("invalid", "unknown_template", "too_long", "platform_refused"),
               429: ("platform_refused",), 502: ("platform_refused",)},
              body="ReplyRequest",
              description=(
                  "A sent reply is the mention's first response (a later one is only "
                  "recorded). 409 cannot_send: this source does not post replies "
                  "(send_replies off, credentials missing, or a kind that cannot); answer "
                  "on the platform and POST .../respond. 422 too_long: with send, a text "
                  "over the channel's limit (GET /api/v1/templates) is refused before it "
                  "reaches the platform. platform_refused: the platform "
                  "refused and nothing was sent; its 422 and 429 pass through, anything "
                  "else (its 401/403, 5xx) is a 502.")),
    Operation("get", "/api/v1/mentions/{id}/draft", "draftReply", "mentions",
              "Draft a reply from a tone template, measured against the channel's limit",
              200, ref("Draft"), {400: ("bad_request", "unknown_template"),
                                  404: ("not_found",)}, DRAFT_PARAMETERS,
              description=("The channel's tone (its own templates, else its source kind's, "
                           "else social or formal) in the asked language; an admin's edited "
                           "template wins over the file. Nothing is stored or sent.")),
    Operation("get", "/api/v1/templates", "listTemplates", "mentions",
              "Reply intents, languages and each channel's length limit", 200,
              ref("TemplateCatalog"), database=False),
    Operation("get", "/api/v1/agents", "listAgents", "directory",
              "Active agents and their open load", 200, ref("AgentList")),
    Operation("post", "/api/v1/agents/{agent_id}/status", "setAgentStatus", "directory",
              "Set an agent available or away", 200, ref("Agent"),
              {**JSON_BODY_ERRORS, 404: ("not_found",), 422: ("invalid",)},
              body="AgentStatusRequest",
              description=("Away takes the agent out of routing; with routing.handoff: "
                           "reassign their open mentions are routed again. Available "
                           "drains the unassigned backlog.")),
    Operation("get", "/api/v1/customers", "listCustomers", "customers",
              "Search customers by name, handle, e-mail, phone or external id", 200,
              ref("CustomerPage"), {400: ("bad_request", "bad_cursor")}, CUSTOMER_FILTERS),
    Operation("get", "/api/v1/customers/{id}", "getCustomer", "customers",
              "A customer: identities, accounts, segment and cross-channel timeline", 200,
              ref("Customer"), {400: ("bad_request", "bad_cursor"), 404: ("not_found",)},
              TIMELINE_PAGE),
    Operation("post", "/api/v1/customers/{id}/identities", "addCustomerIdentity",
              "customers", "Link an identity (handle, e-mail, phone, CRM id)", 200,
              ref("CustomerChange"),
              {**JSON_BODY_ERRORS, 404: ("not_found",), 409: ("conflict",),
               422: ("invalid",)}, body="IdentityRequest",
              description=("`link` is null when the customer already had it. 409 when another "
                           "customer holds it: merge the two instead (the message says how).")),
    Operation("post", "/api/v1/customers/{id}/merge", "mergeCustomers", "customers",
              "Merge another customer in: identities, accounts, mentions and notes move",
              200, ref("CustomerChange"),
              {**JSON_BODY_ERRORS, 404: ("not_found",), 409: ("conflict",),
               422: ("invalid",)}, body="MergeRequest"),
    Operation("post", "/api/v1/customers/{id}/split", "splitCustomer", "customers",
              "Split an identity, with its account's mentions, into a new customer", 201,
              ref("CustomerChange"),
              {**JSON_BODY_ERRORS, 404: ("not_found",), 409: ("conflict",),
               422: ("invalid",)}, body="SplitRequest",
              description="Answers with the new customer."),
    Operation("post", "/api/v1/customer-links/{id}/undo", "undoCustomerLink", "customers",
              "Undo a recorded link, merge or split", 200, ref("CustomerChange"),
              {**JSON_BODY_ERRORS, 404: ("not_found",), 409: ("conflict",),
               422: ("invalid",)}, body="UndoRequest", body_required=False,
              description="409 when it was already undone; 422 when the record is itself "
                          "an undo (link, merge or split again instead)."),
    Operation("post", "/api/v1/customers/{id}/notes", "addCustomerNote", "customers",
              "Add a note or an offer to the customer's timeline", 201, ref("CustomerNote"),
              {**JSON_BODY_ERRORS, 404: ("not_found",), 409: ("conflict",),
               422: ("invalid",)}, body="NoteRequest"),
    Operation("post", "/api/v1/customers/{id}/contacts", "addCustomerContact", "customers",
              "Record a call-centre call on the customer's timeline", 201,
              ref("CustomerContact"),
              {**JSON_BODY_ERRORS, 404: ("not_found",), 409: ("conflict",),
               422: ("invalid",)}, body="ContactRequest",
              description=("An outcome that promises a callback (callback, "
                           "callback_promised, geri arama, …) also opens a mention on "
                           "channel phone, source calls, routed and given a deadline like "
                           "any other. The same call again (call_id, else phone and time) "
                           "answers 200 with the call recorded before. 409 when the phone "
                           "belongs to another customer: merge them, or leave it out."),
              repeat_status=200),
    Operation("get", "/api/v1/sla/summary", "slaSummary", "sla",
              "Mentions with a deadline, counted by SLA state and channel", 200,
              ref("SlaSummary")),
    Operation("get", "/api/v1/reports/share-of-voice", "shareOfVoice", "reports",
              "Share of voice and sentiment per brand, channel and local day", 200,
              ref("ShareOfVoice"), {400: ("bad_request",)}, REPORT_RANGE,
              description=(
                  "Mentions about our brand (`ours`) and each competitor, posted within the "
                  "range, counted by the local day they were posted. Counted are people's own "
                  "words: not a brand's own posts, not noise (reposts, blocklisted words, "
                  "repeats). Sentiment: negative at -0.3 or below, positive at 0.3 or above. "
                  "At most 366 days; 400 for a date that is not YYYY-MM-DD or not real, or "
                  "`from` after `to`.")),
    Operation("get", "/api/v1/sources", "listSources", "sources",
              "Every configured source and its polling health", 200, ref("SourceList")),
    Operation("get", "/api/v1/alerts", "listAlerts", "alerts",
              "Recent alerts, newest first, and how their delivery went", 200,
              ref("AlertList"), {400: ("bad_request",)}, ALERT_FILTERS,
              description=("One alert per mention, moment and sink. Sinks are named "
                           "(alerts[].name); their URLs and secrets are never shown.")),
    Operation("post", "/api/v1/webhooks/{source_id}", "pushMentions", "ingest",
              "Push one mention or a list (HMAC-signed, no bearer token)", 202,
              ref("PushResult"),
              {401: ("bad_signature",), 404: ("unknown_source",), 413: ("too_large",),
               422: ("invalid",)},
              (SIGNATURE, META_SIGNATURE), body="WebhookDelivery", bearer=False,
              description=("202 only after the whole body is committed; a bad signature "
                           "or one bad object stores nothing (422 names the object and "
                           "field, e.g. [1] author: Field required). `instagram` and "
                           "`facebook` sources take Meta's deliveries here, signed in "
                           "X-Hub-Signature-256.")),
    Operation("get", "/api/v1/webhooks/{source_id}", "verifyWebhook", "ingest",
              "Meta's subscription handshake: answers hub.challenge", 200,
              {"type": "string", "description": "hub.challenge, as text/plain"},
              {403: ("forbidden",), 404: ("unknown_source",)}, HUB_PARAMETERS, bearer=False,
              media="text/plain", database=False,
              description=("For `instagram` and `facebook` sources: the challenge is "
                           "answered only when hub.mode is subscribe and hub.verify_token "
                           "equals the source's verify_token; 403 otherwise.")),
    Operation("get", "/api/v1/openapi.json", "openapi", "meta", "This document", 200,
              {"type": "object"}, bearer=False, database=False),
)


def _json(schema: Schema) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


# Shared by every operation that touches the database: webhook senders and API clients
# keep the request and send it again after Retry-After (a resent webhook is stored once).
UNAVAILABLE = {
    "description": "The database is unreachable; send the same request again after "
                   "Retry-After seconds",
    "headers": {"Retry-After": {"description": "Seconds to wait before trying again",
                                "required": True,
                                "schema": {"type": "integer", "minimum": 1}}},
    "content": _json(error("unavailable")),
}


def _operation(op: Operation) -> dict[str, Any]:
    errors = {**(UNAUTHORIZED if op.bearer else {}), **op.errors}
    responses: dict[str, Any] = {
        str(op.status): {"description": op.summary,
                         "content": {op.media: {"schema": op.response}}}}
    if op.repeat_status is not None:
        responses[str(op.repeat_status)] = {"description": "Done before: the same answer",
                                            "content": _json(op.response)}
    for status, codes in sorted(errors.items()):
        responses[str(status)] = {"description": ERROR_TEXT[status],
                                  "content": _json(error(*codes))}
        if status == 429:
            responses[str(status)]["headers"] = RETRY_AFTER
    if op.database:
        responses["503"] = {"$ref": "#/components/responses/Unavailable"}
    responses["default"] = {"description": "Any other failure: 405 method_not_allowed, "
                                           "500 internal (details in the server log)",
                            "content": _json(ref("Error"))}
    names = re.findall(r"{(\w+)}", op.path)
    spec: dict[str, Any] = {
        "operationId": op.operation_id,
        "tags": [op.tag],
        "summary": op.summary,
        "parameters": [path_parameter(op.path, name) for name in names] +
                      list(op.parameters),
        "responses": responses,
    }
    if op.description:
        spec["description"] = op.description
    if op.body:
        spec["requestBody"] = {"required": op.body_required, "content": _json(ref(op.body))}
    if not op.bearer:
        spec["security"] = []
    return spec


DESCRIPTION = """\
Listener's REST API. Send `Authorization: Bearer <token>` with a token from
`server.api_tokens`; webhooks are signed with HMAC instead, and this document is public.
Errors are `{"error": {"code", "message"}}`. Lists are newest first and paginated with
an opaque `cursor`: pass the previous page's `next_cursor` until it is null.
Times are ISO 8601 with offset, in UTC. New fields may be added to any object."""


def with_intents(paths: dict[str, Any], components: dict[str, Schema],
                 intents: tuple[str, ...]) -> dict[str, Schema]:
    """Name the intents this deployment has (built-in, aliases, operator-added files), so
    a template name the document allows is one the service can draft from."""
    names = enum(intents, "an intent of GET /api/v1/templates")
    draft = paths["/api/v1/mentions/{id}/draft"]["get"]
    draft["parameters"] = [{**p, "schema": names} if p["name"] == "intent" else p
                           for p in draft["parameters"]]
    reply = components["ReplyRequest"]
    by_template = {"required": ["template"], "properties": {"template": names}}
    return {**components, "ReplyRequest": {**reply, "anyOf": [reply["anyOf"][0], by_template]}}


def document(intents: tuple[str, ...] = (*INTENTS, *ALIASES)) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    components = with_intents(paths, COMPONENTS, intents)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Listener API", "version": "1", "description": DESCRIPTION},
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "a token from server.api_tokens"}},
            "schemas": components,
            "responses": {"Unavailable": UNAVAILABLE},
        },
    }


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    composer = request.app[SERVICES].composer
    return web.json_response(document((*composer.intents(), *ALIASES)))
