"""App Store: an app's customer reviews through the App Store Connect API, and answers
posted as customer review responses.

Reviews are read newest first (`sort=-createdDate`), following `links.next` (its host is
ignored: every call goes to `base_url`) until a review older than the cursor shows up.
The cursor is the newest `createdDate` read plus the ids read at exactly that instant.
A review's text is its title, a blank line and its body; its stars are `rating`.

The brand's published response (`include=response`) is its native reply: it comes back
`by_brand` in the review's thread and stops the clock. Responses are read for every
review on the pages a poll walks, so one written in App Store Connect for a review read
earlier counts as long as that review is still on the first page.

Apple gives no public link to one review; `url` is the app's page with its reviews.

Auth is a short-lived ES256 token signed with the `.p8` key of an App Store Connect API
key (issuer id, key id); a refused token is made anew once, then the call retried.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import quote, urlsplit

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from connectors.base import (
    AuthFailed,
    Batch,
    RawAuthor,
    RawItem,
    Rejected,
    ReplyingSourceConfig,
    ReplyRefused,
    ReplyTarget,
    SentReply,
    SourceError,
    require_file,
)
from connectors.http import Http, Response, reply_object, validation_reason, web_url
from listener.config_fields import Duration

REVIEWS_PATH = "/v1/apps/{app_id}/customerReviews"
RESPONSES_PATH = "/v1/customerReviewResponses"
APP_URL = "https://apps.apple.com/app/id{app_id}?see-all=reviews"
AUDIENCE = "appstoreconnect-v1"
TOKEN_LIFETIME = 15 * 60  # Apple refuses tokens that live longer than 20 minutes
PAGE_SIZE = 200
REPLY_LIMIT = 5970
MAX_ID = 150


class AppStoreSource(ReplyingSourceConfig):
    """An App Store Connect API key (Users and Access → Integrations) with the Customer
    Support, App Manager or Admin role: `issuer_id`, `key_id` and its `.p8` file."""

    default_channel: ClassVar[str | None] = "app_review"

    kind: Literal["app_store"]
    app_id: str = Field(pattern=r"^[0-9]{1,20}$")
    issuer_id: str = Field(min_length=1, max_length=100)
    key_id: str = Field(min_length=1, max_length=50)
    private_key_file: str = Field(min_length=1)
    base_url: str = "https://api.appstoreconnect.apple.com"
    interval: Duration = timedelta(hours=1)
    max_pages: int = Field(10, ge=1, le=100)

    @field_validator("base_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        return web_url(value).rstrip("/")


def in_utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 with an offset
        raise ValueError("a date out of range") from None


UtcDatetime = Annotated[AwareDatetime, AfterValidator(in_utc)]


class ReviewAttributes(BaseModel):
    model_config = ConfigDict(extra="ignore")
    rating: int = Field(ge=1, le=5)
    title: str = Field("", max_length=1000)
    body: str = Field("", max_length=100_000)
    reviewerNickname: str = Field(min_length=1, max_length=200)
    createdDate: UtcDatetime
    territory: str | None = None


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1, max_length=MAX_ID)
    attributes: ReviewAttributes

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class ResponseAttributes(BaseModel):
    model_config = ConfigDict(extra="ignore")
    responseBody: str = ""
    lastModifiedDate: UtcDatetime
    state: str | None = None


class Cursor:
    """The newest `createdDate` read and the ids read at that instant."""

    def __init__(self, at: datetime | None = None, ids: frozenset[str] = frozenset()):
        self.at, self.ids = at, ids

    def is_new(self, at: datetime, review_id: str) -> bool:
        return self.at is None or at > self.at or (at == self.at and review_id not in self.ids)

    def advanced(self, seen: list[tuple[datetime, str]]) -> Cursor:
        if not seen:
            return self
        top = max(at for at, _ in seen)
        if self.at is not None and top < self.at:
            return self
        ids = {i for at, i in seen if at == top} | (set(self.ids) if top == self.at else set())
        return Cursor(top, frozenset(ids))

    def dump(self) -> str | None:
        if self.at is None:
            return None
        return json.dumps({"at": self.at.isoformat(), "ids": sorted(self.ids)}, sort_keys=True)

    @classmethod
    def load(cls, text: str | None) -> Cursor:
        try:
            data = json.loads(text) if text else None
            at = datetime.fromisoformat(data["at"])
            ids = frozenset(str(i) for i in data.get("ids", []))
        except (TypeError, ValueError, KeyError, AttributeError, json.JSONDecodeError):
            return cls()
        return cls(at if at.tzinfo else at.replace(tzinfo=UTC), ids)


class AppStoreConnector:
    kind: ClassVar[str] = "app_store"
    Config: ClassVar[type[ReplyingSourceConfig]] = AppStoreSource
    polled: ClassVar[bool] = True
    reply_limit: ClassVar[int | None] = REPLY_LIMIT

    def __init__(self, config: AppStoreSource):
        require_file("private_key_file", config.private_key_file,
                     "the .p8 key from App Store Connect")
        self.config = config
        self.http = Http(config.user_agent, config.timeout.total_seconds(),
                         credential_hint="issuer_id, key_id and private_key_file",
                         max_body=config.max_body)
        self._token: tuple[str, float] | None = None  # (token, expires at, epoch seconds)

    @classmethod
    def from_config(cls, source: Any) -> AppStoreConnector:
        return cls(source)

    def __repr__(self) -> str:
        return f"AppStoreConnector({self.config.id!r}, app {self.config.app_id})"

    # auth ---------------------------------------------------------------------------------

    def _bearer(self, renew: bool = False) -> str:
        """A signed token, reused until a minute before it expires."""
        now = time.time()
        if not renew and self._token is not None and self._token[1] - 60 > now:
            return self._token[0]
        import jwt  # here: PyJWT pulls in cryptography, tens of MB nobody else needs

        try:
            with open(self.config.private_key_file, encoding="utf-8") as fh:
                key = fh.read()
            token = jwt.encode(
                {"iss": self.config.issuer_id, "iat": int(now),
                 "exp": int(now) + TOKEN_LIFETIME, "aud": AUDIENCE},
                key, algorithm="ES256", headers={"kid": self.config.key_id, "typ": "JWT"})
        except (OSError, ValueError, TypeError, jwt.PyJWTError) as exc:
            raise AuthFailed(f"cannot sign an App Store Connect token "
                             f"({type(exc).__name__}); check private_key_file") from None
        self._token = (token, now + TOKEN_LIFETIME)
        return token

    async def _call(self, method: str, url: str, **kwargs: Any) -> Response:
        """One API call; a 401 makes a new token once and tries again."""
        response = await self.http.request(
            method, url, headers={"Authorization": f"Bearer {self._bearer()}"}, **kwargs)
        if response.status == 401:
            response = await self.http.request(
                method, url, headers={"Authorization": f"Bearer {self._bearer(renew=True)}"},
                **kwargs)
        return response

    # polling ------------------------------------------------------------------------------

    async def fetch(self, cursor: str | None, now: datetime) -> Batch:
        mark = Cursor.load(cursor)
        batch = Batch()
        seen: list[tuple[datetime, str]] = []
        path = REVIEWS_PATH.format(app_id=quote(self.config.app_id, safe=""))
        url: str | None = self.config.base_url + path
        params: dict[str, str] | None = {"sort": "-createdDate", "limit": str(PAGE_SIZE),
                                         "include": "response"}
        complete = False
        for _ in range(self.config.max_pages):
            assert url is not None
            data = await self._page(url, params)
            reached = False
            responses = _included_responses(data)
            for obj in data["data"]:
                reached |= self._take(obj, responses, mark, batch, seen)
            url, params = self._next(data), None
            if url is None or reached:
                complete = True
                break
        # A walk cut short by max_pages keeps the old cursor: the next poll reads the gap.
        batch.cursor = (mark.advanced(seen) if complete else mark).dump()
        return batch

    async def _page(self, url: str, params: dict[str, str] | None) -> dict[str, Any]:
        response = await self._call("GET", url, params=params)
        if response.status == 403:
            raise AuthFailed(f"403 from {response.url}: the API key may not read this app's "
                             "reviews (it needs the Customer Support, App Manager or Admin "
                             "role); check key_id, issuer_id and app_id")
        self.http.raise_for_poll(response)
        data = response.json()
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise SourceError(f"expected a JSON:API document with a data list from "
                              f"{response.url}")
        return data

    def _next(self, data: dict[str, Any]) -> str | None:
        """`links.next` on our own `base_url` (a proxy or a test server)."""
        links = data.get("links")
        following = links.get("next") if isinstance(links, dict) else None
        if not isinstance(following, str) or not following:
            return None
        try:
            parts = urlsplit(following)
        except ValueError:  # "http://[": no page to go on to
            return None
        return f"{self.config.base_url}{parts.path}" + (f"?{parts.query}" if parts.query
                                                         else "")

    def _take(self, obj: Any, responses: dict[str, dict[str, Any]], mark: Cursor,
              batch: Batch, seen: list[tuple[datetime, str]]) -> bool:
        """Adds the review if new and its response; True when it is older than the cursor
        (the walk can stop after this page)."""
        try:
            review = ReviewIn.model_validate(obj)
        except ValidationError as exc:
            batch.rejected.append(Rejected(validation_reason(exc, "review"), _snippet(obj),
                                           _object_id(obj)))
            return False
        attributes = review.attributes
        created = attributes.createdDate.astimezone(UTC)
        self._take_response(obj, review, responses, batch)
        seen.append((created, review.id))
        if not mark.is_new(created, review.id):
            return mark.at is not None and created < mark.at
        text = "\n\n".join(p.strip() for p in (attributes.title, attributes.body) if p.strip())
        facts = [f"{attributes.rating}★"]
        if attributes.territory:
            facts.append(f"territory {attributes.territory}")
        batch.items.append(RawItem(
            external_id=review.id,
            text=text,
            created_at=created,
            channel=self.config.channel or "app_review",
            author=RawAuthor(attributes.reviewerNickname, attributes.reviewerNickname),
            url=self._app_url,
            thread=review.id,
            rating=attributes.rating,
            note="App Store review: " + ", ".join(facts),
        ))
        return False

    def _take_response(self, obj: Any, review: ReviewIn,
                       responses: dict[str, dict[str, Any]], batch: Batch) -> None:
        """The brand's published response to this review, as its native reply."""
        related: Any = obj
        for key in ("relationships", "response", "data"):
            related = related.get(key) if isinstance(related, dict) else None
        response_id = related.get("id") if isinstance(related, dict) else None
        found = responses.get(response_id) if isinstance(response_id, str) else None
        if found is None:
            return
        try:
            attributes = ResponseAttributes.model_validate(found.get("attributes"))
        except ValidationError as exc:
            batch.rejected.append(Rejected(validation_reason(exc, "response"),
                                           _snippet(found), response_id))
            return
        if attributes.state not in (None, "PUBLISHED"):
            return  # PENDING_PUBLISH: customers do not see it yet
        batch.items.append(RawItem(
            external_id=str(response_id),
            text=attributes.responseBody,
            created_at=attributes.lastModifiedDate.astimezone(UTC),
            channel=self.config.channel or "app_review",
            author=RawAuthor(f"appstore:{self.config.app_id}", "Developer response"),
            url=self._app_url,
            in_reply_to=review.id,
            thread=review.id,
            by_brand=True,
        ))

    @property
    def _app_url(self) -> str:
        return APP_URL.format(app_id=self.config.app_id)

    # replying -----------------------------------------------------------------------------

    def missing_reply_credentials(self) -> list[str]:
        return []  # the key that reads also answers (its role permitting)

    async def reply(self, target: ReplyTarget, text: str) -> SentReply:
        """A customer review response; Apple publishes it after a short review."""
        if len(text) > REPLY_LIMIT:
            raise ReplyRefused(422, f"App Store responses are at most {REPLY_LIMIT} "
                                    f"characters; this one has {len(text)}; nothing was sent")
        body = {"data": {
            "type": "customerReviewResponses",
            "attributes": {"responseBody": text},
            "relationships": {"review": {"data": {"type": "customerReviews",
                                                  "id": target.thread or target.external_id}}},
        }}
        try:
            response = await self._call("POST", self.config.base_url + RESPONSES_PATH,
                                        json=body)
        except AuthFailed as exc:
            raise ReplyRefused(401, f"{exc}; nothing was sent") from None
        except SourceError as exc:
            raise ReplyRefused(502, f"App Store Connect could not be reached: {exc}") from None
        refused = self.http.refusal(response, "App Store response")
        if refused is not None:
            raise refused
        posted = reply_object(response, "App Store Connect", "a review response")
        data = posted.get("data")
        response_id = _object_id(data)
        if response_id is None:
            raise ReplyRefused(502, "App Store Connect took the response but named no id; "
                                    "check the review in App Store Connect before sending again")
        return SentReply(response_id, self._app_url)

    async def close(self) -> None:
        await self.http.close()


def _included_responses(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    included = data.get("included")
    if not isinstance(included, list):
        return {}
    return {obj["id"]: obj for obj in included
            if isinstance(obj, dict) and obj.get("type") == "customerReviewResponses"
            and isinstance(obj.get("id"), str) and _object_id(obj) is not None}


def _object_id(obj: Any) -> str | None:
    value = obj.get("id") if isinstance(obj, dict) else None
    text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    return text if 0 < len(text) <= MAX_ID else None


def _snippet(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)[:2000]
