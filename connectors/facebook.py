"""A Facebook Page: visitor posts and comments on the Page, answered in place.

Meta pushes them to `POST /api/v1/webhooks/{source_id}` (`object: page`, field `feed`);
only `verb: add` is taken (an edit or a removal changes nothing already stored). As a
safety net the source polls the `recent_posts` newest posts of the Page feed, then each
post's comments (`filter=stream`: replies too, each with its `parent`), keeping those
newer than the newest already seen (minus a small overlap). Webhook and poll give the
same ids, so an item arriving both ways is stored once.

Posts by the Page itself are not mentions; its comments that answer someone (a reply
under a comment, or a comment on a visitor post) are native replies that stop that
customer's clock. Replies from Listener go to `POST /{id}/comments`, which answers a
comment or, for a visitor post, comments on the post.
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

POST_FIELDS = "id,message,created_time,from,permalink_url"
COMMENT_FIELDS = "id,message,created_time,from,parent{id},permalink_url"
POST_ITEMS = frozenset({"status", "post", "photo", "video", "share"})
PUBLIC_HOST = "https://www.facebook.com"


class FacebookSource(MetaSource):
    default_channel: ClassVar[str | None] = "facebook"

    kind: Literal["facebook"]
    page_id: str = Field(pattern=r"^\d+$")
    recent_posts: int = Field(10, ge=1, le=50)


@dataclass(frozen=True)
class Entry:
    """A post or comment in the fields both the feed and the webhook give."""

    id: Any
    message: Any
    created: Any
    sender: Any
    url: Any
    post_id: str
    parent_id: str | None = None  # the comment this one answers


def entry_item(entry: Entry, page_id: str, visitor_post: bool,
               channel: str) -> RawItem | None:
    """None for the Page's own post, or its own comment that answers nobody."""
    item_id = object_id(entry.id)
    if item_id is None:
        raise ValueError("id is missing")
    if not isinstance(entry.message, str):
        raise ValueError("message is missing")
    created_at = graph_time(entry.created)
    if not isinstance(entry.sender, dict) or object_id(entry.sender.get("id")) is None:
        raise ValueError("from is missing (the token may lack pages_read_user_content)")
    sender_id = object_id(entry.sender.get("id")) or ""
    name = entry.sender.get("name")
    is_post = item_id == entry.post_id
    by_brand = sender_id == page_id
    answered = entry.parent_id or (entry.post_id if visitor_post and not is_post else None)
    if by_brand and (is_post or answered is None):
        return None
    return RawItem(
        external_id=item_id, text=entry.message, created_at=created_at, channel=channel,
        author=RawAuthor(sender_id, name if isinstance(name, str) else ""),
        url=entry.url if isinstance(entry.url, str) and entry.url else
        f"{PUBLIC_HOST}/{item_id}",
        in_reply_to=answered if by_brand else entry.parent_id,
        thread=entry.post_id, by_brand=by_brand)


@dataclass
class Poll:
    since: datetime
    newest: datetime
    items: dict[str, RawItem] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)


class FacebookConnector(MetaWebhooks):
    kind: ClassVar[str] = "facebook"
    Config: ClassVar[type[MetaSource]] = FacebookSource
    polled: ClassVar[bool] = True
    reply_limit: ClassVar[int | None] = 8000

    def __init__(self, config: FacebookSource):
        self.config = config
        self.graph = GraphClient(config)

    @classmethod
    def from_config(cls, source: Any) -> FacebookConnector:
        return cls(source)

    def __repr__(self) -> str:
        return f"FacebookConnector({self.config.id!r}, page {self.config.page_id})"

    @property
    def _channel(self) -> str:
        return self.config.channel or self.kind

    # polling

    async def fetch(self, cursor: str | None, now: datetime) -> Batch:
        mark = read_mark(cursor, now, self.config.backfill)
        poll = Poll(since=mark - OVERLAP, newest=mark)
        document = await self.graph.get(
            (self.config.page_id, "feed"),
            {"fields": POST_FIELDS, "limit": str(self.config.recent_posts)}, now)
        posts = document.get("data")
        if not isinstance(posts, list):
            raise SourceError("Meta answered no `data` list for the Page feed")
        for post in posts[:self.config.recent_posts]:
            post_id = object_id(post.get("id")) if isinstance(post, dict) else None
            if post_id is None:
                poll.rejected.append(Rejected("post without an id", snippet(post)))
                continue
            visitor = self._take(self._post_entry(post, post_id), False, poll)
            await self._comments(post_id, visitor, poll, now)
            if self.graph.usage.peak >= PAUSE_AT:
                break
        items = sorted(poll.items.values(), key=lambda item: item.created_at)
        return Batch(items=items, rejected=poll.rejected, cursor=write_mark(poll.newest),
                     not_before=self.graph.usage.pause_until(now))

    @staticmethod
    def _post_entry(post: dict[str, Any], post_id: str) -> Entry:
        return Entry(post_id, post.get("message"), post.get("created_time"), post.get("from"),
                     post.get("permalink_url"), post_id)

    async def _comments(self, post_id: str, visitor_post: bool, poll: Poll,
                        now: datetime) -> None:
        params = {"fields": COMMENT_FIELDS, "filter": "stream", "limit": "50"}
        async for page in self.graph.pages((post_id, "comments"), params, now,
                                           self.config.max_pages):
            for comment in page.data:
                if not isinstance(comment, dict):
                    poll.rejected.append(Rejected("a comment that is not a JSON object",
                                                  snippet(comment)))
                    continue
                parent = comment.get("parent")
                self._take(Entry(comment.get("id"), comment.get("message"),
                                 comment.get("created_time"), comment.get("from"),
                                 comment.get("permalink_url"), post_id,
                                 object_id(parent.get("id")) if isinstance(parent, dict)
                                 else None), visitor_post, poll)

    def _take(self, entry: Entry, visitor_post: bool, poll: Poll) -> bool:
        """Keeps the item; True when it is a visitor's post (its comments answer it)."""
        try:
            item = entry_item(entry, self.config.page_id, visitor_post, self._channel)
        except ValueError as exc:
            poll.rejected.append(Rejected(str(exc), snippet(entry.__dict__),
                                          object_id(entry.id)))
            return False
        if item is None:
            return False
        if item.created_at >= poll.since:
            poll.items[item.external_id] = item
            poll.newest = max(poll.newest, item.created_at)
        return item.external_id == entry.post_id

    def interval(self, now: datetime) -> timedelta | None:
        return self.graph.usage.interval(self.config.interval)

    def status(self, now: datetime) -> dict[str, Any]:
        return {"graph_usage": self.graph.usage.status(),
                "brand_replies": {"watched": True, "accounts": [self.config.page_id]}}

    # webhooks

    async def webhook_items(self, body: bytes, now: datetime) -> tuple[list[RawItem],
                                                                       list[Rejected]]:
        """`feed` changes with `verb: add` for a comment or a post; others are ignored."""
        poll = Poll(since=datetime.min.replace(tzinfo=UTC), newest=now)
        for change in webhook_changes(body, "page"):
            value = change.value
            if change.field != "feed" or value.get("verb") != "add":
                continue
            kind = value.get("item")
            post_id = object_id(value.get("post_id")) or ""
            if kind == "comment":
                parent = object_id(value.get("parent_id"))
                post = value.get("post") if isinstance(value.get("post"), dict) else {}
                entry = Entry(value.get("comment_id"), value.get("message"),
                              value.get("created_time"), value.get("from"),
                              post.get("permalink_url"), post_id,
                              parent if parent != post_id else None)
                self._take(entry, self._visitor(value, post), poll)
            elif kind in POST_ITEMS:
                self._take(Entry(post_id, value.get("message"), value.get("created_time"),
                                 value.get("from"), value.get("permalink_url"), post_id),
                           False, poll)
        return list(poll.items.values()), poll.rejected

    def _visitor(self, value: dict[str, Any], post: dict[str, Any]) -> bool:
        """Whether the commented post is a visitor's, when the delivery says who wrote it."""
        author = post.get("from") if isinstance(post.get("from"), dict) else {}
        return bool(author) and object_id(author.get("id")) != self.config.page_id

    # replying

    def missing_reply_credentials(self) -> list[str]:
        return [] if self.config.access_token.get_secret_value() else ["access_token"]

    async def reply(self, target: ReplyTarget, text: str) -> SentReply:
        posted = await self.graph.post((target.external_id, "comments"), {"message": text},
                                       "Facebook reply", datetime.now(UTC))
        return SentReply(posted["id"], f"{PUBLIC_HOST}/{posted['id']}")

    async def close(self) -> None:
        await self.graph.close()
