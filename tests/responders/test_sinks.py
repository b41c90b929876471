"""Each sink against a real local stand-in of its service: what it sends (hostile mention
text escaped for the format, signatures that verify, Apprise reaching a real target),
and how every sink reports each way a service can fail."""

from __future__ import annotations

import json
import re
import socket
from datetime import timedelta
from typing import Any

import pytest

from connectors.webhook import SIGNATURE_HEADER, sign
from listener.clock import FixedClock
from listener.metrics import Metrics
from listener.store import Store
from responders.alerts import SINKS, build_sink
from responders.alerts.base import (
    Alert,
    SinkError,
    SinkRateLimited,
    SinkRefused,
    Throttle,
)
from responders.alerts.mattermost import MattermostSink
from responders.alerts.outbox import AlertOutbox
from responders.alerts.slack import SlackSink
from tests.responders.hooks import DASHBOARD, HANG, T0, payload, sink_config, write_alerts

HOSTILE = "<!channel> <script>&"
HOSTILE_AUTHOR = {"handle": "<@U999>", "name": "Eve & <b>co</b>"}


async def deliver_through_outbox(store: Store, entry: dict[str, Any],
                                 payloads: list[dict[str, Any]]) -> None:
    config = sink_config(entry)
    sink = build_sink(config)
    sink_outbox = AlertOutbox(store, {config.name: sink}, Metrics(), FixedClock(T0))
    await write_alerts(store, config.name, payloads)
    assert await sink_outbox.run_once(T0) == len(payloads)
    await sink_outbox.close()


def slack_texts(body: dict[str, Any]) -> list[str]:
    texts = [body["text"]]
    for block in body["blocks"]:
        if "text" in block:
            texts.append(block["text"]["text"])
        texts += [element["text"] for element in block.get("elements", [])]
    return texts


async def test_slack_escapes_hostile_mention_text(store: Store, start_hook: Any) -> None:
    hook, base = await start_hook()
    await deliver_through_outbox(
        store, {"kind": "slack", "webhook_url": base + "/slack"},
        [payload("breached", text=HOSTILE, author=HOSTILE_AUTHOR),
         payload("at_risk", id=2, text=HOSTILE, author=HOSTILE_AUTHOR,
                 deadline_at=T0 + timedelta(hours=2))])
    [received] = hook.received          # grouped: both lines escaped as well
    single_body = SlackSink(SlackSink.Config.model_validate(
        {"kind": "slack", "webhook_url": base + "/slack"})).body(
        [Alert(1, "slack", "breached", "k", payload(text=HOSTILE, author=HOSTILE_AUTHOR), T0)],
        T0)
    for body in (received.json(), single_body):
        texts = slack_texts(body)
        assert any("&lt;!channel&gt; &lt;script&gt;&amp;" in text for text in texts)
        assert any("Eve &amp; &lt;b&gt;co&lt;/b&gt; (&lt;@U999&gt;)" in text for text in texts)
        # The only markup left is ours: the link to the mention and the assignee's ping.
        markup = {tag for text in texts for tag in re.findall(r"<[^>]*>", text)}
        assert markup == {f"<{DASHBOARD.format(id=1)}|mention #1>", "<@U024BE7LH>"} | (
            {f"<{DASHBOARD.format(id=2)}|mention #2>"} if body is not single_body else set())


async def test_mattermost_escapes_hostile_mention_text(store: Store, start_hook: Any) -> None:
    hook, base = await start_hook()
    text = HOSTILE + " @channel [your bank](https://evil.example) *bold*"
    await deliver_through_outbox(store, {"kind": "mattermost", "webhook_url": base + "/mm"},
                                 [payload("breached", text=text, author=HOSTILE_AUTHOR)])
    body = hook.received[0].json()
    assert set(body) == {"text"}
    shown = body["text"]
    assert r"&lt;\!channel&gt; &lt;script&gt;&amp;" in shown
    assert "@\u200bchannel" in shown and "@channel" not in shown
    assert r"\[your bank\]\(https://evil.example\) \*bold\*" in shown
    assert "<" not in shown.replace("&lt;", "")
    assert f"[mention \\#1]({DASHBOARD.format(id=1)})" in shown


def test_a_hostile_link_is_defused_or_dropped() -> None:
    config = SlackSink.Config.model_validate({"kind": "slack",
                                              "webhook_url": "https://hooks.example/x"})
    sink = SlackSink(config)
    for url, shown in (("https://evil.example/a|b>c", "<https://evil.example/a%7Cb%3Ec|"),
                       ("javascript:alert(1)", None)):
        alert = Alert(1, "s", "breached", "k", payload(dashboard_url=None, url=url), T0)
        text = sink.body([alert], T0)["blocks"][0]["text"]["text"]
        if shown:
            assert shown in text
        else:
            assert "javascript" not in text and "mention #1" in text
    mm = MattermostSink(MattermostSink.Config.model_validate(
        {"kind": "mattermost", "webhook_url": "https://mm.example/hooks/x"}))
    alert = Alert(1, "s", "breached", "k", payload(dashboard_url=None,
                                                   url="https://x.example/a)(b c"), T0)
    assert "(https://x.example/a%29%28b%20c)" in mm.body([alert], T0)["text"]


def test_an_alert_says_where_who_and_how_long_at_delivery() -> None:
    sink = SlackSink(SlackSink.Config.model_validate(
        {"kind": "slack", "webhook_url": "https://hooks.example/x"}))
    at_risk = Alert(1, "s", "at_risk", "k", payload("at_risk"), T0)
    late = Alert(2, "s", "breached", "k", payload(
        "breached", id=2, deadline_at=T0 - timedelta(minutes=35), assignee_slack="@ayse",
        dashboard_url=None), T0)
    text = sink.body([at_risk], T0)["blocks"][0]["text"]["text"]
    assert text.splitlines() == [
        f"*SLA at risk* · twitter · <{DASHBOARD.format(id=1)}|mention #1>",
        "*Author:* Jane Doe (jane)",
        "> My parcel never arrived, third week now",
        "*Assignee:* <@U024BE7LH> · *Policy:* social-same-day · *2h 10m left*",
    ]
    text = sink.body([late], T0)["blocks"][0]["text"]["text"]
    assert "<https://twitter.com/jane/status/2|mention #2>" in text   # no public_url
    assert "*Assignee:* @ayse" in text and "*overdue by 35m*" in text
    assert sink.body([late], T0)["text"] == (
        "SLA breached: twitter mention by Jane Doe (jane), overdue by 35m")
    long = Alert(3, "s", "breached", "k", payload(text="x" * 500), T0)
    excerpt = sink.body([long], T0)["blocks"][0]["text"]["text"].splitlines()[2]
    assert excerpt == "> " + "x" * 299 + "…"


def test_a_spike_shows_its_count_and_escaped_examples() -> None:
    spike = {"kind": "spike", "moment_at": T0.isoformat(), "count": 42, "baseline": 8,
             "window": "1h", "examples": [payload(text=HOSTILE)["mention"]] * 4}
    sink = SlackSink(SlackSink.Config.model_validate(
        {"kind": "slack", "webhook_url": "https://hooks.example/x"}))
    body = sink.body([Alert(1, "s", "spike", "k", spike, T0)], T0)
    lines = body["blocks"][0]["text"]["text"].splitlines()
    assert lines[0] == "*Mention spike*: 42 mentions in 1h (usually 8)"
    assert len(lines) == 4 and all("&lt;!channel&gt;" in line for line in lines[1:])
    assert body["text"] == "Mention spike: 42 mentions"
    breach = Alert(2, "s", "breached", "k2", payload(), T0)
    grouped = sink.body([Alert(1, "s", "spike", "k", spike, T0), breach], T0)
    assert grouped["text"] == "2 SLA alerts (1 breached, 1 mention spike)"


async def test_the_webhook_sink_signs_its_body_like_our_own_webhooks(
        store: Store, start_hook: Any) -> None:
    hook, base = await start_hook()
    await deliver_through_outbox(
        store, {"kind": "webhook", "url": base + "/alerts", "secret": "alert-secret"},
        [payload("breached", text=HOSTILE)])
    [received] = hook.received
    assert received.headers[SIGNATURE_HEADER] == sign("alert-secret", received.raw)
    assert received.headers["Content-Type"] == "application/json"
    body = json.loads(received.raw)
    assert body["kind"] == "breached" and body["mention"]["text"] == HOSTILE
    assert body["time_left_seconds"] == 2 * 3600 + 10 * 60
    assert body["dedupe_key"] == "1:breached:0:webhook-0"


async def test_a_webhook_group_carries_every_alert_in_full(store: Store,
                                                           start_hook: Any) -> None:
    hook, base = await start_hook()
    await deliver_through_outbox(
        store, {"kind": "webhook", "url": base + "/alerts", "secret": "alert-secret"},
        [payload(id=n, deadline_at=T0 - timedelta(minutes=n)) for n in range(1, 13)])
    [received] = hook.received
    body = received.json()
    assert (body["kind"], body["count"]) == ("group", 12)
    assert [a["time_left_seconds"] for a in body["alerts"]] == [-60 * n for n in range(1, 13)]


async def test_apprise_reaches_a_real_target(store: Store, start_hook: Any) -> None:
    hook, base = await start_hook()
    target = base.replace("http://", "json://") + "/notify"
    await deliver_through_outbox(store, {"kind": "apprise", "url": target},
                                 [payload("breached", text=HOSTILE)])
    [received] = hook.received
    assert received.path == "/notify"
    body = received.json()
    assert body["title"] == "SLA breached: twitter mention by Jane Doe (jane), 2h 10m left"
    assert HOSTILE in body["message"] and "2h 10m left" in body["message"]


async def test_two_messages_to_one_webhook_are_a_second_apart() -> None:
    moments, waits = [100.0], []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        moments[0] += seconds

    throttle = Throttle.for_limits(SlackSink.limits)
    throttle.monotonic, throttle.sleep = lambda: moments[0], sleep
    await throttle.wait()
    moments[0] += 0.25
    await throttle.wait()
    moments[0] += 5
    await throttle.wait()
    assert waits == [0.75]


# -- every sink through every way a service fails (Apprise's table-driven tests) ----------

SCENARIOS = {
    "400": ((400, {}, "invalid_payload"), SinkRefused),
    "429": ((429, {"Retry-After": "7"}, "rate_limited"), SinkRateLimited),
    "500": ((500, {}, "internal_error"), SinkError),
    "timeout": (HANG, SinkError),
    "refused": (None, SinkError),
}
CREDENTIAL = "hunter2-credential"


def entry(kind: str, base: str) -> dict[str, Any]:
    """A sink pointed at `base`, with a credential in every private field."""
    path = f"/services/T000/{CREDENTIAL}"
    return {
        "slack": {"webhook_url": base + path},
        "mattermost": {"webhook_url": base + path},
        "webhook": {"url": base + path, "secret": CREDENTIAL},
        "apprise": {"url": base.replace("http://", f"json://user:{CREDENTIAL}@") + "/notify"},
    }[kind] | {"kind": kind, "timeout": timedelta(seconds=0.5)}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("kind", list(SINKS))
async def test_every_sink_reports_each_failure_as_the_worker_needs(
        kind: str, scenario: str, start_hook: Any) -> None:
    answer, expected = SCENARIOS[scenario]
    if answer is None:
        base = f"http://127.0.0.1:{closed_port()}"
    else:
        _, base = await start_hook(answer)
    sink = build_sink(sink_config(entry(kind, base)))
    try:
        with pytest.raises(SinkError) as caught:
            await sink.deliver([Alert(1, "s", "breached", "k", payload(), T0)], T0)
    finally:
        await sink.close()
    error = caught.value
    assert type(error) is expected, f"{kind} {scenario}: {error!r}"
    if isinstance(error, SinkRateLimited):
        assert error.retry_after == (None if kind == "apprise" else 7)
    for field in sink.limits.private:
        assert CREDENTIAL in str(entry(kind, base)[field])
    assert CREDENTIAL not in str(error), "a credential leaked into an error"
    assert "/services/" not in str(error), "a webhook URL leaked into an error"
