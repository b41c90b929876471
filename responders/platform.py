"""Answering in place: a reply posted on the platform itself, as a reply to the mention.

Only sources that set `send_replies: true` and hold their write credentials send; every
other case is a `CannotSend` whose message says what to change. A platform's refusal
(`ReplyRefused`) means nothing was sent and nothing is recorded as sent.
"""

from __future__ import annotations

from typing import Any

from connectors.base import ReplyTarget, SentReply


class CannotSend(Exception):
    """This source cannot post replies from Listener; the message says why."""


def reply_blocker(source_id: str, config: Any, connector: Any) -> str | None:
    """Why a reply cannot be sent through this source, or None when it can."""
    if connector is None or config is None:
        return f"source {source_id!r} is not enabled in this configuration"
    if not callable(getattr(connector, "reply", None)):
        return f"{config.kind} sources cannot post replies from Listener"
    if not getattr(config, "send_replies", False):
        return (f"source {source_id!r} has send_replies: false, so replies stay drafts; "
                "set send_replies: true and its write credentials to post from Listener")
    missing = connector.missing_reply_credentials()
    if missing:
        return (f"source {source_id!r} needs {', '.join(missing)} to post replies "
                "(set them from the environment)")
    return None


async def send_reply(source_id: str, config: Any, connector: Any, target: ReplyTarget,
                     text: str) -> SentReply:
    """Raises CannotSend, or the connector's ReplyRefused."""
    blocker = reply_blocker(source_id, config, connector)
    if blocker is not None:
        raise CannotSend(blocker)
    return await connector.reply(target, text)
