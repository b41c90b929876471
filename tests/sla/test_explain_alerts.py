"""`listener sla explain` shows every warning and the escalation an operator configured."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import BASE_CONFIG
from tests.test_cli import MONDAY_1630, line, listener, stored_mentions, write_config


def test_explain_lists_the_warnings_the_breach_and_the_escalation(tmp_path: Path,
                                                                 db_url: str) -> None:
    social, rest = BASE_CONFIG["sla"]["policies"]
    policies = [{**social, "at_risk": ["3h", "1h"], "escalate_after": "1h",
                 "escalate_to": ["ayse"]}, rest]
    config = write_config(tmp_path, db_url, sla={"policies": policies})
    data = tmp_path / "one.jsonl"
    data.write_text(line("late-tweet", MONDAY_1630) + "\n", encoding="utf-8")
    ingested = listener("ingest", "--config", str(config), str(data))
    assert ingested.returncode == 0, ingested.stderr
    [mention] = stored_mentions(db_url)

    result = listener("sla", "explain", "--config", str(config), str(mention.id))
    assert result.returncode == 0, result.stderr
    lines = [text.strip() for text in result.stdout.splitlines()]
    # Why, step by step: due Tuesday 18:00, warned at 15:00 and 17:00, escalated Wednesday.
    assert "at risk 3h before → 15:00" in lines
    assert "at risk 1h before → 17:00" in lines
    assert ("escalates to ayse 1h of business time after the deadline → "
            "2026-11-25 10:00 +03:00") in lines
    # What the engine will alert, in order.
    start = lines.index("alert moments (stored deadline):")
    assert lines[start + 1:start + 5] == [
        "at-risk warning 1 2026-11-24 15:00",
        "at-risk warning 2 2026-11-24 17:00",
        "breach 2026-11-24 18:00",
        "escalation 2026-11-25 10:00",
    ]
