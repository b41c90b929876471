"""Discourse: every new post of a forum, from `GET /posts.json` (newest first).

`posts.json` has no "newer than" parameter, so each poll reads from the newest post
backwards (`?before=<lowest id in the page>`) until it reaches the cursor's post. When the
page cap stops a walk short, the cursor remembers the unread stretch (`before` down to
`after`) and the next poll fills it first, so nothing between two polls is skipped. Some
Discourse versions answer `before` with a window of 50 ids filtered by visibility, so an
empty page is not the end: the walk steps the window down until it reaches the cursor.

A topic is a thread (`thread` = topic id): Discourse names the replied-to post only by its
number, so a brand post in the topic answers the earlier open posts of the topic. The first
post of a topic gets the topic title in front, since agents see posts one by one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from urllib.parse import quote

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)

from connectors.base import (
    Batch,
    RateLimited,
    RawAuthor,
    RawItem,
    Rejected,
    ReplyingSourceConfig,
    ReplyRefused,
    ReplyTarget,
    SentReply,
    SourceError,
    secret_value,
)
from connectors.http import (
    DEFAULT_RETRY,
    Http,
    Response,
    reply_object,
    retry_after_seconds,
    validation_reason,
)
from connectors.text import html_to_text

PAGE_SIZE = 50
ID_WINDOW = 50
REGULAR = 1
DROP = ("aside.quote", ".lightbox-wrapper .meta")
POST_URL = re.compile(r"/t/(?:[^/]+/)?(\d+)/(\d+)/?$")


class DiscourseSource(ReplyingSourceConfig):
    """`api_key` + `api_username` read private categories and post replies; a public
    forum is read without them."""

    default_channel: ClassVar[str | None] = "discourse"

    kind: Literal["discourse"]
    base_url: str
    api_key: SecretStr | None = None
    api_username: str | None = None
    max_pages: int = Field(10, ge=1, le=50)

    @field_validator("base_url")
    @classmethod
    def _forum_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("base_url must start with https:// (the forum, e.g. "
                             "https://forum.example.com)")
        return value.rstrip("/")


class PostIn(BaseModel):
    """The fields of a `latest_posts` entry we use; anything else is ignored."""

    model_config = ConfigDict(extra="ignore")
    id: int = Field(ge=1)
    topic_id: int = Field(ge=1)
    post_number: int = Field(ge=1)
    topic_slug: str | None = None
    topic_title: str | None = None
    username: str = Field(min_length=1, max_length=200)
    name: str | None = None
    created_at: AwareDatetime
    cooked: str = ""
    post_type: int = REGULAR
    deleted_at: str | None = None
    hidden: bool = False


@dataclass
class Marks:
    """The cursor. Every post up to `after` is read; with `before`, the posts from
    `before` up to `top` are read too and the stretch between `after` and `before` is not."""

    after: int | None = None
    top: int | None = None
    before: int | None = None

    @classmethod
    def read(cls, cursor: str | None) -> Marks:
        """Anything unreadable starts afresh like a first poll (duplicates are harmless)."""
        try:
            data = json.loads(cursor) if cursor else {}
        except json.JSONDecodeError:
            return cls()
        if isinstance(data, int):
            return cls(after=data)
        if not isinstance(data, dict):
            return cls()
        values = {k: data.get(k) for k in ("after", "top", "before")}
        if not all(v is None or isinstance(v, int) for v in values.values()):
            return cls()
        return cls(**values)

    def write(self) -> str | None:
        if self.after is None:
            return None
        data = {"after": self.after}
        if self.before is not None:
            data |= {"top": self.top or self.after, "before": self.before}
        return json.dumps(data)


@dataclass
class Walk:
    """One backwards walk: the raw posts newer than its stop, and where it ended."""

    posts: list[Any] = field(default_factory=list)
    reached: bool = False
    resume: int | None = None
    pages: int = 0

    @property
    def highest(self) -> int | None:
        return max(_ids(self.posts), default=None)


class DiscourseConnector:
    kind: ClassVar[str] = "discourse"
    Config: ClassVar[type[ReplyingSourceConfig]] = DiscourseSource
    polled: ClassVar[bool] = True
    reply_limit: ClassVar[int | None] = 32_000

    def __init__(self, config: DiscourseSource):
        self.config = config
        self.http = Http(config.user_agent, config.timeout.total_seconds(),
                         credential_hint="api_key and api_username", max_body=config.max_body)

    @classmethod
    def from_config(cls, source: Any) -> DiscourseConnector:
        return cls(source)

    def __repr__(self) -> str:
        return f"DiscourseConnector({self.config.id!r}, {self.config.base_url!r})"

    @property
    def _auth(self) -> dict[str, str]:
        key = secret_value(self.config.api_key)
        if not key:
            return {}
        username = self.config.api_username
        return {"Api-Key": key, **({"Api-Username": username} if username else {})}

    def _url(self, path: str) -> str:
        return self.config.base_url + path

    async def fetch(self, cursor: str | None, now: datetime) -> Batch:
        marks = Marks.read(cursor)
        if marks.after is None:
            walk = await self._walk(None, None, self.config.max_pages, now)
            posts, marks = walk.posts, Marks(walk.highest)
        else:
            posts, marks = await self._catch_up(marks, now)
        batch = Batch(cursor=marks.write())
        self._take(posts, batch)
        return batch

    async def _catch_up(self, marks: Marks, now: datetime) -> tuple[list[Any], Marks]:
        """First the stretch an earlier walk left unread, then from the newest post down
        to the cursor, both within one poll's page budget."""
        posts: list[Any] = []
        pages = self.config.max_pages
        if marks.before is not None:
            walk = await self._walk(marks.before, marks.after, pages, now)
            posts, pages = walk.posts, pages - walk.pages
            if not walk.reached:
                return posts, Marks(marks.after, marks.top, walk.resume or marks.before)
            marks = Marks(marks.top or marks.after)
        if pages <= 0:
            return posts, marks
        walk = await self._walk(None, marks.after, pages, now)
        top = max(walk.highest or 0, marks.after or 0)
        if walk.reached or walk.resume is None:
            return posts + walk.posts, Marks(top)
        return posts + walk.posts, Marks(marks.after, top, walk.resume)

    async def _walk(self, before: int | None, stop: int | None, pages: int,
                    now: datetime) -> Walk:
        """Newest first from `before` until a post at or below `stop`; on a first poll
        (`stop` None) until past the backfill window or a short page (history is best
        effort). `before=<lowest id>` is sent as is: Discourse may count it
        inclusively, which only repeats one post."""
        walk = Walk()
        horizon = now - self.config.backfill
        while walk.pages < pages:
            page = await self._page(before)
            walk.pages += 1
            fresh = _fresher_than(page, stop)
            walk.posts += fresh
            if len(fresh) < len(page) or (stop is None and (
                    len(page) < PAGE_SIZE or _reaches(page, horizon))):
                walk.reached = True
                return walk
            lowest = min(_ids(page), default=None)
            if lowest is not None and (before is None or lowest < before):
                before = lowest
            elif before is not None and stop is not None:
                before -= ID_WINDOW  # nothing visible in this id window: step below it
            else:
                walk.reached = True  # nothing (more) visible: the cursor stays where it was
                return walk
            if before <= (stop or 0):
                walk.reached = True
                return walk
            walk.resume = before
        return walk

    async def _page(self, before: int | None) -> list[Any]:
        params = {"before": str(before)} if before is not None else {}
        response = await self.http.request("GET", self._url("/posts.json"), params=params,
                                           headers=self._auth)
        self._raise_for_poll(response)
        body = response.json()
        posts = body.get("latest_posts") if isinstance(body, dict) else None
        if not isinstance(posts, list):
            raise SourceError(f"expected {{\"latest_posts\": [...]}} from {response.url}")
        return posts

    def _raise_for_poll(self, response: Response) -> None:
        """Discourse says how long to wait in `Retry-After` and in `extras.wait_seconds`."""
        if response.status == 429:
            wait = _wait(response)
            raise RateLimited(f"429 Too Many Requests from {response.url}",
                              DEFAULT_RETRY if wait is None else wait)
        self.http.raise_for_poll(response)

    def _take(self, posts: list[Any], batch: Batch) -> None:
        seen: set[int] = set()
        for obj in posts:
            try:
                post = PostIn.model_validate(obj)
            except ValidationError as exc:
                external_id = obj.get("id") if isinstance(obj, dict) else None
                batch.rejected.append(Rejected(
                    validation_reason(exc, "post"),
                    json.dumps(obj, ensure_ascii=False, default=str)[:2000],
                    str(external_id) if isinstance(external_id, int | str) else None))
                continue
            if post.id in seen or not _is_conversation(post):
                continue
            seen.add(post.id)
            batch.items.append(self._item(post))

    def _item(self, post: PostIn) -> RawItem:
        text = html_to_text(post.cooked, drop=DROP)
        if post.post_number == 1 and post.topic_title:
            text = f"{post.topic_title.strip()}\n\n{text}".strip()
        return RawItem(
            external_id=str(post.id),
            text=text,
            created_at=post.created_at.astimezone(UTC),
            channel=self.config.channel or self.kind,
            author=RawAuthor(post.username, post.name or post.username),
            url=self._post_url(post.topic_slug, post.topic_id, post.post_number),
            thread=str(post.topic_id),
        )

    def _post_url(self, slug: str | None, topic_id: int, post_number: int) -> str:
        slug_part = f"{quote(slug, safe='')}/" if slug else ""
        return self._url(f"/t/{slug_part}{topic_id}/{post_number}")

    def missing_reply_credentials(self) -> list[str]:
        missing = [] if secret_value(self.config.api_key) else ["api_key"]
        return missing + ([] if self.config.api_username else ["api_username"])

    async def reply(self, target: ReplyTarget, text: str) -> SentReply:
        """A post in the mention's topic, marked as a reply to its post number."""
        topic_id, post_number = await self._position(target)
        body = {"topic_id": topic_id, "raw": text, "reply_to_post_number": post_number}
        response = await self._send("POST", self._url("/posts.json"), json=body)
        self._raise_refusal(response)
        posted = reply_object(response, "Discourse", "a post")
        if posted.get("action") == "enqueued":
            pending = posted.get("pending_post") or {}
            return SentReply(f"pending:{pending.get('id', '')}", None)
        try:
            return SentReply(str(int(posted["id"])), self._post_url(
                posted.get("topic_slug"), int(posted.get("topic_id", topic_id)),
                int(posted["post_number"])))
        except (KeyError, TypeError, ValueError):
            raise ReplyRefused(502, "Discourse accepted the reply but its answer has no post "
                               "id and number; check the topic before sending again") from None

    async def _position(self, target: ReplyTarget) -> tuple[int, int]:
        """Topic id and post number: from the mention's url when it is ours, else asked
        of Discourse (`/posts/{id}.json`)."""
        match = POST_URL.search(target.url or "")
        if match:
            return int(match.group(1)), int(match.group(2))
        response = await self._send(
            "GET", self._url(f"/posts/{quote(target.external_id, safe='')}.json"))
        self._raise_refusal(response)
        post = reply_object(response, "Discourse", "a post")
        try:
            return int(post["topic_id"]), int(post["post_number"])
        except (KeyError, TypeError, ValueError):
            raise ReplyRefused(502, f"Discourse post {target.external_id} has no topic id "
                               "and post number; nothing sent") from None

    async def _send(self, method: str, url: str, **kwargs: Any) -> Response:
        try:
            return await self.http.request(method, url, headers=self._auth, **kwargs)
        except SourceError as exc:
            raise ReplyRefused(502, f"Discourse could not be reached: {exc}") from None

    def _raise_refusal(self, response: Response) -> None:
        """Discourse explains a refusal in `{"errors": [...]}`: that is what the agent sees."""
        status = response.status
        if 200 <= status < 300:
            return
        detail = "; ".join(_errors(response)) or \
            response.body[:300].decode("utf-8", "replace").strip()
        wait = _wait(response) if status == 429 else None
        hint = " (check api_key and api_username)" if status in (401, 403) else ""
        raise ReplyRefused(status, f"Discourse reply refused with HTTP {status}{hint}: "
                           f"{detail}", wait)

    async def close(self) -> None:
        await self.http.close()


def _is_conversation(post: PostIn) -> bool:
    """Regular posts only: not whispers (staff-only), moderator notices or small actions
    ("closed this topic"), nor posts deleted or hidden since."""
    return post.post_type == REGULAR and post.deleted_at is None and not post.hidden


def _post_id(obj: Any) -> int | None:
    post_id = obj.get("id") if isinstance(obj, dict) else None
    return post_id if type(post_id) is int else None


def _ids(posts: list[Any]) -> list[int]:
    return [i for i in map(_post_id, posts) if i is not None]


def _fresher_than(page: list[Any], stop: int | None) -> list[Any]:
    """The posts above `stop`. One without a usable id (to be rejected) counts as fresh
    only while no read post came before it, so it is not rejected again every poll."""
    if stop is None:
        return page
    fresh, old_seen = [], False
    for obj in page:
        post_id = _post_id(obj)
        if post_id is None:
            if not old_seen:
                fresh.append(obj)
        elif post_id > stop:
            fresh.append(obj)
        else:
            old_seen = True
    return fresh


def _reaches(page: list[Any], horizon: datetime) -> bool:
    """The page already holds a post older than the backfill horizon."""
    for obj in page:
        try:
            created = datetime.fromisoformat(obj["created_at"])
        except (KeyError, TypeError, ValueError):
            continue
        if created.tzinfo is not None and created < horizon:
            return True
    return False


def _body(response: Response) -> Any:
    try:
        return json.loads(response.body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def _errors(response: Response) -> list[str]:
    body = _body(response)
    errors = body.get("errors") if isinstance(body, dict) else None
    return [str(e) for e in errors] if isinstance(errors, list) else []


def _wait(response: Response) -> float | None:
    """`Retry-After`, else the JSON body's `extras.wait_seconds`."""
    wait = retry_after_seconds(response.headers)
    if wait is not None:
        return wait
    body = _body(response)
    extras = body.get("extras") if isinstance(body, dict) else None
    wait = extras.get("wait_seconds") if isinstance(extras, dict) else None
    return float(wait) if isinstance(wait, int | float) and not isinstance(wait, bool) else None


