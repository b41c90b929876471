"""Instagram (Graph API, a professional account): comments under the account's media and
comments elsewhere that @mention it, answered in place.

Meta pushes both to `POST /api/v1/webhooks/{source_id}` (fields `comments` and
`mentions`), but does not keep a delivery it could not hand over, so the source also
polls as a safety net: the `recent_media` newest media, then each one's comments (with
their replies, cursor paging), keeping those newer than the newest comment already seen
(minus a small overlap). A comment that comes both ways has one id and is stored once.
Comments that @mention the account on other people's media only arrive by webhook: the
Graph API has no list of them to poll.

The account's own comments (its username, read once with `GET /{account_id}`) that answer
a comment are native replies: they stop that customer's clock. Replies from Listener go
to `POST /{comment-id}/replies`, or `POST /{account_id}/mentions` for a mention.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import Field

from connectors.base import (
    Batch,
    RawAuthor,
    RawItem,
    Rejected,
    ReplyTarget,
    SentReply,
    SourceError,
)
from connectors.meta import (
    OVERLAP,
    PAUSE_AT,
    GraphClient,
    MetaSource,
    MetaWebhooks,
    graph_time,
    object_id,
    read_mark,
    snippet,
    webhook_changes,
    write_mark,
)

COMMENT_FIELDS = "id,text,username,timestamp,parent_id"
COMMENTS_WITH_REPLIES = f"{COMMENT_FIELDS},replies{{{COMMENT_FIELDS}}}"
MEDIA_FIELDS = "id,caption,permalink,timestamp"
MENTION_PREFIX = "mention:"  # thread of a comment on someone else's media


class InstagramSource(MetaSource):
    default_channel: ClassVar[str | None] = "instagram"

    kind: Literal["instagram"]
    account_id: str = Field(pattern=r"^\d+$")
    recent_media: int = Field(10, ge=1, le=50)


def comment_item(comment: Any, thread: str, url: str | None, own_username: str | None,
                 channel: str) -> RawItem | None:
    """One IG Comment; None for the account's own comment that answers nobody."""
    if not isinstance(comment, dict):
        raise ValueError("a comment that is not a JSON object")
    comment_id = object_id(comment.get("id"))
    if comment_id is None:
        raise ValueError("id is missing")
    text, username = comment.get("text"), comment.get("username")
    if not isinstance(text, str):
        raise ValueError("text is missing")
    if not isinstance(username, str) or not username:
        raise ValueError("username is missing")
    created_at = graph_time(comment.get("timestamp"))
    parent = object_id(comment.get("parent_id"))
    by_brand = own_username is not None and username.casefold() == own_username.casefold()
    if by_brand and parent is None:
        return None
    return RawItem(external_id=comment_id, text=text, created_at=created_at, channel=channel,
                   author=RawAuthor(username, username), url=url, in_reply_to=parent,
                   thread=thread, by_brand=by_brand)


@dataclass
class Poll:
    since: datetime
    newest: datetime
    items: dict[str, RawItem] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)


class InstagramConnector(MetaWebhooks):
    kind: ClassVar[str] = "instagram"
    Config: ClassVar[type[MetaSource]] = InstagramSource
    polled: ClassVar[bool] = True
    reply_limit: ClassVar[int | None] = 2200

    def __init__(self, config: InstagramSource):
        self.config = config
        self.graph = GraphClient(config)
        self._username: str | None = None
        self._permalinks: dict[str, str] = {}

    @classmethod
    def from_config(cls, source: Any) -> InstagramConnector:
        return cls(source)

    def __repr__(self) -> str:
        return f"InstagramConnector({self.config.id!r}, account {self.config.account_id})"

    @property
    def _channel(self) -> str:
        return self.config.channel or self.kind

    async def _own_username(self, now: datetime) -> str:
        """Asked once per process: it tells the brand's replies from the customers'."""
        if self._username is None:
            document = await self.graph.get((self.config.account_id,),
                                            {"fields": "username"}, now)
            username = document.get("username")
            if not isinstance(username, str) or not username:
                raise SourceError("Meta answered no username for account_id "
                                  f"{self.config.account_id}")
            self._username = username
        return self._username

    # polling

    async def fetch(self, cursor: str | None, now: datetime) -> Batch:
        mark = read_mark(cursor, now, self.config.backfill)
        poll = Poll(since=mark - OVERLAP, newest=mark)
        username = await self._own_username(now)
        document = await self.graph.get(
            (self.config.account_id, "media"),
            {"fields": MEDIA_FIELDS, "limit": str(self.config.recent_media)}, now)
        media = document.get("data")
        if not isinstance(media, list):
            raise SourceError("Meta answered no `data` list for the account's media")
        for medium in media[:self.config.recent_media]:
            media_id = object_id(medium.get("id")) if isinstance(medium, dict) else None
            if media_id is None:
                poll.rejected.append(Rejected("media without an id", snippet(medium)))
                continue
            permalink = medium.get("permalink")
            if isinstance(permalink, str) and permalink:
                self._permalinks[media_id] = permalink
            await self._comments(media_id, username, poll, now)
            if self.graph.usage.peak >= PAUSE_AT:
                break  # the rest waits for the next poll
        items = sorted(poll.items.values(), key=lambda item: item.created_at)
        return Batch(items=items, rejected=poll.rejected, cursor=write_mark(poll.newest),
                     not_before=self.graph.usage.pause_until(now))

    async def _comments(self, media_id: str, username: str, poll: Poll, now: datetime) -> None:
        url = self._permalinks.get(media_id)
        async for page in self.graph.pages((media_id, "comments"),
                                           {"fields": COMMENTS_WITH_REPLIES, "limit": "50"},
                                           now, self.config.max_pages):
            for comment in page.data:
                replies = comment.get("replies") if isinstance(comment, dict) else None
                nested = replies.get("data") if isinstance(replies, dict) else None
                for one in [comment, *(nested if isinstance(nested, list) else [])]:
                    self._take(one, media_id, url, username, poll)

    def _take(self, comment: Any, thread: str, url: str | None, username: str | None,
              poll: Poll) -> None:
        try:
            item = comment_item(comment, thread, url, username, self._channel)
        except ValueError as exc:
            poll.rejected.append(Rejected(str(exc), snippet(comment), object_id(
                comment.get("id")) if isinstance(comment, dict) else None))
            return
        if item is None or item.created_at < poll.since:
            return
        poll.items[item.external_id] = item
        poll.newest = max(poll.newest, item.created_at)

    def interval(self, now: datetime) -> timedelta | None:
        return self.graph.usage.interval(self.config.interval)

    def status(self, now: datetime) -> dict[str, Any]:
        return {"graph_usage": self.graph.usage.status(),
                "brand_replies": {"watched": self._username is not None,
                                  "accounts": [self._username] if self._username else []}}

    # webhooks

    async def webhook_items(self, body: bytes, now: datetime) -> tuple[list[RawItem],
                                                                       list[Rejected]]:
        """Items of a signed delivery. A comment Meta describes too thinly (a mention
        whose text cannot be read back) is rejected, its neighbours kept."""
        poll = Poll(since=datetime.min.replace(tzinfo=UTC), newest=now)
        username = await self._username_if_known(now)
        for change in webhook_changes(body, "instagram"):
            value = change.value
            if change.field == "comments":
                media = value.get("media") if isinstance(value.get("media"), dict) else {}
                media_id = object_id(media.get("id")) or "unknown"
                sender = value.get("from") if isinstance(value.get("from"), dict) else {}
                comment = {"id": value.get("id"), "text": value.get("text"),
                           "username": sender.get("username"), "timestamp": change.time,
                           "parent_id": value.get("parent_id")}
                url = await self._permalink(media_id, now)
                self._take(comment, media_id, url, username, poll)
            elif change.field == "mentions":
                await self._mention(value, username, poll, now)
        return list(poll.items.values()), poll.rejected

    async def _username_if_known(self, now: datetime) -> str | None:
        try:
            return await self._own_username(now)
        except SourceError:
            return None

    async def _permalink(self, media_id: str, now: datetime) -> str | None:
        """Comments have no URL of their own; their media's permalink is asked once."""
        if media_id not in self._permalinks and media_id != "unknown":
            try:
                document = await self.graph.get((media_id,), {"fields": "permalink"}, now)
            except SourceError:
                return None
            if isinstance(document.get("permalink"), str):
                self._permalinks[media_id] = document["permalink"]
        return self._permalinks.get(media_id)

    async def _mention(self, value: dict[str, Any], username: str | None, poll: Poll,
                       now: datetime) -> None:
        """A mention delivery names only the comment and media: read the comment back."""
        comment_id, media_id = object_id(value.get("comment_id")), object_id(
            value.get("media_id"))
        if comment_id is None or media_id is None:
            poll.rejected.append(Rejected("mention without comment_id or media_id",
                                          snippet(value), comment_id))
            return
        fields = (f"mentioned_comment.comment_id({comment_id})"
                  "{id,text,username,timestamp,media{id,permalink}}")
        try:
            document = await self.graph.get((self.config.account_id,), {"fields": fields},
                                            now)
        except SourceError as exc:
            poll.rejected.append(Rejected(f"mention could not be read back: {exc}",
                                          snippet(value), comment_id))
            return
        comment = document.get("mentioned_comment")
        media = comment.get("media") if isinstance(comment, dict) else None
        permalink = media.get("permalink") if isinstance(media, dict) else None
        self._take(comment, MENTION_PREFIX + media_id,
                   permalink if isinstance(permalink, str) else None, username, poll)

    # replying

    def missing_reply_credentials(self) -> list[str]:
        return [] if self.config.access_token.get_secret_value() else ["access_token"]

    async def reply(self, target: ReplyTarget, text: str) -> SentReply:
        now = datetime.now(UTC)
        if target.thread and target.thread.startswith(MENTION_PREFIX):
            body = {"comment_id": target.external_id,
                    "media_id": target.thread.removeprefix(MENTION_PREFIX), "message": text}
            posted = await self.graph.post((self.config.account_id, "mentions"), body,
                                           "Instagram reply", now)
        else:
            posted = await self.graph.post((target.external_id, "replies"),
                                           {"message": text}, "Instagram reply", now)
        return SentReply(posted["id"], target.url)

    async def close(self) -> None:
        await self.graph.close()
