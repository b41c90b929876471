"""The JSON shapes of /api/v1 as JSON Schema 2020-12 (what OpenAPI 3.1 uses).

Each schema mirrors one serializer: `MENTION` is `serialize.mention_json`, `SOURCE` is
`sources.source_json`, `MENTION_IN` is the webhook's `MentionIn` model. Every key a response
always carries is `required`; a value that can be null says so in its `type`. Objects stay
open (no `additionalProperties: false`) so clients tolerate fields added later;
tests/web/test_openapi.py closes them while checking, so a field the API adds but this
module forgets fails the suite.
"""

from __future__ import annotations

from typing import Any

from listener.models import STATUSES
from listener.store.alerts import STATES as ALERT_STATES
from listener.store.queries import SLA_STATES
from listener.store.routing import AGENT_STATUSES
from responders.alerts.base import ALERT_KINDS
from responders.drafts import LANGS

Schema = dict[str, Any]

PRIORITIES = ("urgent", "high", "normal", "low")
SOURCE_HEALTH = ("ok", "failing", "auth_failed", "rate_limited", "never_polled", "push",
                 "disabled")
STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
COUNT: Schema = {"type": "integer", "minimum": 0}
TIME: Schema = {"type": "string", "format": "date-time",
                "description": "ISO 8601 with offset, in UTC"}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """The same schema that also admits null."""
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    widened = {**schema, "type": [*kinds, "null"]}
    if "enum" in schema:
        widened["enum"] = [*schema["enum"], None]
    return widened


def record(description: str, properties: dict[str, Schema], optional: tuple[str, ...] = (),
           **extra: Any) -> Schema:
    """An object whose every property is required unless named in `optional`."""
    return {
        "type": "object",
        "description": description,
        "required": [name for name in properties if name not in optional],
        "properties": properties,
        **extra,
    }


def enum(values: tuple[str, ...], description: str = "") -> Schema:
    schema: Schema = {"type": "string", "enum": list(values)}
    return {**schema, "description": description} if description else schema


def error(*codes: str) -> Schema:
    """The error envelope, with the codes this status can carry on this operation."""
    return record("An error; `code` is stable, `message` is for people", {
        "error": record("What went wrong", {
            "code": enum(codes) if codes else STRING,
            "message": STRING,
        }),
    })


AUTHOR = record("The account on one channel that wrote a mention", {
    "handle": STRING,
    "name": STRING,
    "followers": nullable(COUNT),
    "channel": STRING,
})

SLA = record("The first-response clock; `state` is computed at the time of the request", {
    "policy": nullable({**STRING, "description": "SLA policy name (sla.policies[].name)"}),
    "deadline_at": nullable(TIME),
    "at_risk_at": nullable(TIME),
    "state": nullable(enum(SLA_STATES, "null when no policy covers the mention")),
    "first_response_at": nullable(TIME),
    "response_seconds": nullable({**INTEGER, "description": "created_at to first response"}),
    "time_left": {**STRING, "description": 'For people: "2h 05m left", "overdue by 10m", '
                                           '"answered 1h early", "no deadline"'},
})

MENTION_PROPERTIES: dict[str, Schema] = {
    "id": INTEGER,
    "source": {**STRING, "description": "id of the configured source (sources[].id)"},
    "channel": STRING,
    "external_id": {**STRING, "description": "the platform's own id"},
    "url": nullable(STRING),
    "author": nullable(ref("Author")),
    "customer_id": nullable(INTEGER),
    "text": STRING,
    "lang": nullable({**STRING, "description": "two-letter language code"}),
    "sentiment": {"type": "number", "minimum": -1, "maximum": 1},
    "priority": enum(PRIORITIES),
    "created_at": {**TIME, "description": "when the customer posted; the SLA clock starts here"},
    "ingested_at": TIME,
    "status": enum(STATUSES),
    "assignee": nullable({**STRING, "description": "agent id"}),
    "thread": nullable({**STRING, "description": "conversation id on the platform"}),
    "follow_up_of": nullable({"type": "integer", "description": "the answered mention this "
                              "follow-up continues; its deadline is a next-response clock"}),
    "brand": {**STRING, "description": "whose brand it is about: ours, or a competitor's "
                                       "name (competitors[].name); a competitor's mentions "
                                       "are never queued"},
    "rating": nullable({"type": "integer", "minimum": 1, "maximum": 5,
                        "description": "an app review's stars (Google Play, App Store); "
                                       "null for everything else"}),
    "response": nullable(record("The reply Listener posted on the platform", {
        "external_id": nullable(STRING),
        "url": nullable(STRING),
    })),
    "sla": nullable(ref("Sla")),
}
MENTION = record("One mention, as every list and action returns it", MENTION_PROPERTIES)

EVENT = record("One entry of a mention's history", {
    "kind": {**STRING, "description": "ingested, assigned, unassigned, responded, replied, ..."},
    "at": TIME,
    "actor": nullable({**STRING, "description": "agent, API caller (`by`) or source id"}),
    "data": nullable({"type": "object", "additionalProperties": True}),
})

MENTION_DETAIL = record(
    "A mention with its customer's cross-channel history and its own event history",
    {**MENTION_PROPERTIES, "customer": nullable(ref("Customer")),
     "events": {"type": "array", "items": ref("MentionEvent")}},
)

MENTION_PAGE = record("One page of mentions, newest first", {
    "items": {"type": "array", "items": ref("Mention")},
    "next_cursor": nullable({**STRING, "pattern": "^[A-Za-z0-9_-]+=*$",
                             "description": "pass as `cursor` for the next page; null on the "
                                            "last page"}),
})

HISTORY_ITEM = record("One of the customer's mentions, on any channel", {
    "id": INTEGER,
    "channel": STRING,
    "source": STRING,
    "text": STRING,
    "created_at": TIME,
    "status": enum(STATUSES),
    "url": nullable(STRING),
    "sla_state": nullable(enum(SLA_STATES)),
})

CUSTOMER_SUMMARY_PROPERTIES: dict[str, Schema] = {
    "id": INTEGER,
    "name": STRING,
    "email": nullable(STRING),
    "segment": nullable({**STRING, "description": "e.g. vip, high_value, at_risk: routing "
                                                  "rules and SLA policies match on it"}),
    "external_id": nullable({**STRING, "description": "the CRM's id (customers import)"}),
    "lifetime_value": nullable({"type": "number"}),
    "merged_into": nullable({**INTEGER, "description": "set when merged into that customer"}),
}
CUSTOMER_SUMMARY = record("A customer as search lists it", CUSTOMER_SUMMARY_PROPERTIES)
CUSTOMER_PAGE = record("One page of customers, newest first", {
    "items": {"type": "array", "items": ref("CustomerSummary")},
    "next_cursor": nullable(STRING),
})
IDENTITY = record("Something that identifies the customer, normalised", {
    "id": INTEGER,
    "kind": enum(("handle", "email", "phone", "crm")),
    "channel": nullable({**STRING, "description": "the handle's channel; null otherwise"}),
    "value": {**STRING, "description": "e-mail lower-case, phone E.164, handle without @"},
})
TIMELINE_CALL = record("What a call adds to its timeline item", {
    "external_id": {**STRING, "description": "the call id, or sha256:… of phone and time"},
    "phone": nullable({**STRING, "description": "the caller's number, E.164"}),
    "duration_seconds": nullable(COUNT),
    "topic": nullable(STRING),
})
TIMELINE_ITEM = record("One thing in the customer's history on any channel", {
    "type": enum(("mention", "response", "note", "offer", "call")),
    "at": TIME,
    "id": {**INTEGER, "description": "id of the mention, the response event, the note or "
                                     "the call"},
    "mention_id": nullable({**INTEGER, "description": "for a call: the open mention of its "
                                                      "promised callback"}),
    "channel": nullable(STRING),
    "source": nullable(STRING),
    "text": nullable(STRING),
    "url": nullable(STRING),
    "status": nullable({**STRING, "description": "a mention's status; responded or "
                                                 "replied for a response; a call's outcome"}),
    "actor": nullable({**STRING, "description": "who responded, wrote the note or took "
                                                "the call"}),
    "call": {**TIMELINE_CALL, "description": "only on calls"},
}, optional=("call",))
CUSTOMER = record(
    "A customer: identities, accounts on every channel, latest 50 mentions (`history`) and "
    "the cross-channel timeline, newest first, a page at a time",
    {
        **CUSTOMER_SUMMARY_PROPERTIES,
        "identities": {"type": "array", "items": ref("CustomerIdentity")},
        "accounts": {"type": "array", "items": ref("Author")},
        "history": {"type": "array", "items": ref("CustomerHistoryItem")},
        "timeline": {"type": "array", "items": ref("TimelineItem")},
        "next_cursor": nullable({**STRING, "description": "the timeline's next page"}),
    })
CUSTOMER_LINK = record("One recorded link, merge, split or undo", {
    "id": {**INTEGER, "description": "POST /api/v1/customer-links/{id}/undo reverses it"},
    "action": enum(("link", "merge", "split", "undo")),
    "customer_id": INTEGER,
    "other_customer_id": nullable(INTEGER),
    "identity": nullable({**STRING, "description": "e.g. twitter:@ali, email:a@b.com"}),
    "actor": {**STRING, "description": "auto:email, auto:phone, auto:crm or api:<by>"},
    "at": TIME,
    "undone_at": nullable(TIME),
    "moved": {"type": "object", "description": "ids of the rows that moved",
              "additionalProperties": {"type": "array", "items": INTEGER}},
})
CUSTOMER_CHANGE = record("The customer after the change, and its audit record", {
    "customer": ref("Customer"),
    "link": nullable(ref("CustomerLink")),
})
NOTE = record("A note or offer on the customer", {
    "id": INTEGER,
    "kind": enum(("note", "offer")),
    "text": STRING,
    "author": nullable(STRING),
    "at": TIME,
})

AGENT = record("A configured, active agent and their open load", {
    "id": STRING,
    "name": STRING,
    "channels": {"type": "array", "items": STRING},
    "languages": {"type": "array", "items": STRING},
    "max_open": INTEGER,
    "shift": nullable(STRING),
    "status": {**enum(AGENT_STATUSES),
               "description": "away: out of routing until set available again"},
    "open": {**COUNT, "description": "open (new or assigned) mentions assigned to them"},
})

STATE_COUNTS = record("Mention counts per SLA state",
                      {state: COUNT for state in SLA_STATES})

SLA_SUMMARY = record("Counts of mentions that have a deadline, by SLA state and channel", {
    "now": TIME,
    "states": ref("StateCounts"),
    "channels": {"type": "object", "additionalProperties": ref("StateCounts"),
                 "description": "channel name to its counts"},
    "unassigned": {**COUNT, "description": "status new and no assignee"},
    "open": {**COUNT, "description": "status new or assigned"},
})

SOURCE = record(
    "A configured source and how its polling is going. A connector may add keys of its "
    "own (so this object is open).",
    {
        "id": STRING,
        "kind": STRING,
        "channel": nullable(STRING),
        "enabled": {"type": "boolean"},
        "polled": {"type": "boolean", "description": "false for push (webhook) sources"},
        "health": enum(SOURCE_HEALTH),
        "interval_seconds": nullable({"type": "number"}),
        "last_success_at": nullable(TIME),
        "last_error": nullable(STRING),
        "last_error_at": nullable(TIME),
        "consecutive_failures": COUNT,
        "last_poll_items": nullable(COUNT),
        "next_poll_at": nullable(TIME),
        "read_budget": nullable(ref("ReadBudget")),
        "brand_replies": ref("BrandReplies"),
        "graph_usage": ref("GraphUsage"),
    },
    optional=("brand_replies", "graph_usage"),
    additionalProperties=True,
)

BRAND_REPLIES = record(
    "Whether the brand's own replies on the platform are read (native responses); only on "
    "sources that can read them",
    {
        "watched": {"type": "boolean"},
        "accounts": {"type": "array", "items": STRING},
        "not_watched": {"type": "array", "items": STRING,
                        "description": "brand accounts this source cannot read (Mastodon)"},
        "problem": nullable({**STRING, "description": "why reading them failed, if it did"}),
    },
    optional=("not_watched", "problem"),
    additionalProperties=True,
)

GRAPH_USAGE = record(
    "Meta sources: the usage Meta last reported (percent of its rolling-hour limits); the "
    "source polls four times less often from 75% and pauses from 95%",
    {
        "app_percent": nullable({"type": "number", "description": "X-App-Usage, highest"}),
        "business_percent": nullable({"type": "number",
                                      "description": "X-Business-Use-Case-Usage, highest"}),
        "state": enum(("normal", "slowed", "paused")),
        "regain_minutes": nullable({"type": "number",
                                    "description": "Meta's estimated wait, when throttled"}),
    },
)

READ_BUDGET = record(
    "A metered source's reads this period (X: `monthly_reads`; YouTube: `daily_units`, "
    "reset at midnight Pacific Time); null on other sources",
    {
        "remaining": nullable({**COUNT, "description": "null until this process has polled"}),
        "monthly_reads": {**COUNT, "description": "X: the configured monthly budget"},
        "daily_units": {**COUNT, "description": "YouTube: the configured daily quota units"},
        "used": nullable(COUNT),
        "resets_at": TIME,
    },
    optional=("monthly_reads", "daily_units", "used", "resets_at"),
    additionalProperties=True,
)

SOURCE_LIST = record("Every configured source, in config order", {
    "items": {"type": "array", "items": ref("Source")},
})
AGENT_LIST = record("Active agents", {"items": {"type": "array", "items": ref("Agent")}})

ALERT = record("One alert in the outbox: one mention, one moment (or spike), one sink", {
    "id": INTEGER,
    "mention_id": nullable({**INTEGER, "description": "null for a spike"}),
    "sink": {**STRING, "description": "the sink's name (alerts[].name)"},
    "kind": enum(ALERT_KINDS),
    "created_at": {**TIME, "description": "when the SLA engine wrote the alert"},
    "state": enum(ALERT_STATES, "pending: not delivered yet (waiting or retrying); sent; "
                                "failed: refused by the service, not retried"),
    "attempts": {**COUNT, "description": "delivery attempts so far"},
    "next_attempt_at": nullable({**TIME, "description": "while pending: the next try"}),
    "sent_at": nullable(TIME),
    "delivered_in": nullable({**INTEGER, "description": "when the message carried several "
                                                        "alerts: the id of its first one"}),
    "last_error": nullable({**STRING, "description": "why the last attempt failed"}),
})
ALERT_LIST = record("Recent alerts, newest first", {
    "items": {"type": "array", "items": ref("Alert")},
})

REPLY_DRAFT = record("A draft; nothing was posted", {
    "draft": STRING,
    "sent": {"const": False},
})
REPLY_SENT = record("Posted on the platform; the mention is responded (the clock stopped)", {
    "draft": STRING,
    "sent": {"const": True},
    "reply": record("The reply as the platform knows it", {
        "id": STRING,
        "url": nullable(STRING),
    }),
    "mention": ref("Mention"),
})

LIMIT: Schema = {"type": ["integer", "null"], "minimum": 1,
                 "description": "characters the channel allows; null: no limit"}
DRAFT = record("A reply drafted from a tone template; nothing was stored or sent", {
    "text": STRING,
    "intent": {**STRING, "description": "the intent drafted (info is need-more-info)"},
    "lang": enum(LANGS, "the template's language: English when none in the one asked"),
    "template_path": {**STRING, "description": "templates/tones/<folder>/<intent>.<lang>.j2, "
                                               "or override:<folder>/<intent>.<lang> for a "
                                               "template an admin edited"},
    "length": {**COUNT, "description": "as the platform counts (X: links 23, emoji 2)"},
    "limit": LIMIT,
    "over": {"type": "boolean", "description": "longer than the limit: sending is refused"},
})
TEMPLATE_CATALOG = record("What a reply composer can offer", {
    "intents": {"type": "array", "items": STRING,
                "description": "the five built-in intents, then any added as files"},
    "aliases": {"type": "object", "additionalProperties": STRING,
                "description": "older intent names and the intent they mean"},
    "languages": {"type": "array", "items": enum(LANGS)},
    "limits": {"type": "object", "additionalProperties": LIMIT,
               "description": "channel (or source kind) → reply length limit"},
})

BRAND_SHARE = record("One brand's mentions, share and sentiment in one part of the report", {
    "brand": {**STRING, "description": "ours, or a competitor's name"},
    "mentions": COUNT,
    "share": nullable({"type": "number", "minimum": 0, "maximum": 100,
                       "description": "percent of this part's mentions (all brands); null "
                                      "when it has none"}),
    "sentiment": record("The brand's mentions by sentiment", {
        "negative": COUNT,
        "neutral": COUNT,
        "positive": COUNT,
        "mean": nullable({"type": "number", "minimum": -1, "maximum": 1,
                          "description": "mean sentiment, -1 (angry) to 1 (pleased)"}),
    }),
})
SOV_BRANDS: Schema = {"type": "array", "items": ref("BrandShare"),
                      "description": "every brand, in the order of `brands`"}
SOV_CHANNEL = record("One channel's mentions", {
    "channel": STRING,
    "mentions": {**COUNT, "description": "all brands together"},
    "brands": SOV_BRANDS,
})
SOV_DAY = record("One local day's mentions", {
    "date": {**STRING, "format": "date"},
    "mentions": {**COUNT, "description": "all brands together"},
    "brands": SOV_BRANDS,
    "channels": {"type": "array", "items": ref("ShareOfVoiceChannel"),
                 "description": "the channels with mentions that day, by name"},
})
SHARE_OF_VOICE = record("Share of voice per brand, channel and local day", {
    "from": {**STRING, "format": "date"},
    "to": {**STRING, "format": "date"},
    "timezone": {**STRING, "description": "the local days' time zone (timezone)"},
    "brands": {"type": "array", "items": STRING,
               "description": "ours first, then the competitors in config order, then any "
                              "no longer configured that had mentions in the range"},
    "total": record("The whole range", {"mentions": COUNT, "brands": SOV_BRANDS}),
    "channels": {"type": "array", "items": ref("ShareOfVoiceChannel"),
                 "description": "the channels with mentions in the range, by name"},
    "days": {"type": "array", "items": ref("ShareOfVoiceDay"),
             "description": "every day of the range, in order"},
})

PUSH_RESULT = record("The whole body was stored in one transaction", {
    "accepted": {**COUNT, "description": "objects in the body"},
    "stored": {**COUNT, "description": "new mentions"},
    "duplicates": {**COUNT, "description": "already stored (same source and id)"},
    "ids": {"type": "array", "items": INTEGER, "description": "ids of the new mentions"},
})

MENTION_IN = record(
    "A pushed mention (also one line of `listener ingest`); unknown keys are ignored",
    {
        "id": {"type": ["string", "integer"], "minLength": 1, "maxLength": 200,
               "description": "the item's id where it came from; unique per source"},
        "text": {**STRING, "maxLength": 100_000},
        "created_at": {**TIME, "description": "when the customer posted, with a UTC offset"},
        "url": nullable({**STRING, "maxLength": 4000}),
        "channel": nullable({**STRING, "minLength": 1, "maxLength": 30,
                             "description": "default: the source's channel, else web"}),
        "author": ref("AuthorIn"),
        "lang": nullable({**STRING, "maxLength": 10}),
        "in_reply_to": nullable({**STRING, "maxLength": 200}),
        "rating": nullable({"type": "integer", "minimum": 1, "maximum": 5,
                            "description": "an app review's stars"}),
        "source": nullable({**STRING, "description": "read by `listener ingest`; the webhook "
                                                     "path names the source"}),
    },
    optional=("url", "channel", "lang", "in_reply_to", "rating", "source"),
)
AUTHOR_IN = record("Who wrote a pushed mention", {
    "handle": {**STRING, "minLength": 1, "maxLength": 200},
    "name": {**STRING, "maxLength": 200},
    "email": nullable({**STRING, "maxLength": 320,
                       "description": "links the author to a customer across channels"}),
    "followers": nullable(COUNT),
    "phone": nullable({**STRING, "maxLength": 40,
                       "description": "links the author to a customer by phone, any format"}),
}, optional=("name", "email", "followers", "phone"))

NO_NUL = "^[^\\u0000]*$"  # PostgreSQL cannot store NUL in text: refused with a 422
WORDS = "^[^\\u0000]*[^\\u0000\\s][^\\u0000]*$"  # something besides spaces, and no NUL
BY: Schema = nullable({**STRING, "maxLength": 100, "pattern": NO_NUL,
                       "description": 'who acts, recorded in the history; default "api"'})

ASSIGN_BODY = record("Assign, reassign or unassign", {
    "agent": nullable({**STRING, "minLength": 1, "pattern": NO_NUL,
                       "description": "agent id (GET /api/v1/agents); null unassigns"}),
    "by": BY,
}, optional=("by",))
AGENT_STATUS_BODY = record("Set an agent available or away", {
    "status": enum(AGENT_STATUSES),
    "by": BY,
}, optional=("by",))
RESPOND_BODY = record("Mark responded: the customer was answered outside Listener", {
    "note": nullable(STRING),
    "by": BY,
}, optional=("note", "by"))
IGNORE_BODY = record("Ignore: the mention needs no answer (spam, a bot, a duplicate)", {
    "reason": {**STRING, "minLength": 1, "maxLength": 1000, "pattern": "\\S",
               "description": "why; shown in the mention's history"},
    "by": BY,
}, optional=("by",))
REPLY_BODY = record(
    "Give `text`, or a `template` to draft from in the channel's tone and the customer's "
    "language (text wins when both are given)",
    {
        "text": nullable(STRING),
        "template": nullable({**STRING, "description": "tone template name, e.g. apology; "
                                                       "lowercase letters, digits, - and _"}),
        "send": {"type": "boolean", "default": False,
                 "description": "post it on the platform (the source needs send_replies)"},
        "by": BY,
    },
    optional=("text", "template", "send", "by"),
    anyOf=[{"required": ["text"], "properties": {"text": {"type": "string", "minLength": 1}}},
           {"required": ["template"],
            "properties": {"template": {"type": "string", "pattern": "^[a-z0-9_-]{1,50}$"}}}],
)
API_BY: Schema = nullable({**STRING, "maxLength": 100, "pattern": NO_NUL,
                           "description": 'who acts, recorded as api:<by> in the audit'})
IDENTITY_BODY = record("Link an identity to the customer", {
    "kind": enum(("handle", "email", "phone", "crm")),
    "value": {**STRING, "minLength": 1, "maxLength": 320, "pattern": WORDS},
    "channel": nullable({**STRING, "maxLength": 30, "pattern": NO_NUL,
                         "description": "needed for a handle"}),
    "by": API_BY,
}, optional=("channel", "by"))
MERGE_BODY = record("Merge another customer into this one", {
    "from": {**INTEGER, "minimum": 1, "description": "the customer whose records move here"},
    "by": API_BY,
}, optional=("by",))
SPLIT_BODY = record("Split one identity (and its account's mentions) off", {
    "identity": {**INTEGER, "minimum": 1},
    "by": API_BY,
}, optional=("by",))
UNDO_BODY = record("Undo a link, merge or split", {"by": API_BY}, optional=("by",))
NOTE_BODY = record("A note or an offer for the customer's timeline", {
    "kind": {**enum(("note", "offer")), "default": "note"},
    "text": {**STRING, "minLength": 1, "maxLength": 10000, "pattern": WORDS},
    "author": nullable({**STRING, "maxLength": 100, "pattern": NO_NUL}),
}, optional=("kind", "author"))
CONTACT_BODY = record("One call-centre call of the customer", {
    "phone": {**STRING, "maxLength": 40,
              "description": "the caller's number in any format (read in "
                             "customers.default_region without +country); becomes the "
                             "customer's unless another customer holds it (409). Required "
                             "when the outcome promises a callback"},
    "started_at": {**STRING, "description": "ISO 8601; without an offset, in the configured "
                                            "time zone; default now"},
    "call_id": {**STRING, "maxLength": 190,
                "description": "the call centre's id; without it, phone and time identify "
                               "the call"},
    "duration": {"type": ["integer", "string"],
                 "description": "seconds, or 4:32, or 4m32s"},
    "agent": nullable({**STRING, "maxLength": 100}),
    "topic": nullable({**STRING, "maxLength": 200}),
    "summary": nullable({**STRING, "maxLength": 10000}),
    "outcome": nullable({**STRING, "maxLength": 100,
                         "description": "callback, callback_promised, geri arama … promise "
                                        "a callback: an open mention on channel phone"}),
    "name": nullable({**STRING, "maxLength": 200, "description": "the caller's name"}),
    "by": API_BY,
}, optional=("phone", "started_at", "call_id", "duration", "agent", "topic", "summary",
             "outcome", "name", "by"))
CONTACT = record("A call-centre call on the customer's timeline", {
    "id": INTEGER,
    "customer_id": INTEGER,
    "call_id": {**STRING, "description": "the call id given, or sha256:… of phone and time"},
    "phone": nullable({**STRING, "description": "E.164"}),
    "started_at": TIME,
    "duration_seconds": nullable(COUNT),
    "agent": nullable(STRING),
    "topic": nullable(STRING),
    "summary": STRING,
    "outcome": nullable(STRING),
    "callback_mention_id": nullable({**INTEGER, "description": "the open mention tracking "
                                                               "the promised callback"}),
    "recorded_at": TIME,
})
PUSH_BODY: Schema = {
    "description": "One mention, or a non-empty list of them; one bad object rejects all",
    "oneOf": [ref("MentionIn"),
              {"type": "array", "minItems": 1, "items": ref("MentionIn")}],
}

META_DELIVERY: Schema = {
    "type": "object",
    "description": ("Meta's webhook body, for `instagram` sources (`object: instagram`, fields "
                    "`comments` and `mentions`) and `facebook` ones (`object: page`, field "
                    "`feed`, `verb: add`), signed in X-Hub-Signature-256 with the app secret. "
                    "A change that cannot be used is kept in rejected_items, not a 422."),
    "required": ["object", "entry"],
    "properties": {
        "object": {"type": "string", "enum": ["instagram", "page"]},
        "entry": {"type": "array", "items": {
            "type": "object",
            "properties": {
                "id": STRING,
                "time": {"type": "integer"},
                "changes": {"type": "array", "items": {
                    "type": "object", "required": ["field", "value"],
                    "properties": {"field": STRING, "value": {"type": "object"}}}},
            },
        }},
    },
}

WEBHOOK_BODY: Schema = {
    "description": "A `webhook` source's mentions, or Meta's delivery for a Meta source",
    "anyOf": [ref("PushRequest"), ref("MetaDelivery")],
}

COMPONENTS: dict[str, Schema] = {
    "Error": error(),
    "Author": AUTHOR,
    "Sla": SLA,
    "Mention": MENTION,
    "MentionEvent": EVENT,
    "MentionDetail": MENTION_DETAIL,
    "MentionPage": MENTION_PAGE,
    "CustomerHistoryItem": HISTORY_ITEM,
    "Customer": CUSTOMER,
    "CustomerSummary": CUSTOMER_SUMMARY,
    "CustomerPage": CUSTOMER_PAGE,
    "CustomerIdentity": IDENTITY,
    "TimelineItem": TIMELINE_ITEM,
    "CustomerLink": CUSTOMER_LINK,
    "CustomerChange": CUSTOMER_CHANGE,
    "CustomerNote": NOTE,
    "CustomerContact": CONTACT,
    "IdentityRequest": IDENTITY_BODY,
    "MergeRequest": MERGE_BODY,
    "SplitRequest": SPLIT_BODY,
    "UndoRequest": UNDO_BODY,
    "NoteRequest": NOTE_BODY,
    "ContactRequest": CONTACT_BODY,
    "Agent": AGENT,
    "AgentList": AGENT_LIST,
    "StateCounts": STATE_COUNTS,
    "SlaSummary": SLA_SUMMARY,
    "Source": SOURCE,
    "ReadBudget": READ_BUDGET,
    "BrandReplies": BRAND_REPLIES,
    "SourceList": SOURCE_LIST,
    "Alert": ALERT,
    "AlertList": ALERT_LIST,
    "ReplyDraft": REPLY_DRAFT,
    "ReplySent": REPLY_SENT,
    "Draft": DRAFT,
    "TemplateCatalog": TEMPLATE_CATALOG,
    "PushResult": PUSH_RESULT,
    "BrandShare": BRAND_SHARE,
    "ShareOfVoiceChannel": SOV_CHANNEL,
    "ShareOfVoiceDay": SOV_DAY,
    "ShareOfVoice": SHARE_OF_VOICE,
    "MentionIn": MENTION_IN,
    "AuthorIn": AUTHOR_IN,
    "AssignRequest": ASSIGN_BODY,
    "RespondRequest": RESPOND_BODY,
    "IgnoreRequest": IGNORE_BODY,
    "AgentStatusRequest": AGENT_STATUS_BODY,
    "ReplyRequest": REPLY_BODY,
    "PushRequest": PUSH_BODY,
    "MetaDelivery": META_DELIVERY,
    "GraphUsage": GRAPH_USAGE,
    "WebhookDelivery": WEBHOOK_BODY,
}
