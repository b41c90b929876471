"""deploy/prometheus and deploy/grafana against Debian's real Prometheus: promtool checks the
files and runs the alert rules over made-up series, then a real Prometheus scrapes a real
`listener serve` and must answer every query of the Grafana dashboard with data."""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from connectors.webhook import sign
from listener.config import WEEKDAY_KEYS
from tests.test_serve import SECRET as HOOK_SECRET
from tests.test_serve import free_port, start, wait_ready

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "listener.json"
RULE_GROUPS = {"listener-sources", "listener-alerts", "listener-sla"}
# What Grafana puts in place of its variables; `.*` is the dashboard's "All" channels.
GRAFANA_VALUES = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "15s",
                  "${channel}": ".*", "$channel": ".*"}
TOKEN = "grafana-test-token"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; install Debian's prometheus package "
                    "(apt-get install prometheus), as .ci/run does")
    return path


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("promtool"), *args], capture_output=True, text=True, timeout=120)


def test_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_scrape_config_and_its_rules_pass_promtool_check(tmp_path: Path) -> None:
    for name in ("prometheus.yml", "rules.yml"):
        shutil.copy(PROMETHEUS_DIR / name, tmp_path / name)
    result = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout  # the config really loads rules.yml


# --- the alert rules over made-up series (promtool test rules, one sample a minute) ---------

def series(name: str, labels: dict[str, str], values: list[float | None]) -> dict[str, str]:
    """A promtool input series; None is a missing sample (the series does not exist yet)."""
    text = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{text}}}",
            "values": " ".join("_" if v is None else str(v) for v in values)}


def firing(alertname: str, **labels: str) -> tuple[str, float]:
    names = {"alertname": alertname, "alertstate": "firing", "severity": "warning", **labels}
    text = ",".join(f'{k}="{v}"' for k, v in sorted(names.items()))
    return f"ALERTS{{{text}}}", 1


def firing_at(minute: int, *alerts: tuple[str, float]) -> tuple[int, str, list[Any]]:
    """Exactly these alerts fire at `minute` (and no other)."""
    return minute, 'ALERTS{alertstate="firing"}', list(alerts)


def run_rule_tests(tmp_path: Path, input_series: list[dict[str, str]],
                   checks: list[tuple[int, str, list[tuple[str, float]]]]) -> None:
    shutil.copy(RULES, tmp_path / "rules.yml")
    spec = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": input_series,
            "promql_expr_test": [
                {"expr": expr, "eval_time": f"{minute}m",
                 "exp_samples": [{"labels": labels, "value": value} for labels, value in want]}
                for minute, expr, want in checks
            ],
        }],
    }
    (tmp_path / "rules_test.yml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    result = promtool("test", "rules", str(tmp_path / "rules_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def polled_source(name: str, every: int, minutes: int,
                  healthy_until: int | None = None) -> list[dict[str, str]]:
    """A source polled every `every` minutes that succeeds before minute `healthy_until` and
    fails from then on, as Listener exports it (a counter exists once first incremented)."""
    labels = {"job": "listener", "instance": "listener-a:8080", "source": name}
    polls = range(0, minutes + 1, every)
    good = [p for p in polls if healthy_until is None or p < healthy_until]
    bad = [p for p in polls if p not in good]

    def count(times: list[int], minute: int) -> int | None:
        return sum(1 for t in times if t <= minute) or None

    def last(minute: int) -> int | None:
        done = [t * 60 for t in good if t <= minute]
        return done[-1] if done else None

    out = []
    for outcome, times in (("ok", good), ("error", bad)):
        if times:
            out.append(series("listener_source_polls_total", {**labels, "outcome": outcome},
                              [count(times, m) for m in range(minutes + 1)]))
    if good:
        out.append(series("listener_source_last_success_timestamp_seconds", labels,
                          [last(m) for m in range(minutes + 1)]))
    return out


def test_source_down_waits_three_intervals_and_at_least_half_an_hour(tmp_path: Path) -> None:
    minutes = 600
    down = [*polled_source("fast", 5, minutes, healthy_until=480),
            *polled_source("slow", 30, minutes, healthy_until=480),
            *polled_source("hourly", 60, minutes)]

    def alert(source: str) -> tuple[str, float]:
        return firing("ListenerSourceDown", job="listener", source=source)

    run_rule_tests(tmp_path, down, [
        firing_at(300),
        firing_at(500),                  # fast: 25 min since its last success at 7h55
        firing_at(515, alert("fast")),   # 40 min; slow: 65 min, hourly: 35 min, both normal
        firing_at(530, alert("fast")),   # slow: 80 min, under 3 × 30 min
        firing_at(590, alert("fast"), alert("slow")),  # slow: 140 min; hourly: 50 min
    ])


def test_a_source_that_never_polled_successfully_alerts_after_half_an_hour(
        tmp_path: Path) -> None:
    minutes = 60
    sources = [*polled_source("broken", 5, minutes, healthy_until=0),
               *polled_source("fine", 5, minutes)]
    run_rule_tests(tmp_path, sources, [
        firing_at(25),
        firing_at(45, firing("ListenerSourceNeverSucceeded", job="listener", source="broken")),
    ])


def test_outbox_stuck_fires_once_after_ten_minutes_pending(tmp_path: Path) -> None:
    pending = [0] * 5 + [2] * 9 + [0] * 5 + [4] * 22   # minutes 0-40
    replicas = [series("listener_alert_outbox_pending",
                       {"job": "listener", "instance": instance}, pending)
                for instance in ("listener-a:8080", "listener-b:8080")]
    stuck = firing("ListenerAlertOutboxStuck", job="listener")
    run_rule_tests(tmp_path, replicas, [
        firing_at(13), firing_at(18),   # 9 minutes pending, then delivered
        firing_at(27),                  # pending again since minute 19
        firing_at(31, stuck),           # one alert, not one per replica
    ])


def sla_counters(channel: str, policy: str, every: int, met: int, breaches: int,
                 minutes: int) -> list[dict[str, str]]:
    """Counters go up every `every` minutes; one never incremented does not exist."""
    labels = {"job": "listener", "instance": "listener-a:8080", "channel": channel,
              "policy": policy}
    return [series(name, labels, [step * (m // every) for m in range(minutes + 1)])
            for name, step in (("listener_sla_met_total", met),
                               ("listener_sla_breaches_total", breaches)) if step]


def test_sla_compliance_and_breach_rate_alerts(tmp_path: Path) -> None:
    minutes = 180
    counters = [*sla_counters("web", "same-day", 20, met=19, breaches=1, minutes=minutes),
                *sla_counters("web", "vip-2h", 30, met=8, breaches=2, minutes=minutes),
                *sla_counters("twitter", "social", 10, met=100, breaches=1, minutes=minutes),
                *sla_counters("email", "nobody-answers", 60, met=0, breaches=1,
                              minutes=minutes),
                *sla_counters("chat", "all-answered", 30, met=5, breaches=0, minutes=minutes)]
    percent = [(f'{{job="listener",policy="{policy}"}}', value) for policy, value in
               (("same-day", 95), ("vip-2h", 80), ("social", 99), ("nobody-answers", 0),
                ("all-answered", 100))]
    run_rule_tests(tmp_path, counters, [
        (180, "round(100 * listener_policy:sla_compliance:ratio1d)", percent),
        firing_at(180,
                  firing("ListenerSlaComplianceLow", job="listener", policy="vip-2h"),
                  firing("ListenerSlaComplianceLow", job="listener", policy="nobody-answers"),
                  # 6 breaches an hour; vip-2h has 4, same-day 3
                  firing("ListenerSlaBreachRateHigh", job="listener", channel="twitter",
                         policy="social")),
    ])


# --- a real Prometheus scraping a real `listener serve` -------------------------------------

class Upstream:
    """An empty RSS feed for a polled source, and a Slack webhook that takes every alert."""

    def __init__(self) -> None:
        self.slack_messages: list[str] = []

    async def feed(self, request: web.Request) -> web.Response:
        body = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                "<title>Acme news</title><link>https://news.example/</link></channel></rss>")
        return web.Response(text=body, content_type="application/rss+xml")

    async def slack(self, request: web.Request) -> web.Response:
        self.slack_messages.append(await request.text())
        return web.Response(text="ok")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/feed.xml", self.feed)
        app.router.add_post("/slack", self.slack)
        return app


def write_listener_config(tmp_path: Path, port: int, upstream: str) -> Path:
    """Open around the clock, so a 20 s deadline is 20 s on any day of the week."""
    config = {
        "timezone": "UTC",
        "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/listener.db"},
        "server": {"host": "127.0.0.1", "port": port, "api_tokens": [TOKEN]},
        "calendar": {"hours": {day: "00:00-24:00" for day in WEEKDAY_KEYS}},
        "sources": [
            {"id": "hook", "kind": "webhook", "secret": "${HOOK_SECRET}"},
            {"id": "news", "kind": "rss", "url": f"{upstream}/feed.xml", "interval": "1s"},
            {"id": "gone", "kind": "rss", "url": f"http://127.0.0.1:{free_port()}/feed.xml",
             "interval": "1s"},
        ],
        "agents": [{"id": "ayse", "channels": ["web", "chat"], "max_open": 1000}],
        "sla": {"policies": [{"name": "fast", "first_response": "20s", "at_risk": "10s"}]},
        "alerts": [{"kind": "slack", "webhook_url": f"{upstream}/slack",
                    "on": ["at_risk", "breached"]}],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def write_prometheus_config(directory: Path, listener_port: int) -> Path:
    """The shipped prometheus.yml, scraping and evaluating every second."""
    directory.mkdir()
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    (job,) = config["scrape_configs"]
    job["static_configs"] = [{"targets": [f"127.0.0.1:{listener_port}"]}]
    shutil.copy(RULES, directory / "rules.yml")
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def start_prometheus(config: Path, port: int) -> subprocess.Popen[bytes]:
    with (config.parent / "prometheus.log").open("ab") as log:
        return subprocess.Popen(
            [tool("prometheus"), f"--config.file={config}",
             f"--storage.tsdb.path={config.parent / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            cwd=config.parent, stdout=log, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class PrometheusApi:
    def __init__(self, session: aiohttp.ClientSession, base: str):
        self.session = session
        self.base = base

    async def get(self, path: str, **params: str) -> Any:
        async with self.session.get(f"{self.base}{path}", params=params) as response:
            body = await response.json()
        assert body["status"] == "success", body
        return body["data"]

    async def values(self, expr: str) -> list[float]:
        data = await self.get("/api/v1/query", query=expr)
        return [float(sample["value"][1]) for sample in data["result"]]


def dashboard_queries() -> dict[str, str]:
    """Every panel query, with Grafana's variables replaced as Grafana would."""
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    queries = {}
    for panel in board["panels"]:
        for target in panel["targets"]:
            # a data source uid from someone's Grafana would break the board everywhere else
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            expr = target["expr"]
            for variable, value in GRAFANA_VALUES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"{panel['title']}: unknown variable in {expr}"
            queries[f"{panel['title']} [{target['refId']}]"] = expr
    return queries


async def push(session: aiohttp.ClientSession, base: str, prefix: str,
               channels: list[str]) -> None:
    now = datetime.now(UTC).isoformat()
    items = [{"id": f"{prefix}-{i}", "text": f"Order {prefix}/{i} has not arrived",
              "created_at": now, "channel": channel,
              "author": {"handle": f"{prefix}-{i}", "name": "Customer"}}
             for i, channel in enumerate(channels)]
    body = json.dumps(items).encode()
    async with session.post(f"{base}/api/v1/webhooks/hook", data=body,
                            headers={"X-Listener-Signature": sign(HOOK_SECRET, body)}) as response:
        assert response.status == 202, await response.text()


async def respond(session: aiohttp.ClientSession, base: str, external_ids: list[str]) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with session.get(f"{base}/api/v1/mentions", params={"limit": "500"},
                           headers=auth) as response:
        ids = {m["external_id"]: m["id"] for m in (await response.json())["items"]}
    for external_id in external_ids:
        async with session.post(f"{base}/api/v1/mentions/{ids[external_id]}/respond",
                                json={"by": "ayse"}, headers=auth) as response:
            assert response.status == 200, await response.text()


async def queries_without_data(api: PrometheusApi, queries: dict[str, str]) -> dict[str, str]:
    missing = {}
    for name, expr in queries.items():
        if not any(math.isfinite(v) for v in await api.values(expr)):
            missing[name] = expr
    return missing


async def until_scraped(api: PrometheusApi, prometheus: subprocess.Popen[bytes], log: Path,
                        times: int = 3) -> None:
    """Until Prometheus has scraped Listener successfully `times` times."""
    deadline = time.monotonic() + 30
    expr = 'sum_over_time(up{job="listener"}[1m])'
    while time.monotonic() < deadline:
        if prometheus.poll() is not None:
            pytest.fail("prometheus exited early:\n" + log.read_text(errors="replace"))
        try:
            if any(v >= times for v in await api.values(expr)):
                return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.5)
    pytest.fail("prometheus did not scrape listener serve:\n" + log.read_text(errors="replace"))


@pytest.mark.slow
async def test_prometheus_answers_every_dashboard_query_from_a_running_listener(
        aiohttp_server: Any, tmp_path: Path) -> None:
    upstream = Upstream()
    server = await aiohttp_server(upstream.app())
    listener_port, prometheus_port = free_port(), free_port()
    base = f"http://127.0.0.1:{listener_port}"
    listener = start(write_listener_config(tmp_path, listener_port,
                                           str(server.make_url("")).rstrip("/")), tmp_path)
    prometheus = None
    try:
        await wait_ready(base, listener, tmp_path)
        prometheus_config = write_prometheus_config(tmp_path / "prometheus", listener_port)
        prometheus = start_prometheus(prometheus_config, prometheus_port)
        async with aiohttp.ClientSession() as session:
            api = PrometheusApi(session, f"http://127.0.0.1:{prometheus_port}")
            await until_scraped(api, prometheus, prometheus_config.parent / "prometheus.log")
            # Two rounds, seconds apart, so every counter moves while Prometheus watches.
            # Each round: one mention per channel answered at once (met), the rest left open
            # to go at risk after 10 s and breach after 20 s.
            for round_ in ("a", "b"):
                await push(session, base, round_, ["web", "web", "web", "chat", "chat"])
                await respond(session, base, [f"{round_}-0", f"{round_}-3"])
                await asyncio.sleep(3)
            queries = dashboard_queries()
            deadline = time.monotonic() + 30  # the last breaches come 20 s after round b
            missing = await queries_without_data(api, queries)
            while missing and time.monotonic() < deadline:
                await asyncio.sleep(1)
                missing = await queries_without_data(api, missing)
            rules = await api.get("/api/v1/rules")
            alerts = (await api.get("/api/v1/alerts"))["alerts"]
    finally:
        if prometheus is not None:
            stop(prometheus)
        stop(listener)

    assert {group["name"] for group in rules["groups"]} == RULE_GROUPS
    broken = [(rule["name"], rule.get("lastError")) for group in rules["groups"]
              for rule in group["rules"] if rule["health"] != "ok"]
    assert not broken, broken
    # The failing source's rule matched Listener's real labels; it fires after 30 min.
    assert {(a["labels"]["alertname"], a["labels"].get("source"), a["state"]) for a in alerts} \
        >= {("ListenerSourceNeverSucceeded", "gone", "pending")}
    assert not missing, "dashboard queries without data:\n" + "\n".join(
        f"- {name}: {expr}" for name, expr in missing.items())
    assert upstream.slack_messages, "no alert reached the Slack webhook"
