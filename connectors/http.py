"""One HTTP client for every polled connector: the status → typed error mapping lives
here once, so each connector only reads its API's shape.

429 becomes RateLimited (Retry-After, or the platform's reset header read by the
connector); 401/403 AuthFailed naming the credential to check; 5xx, timeouts, cut-off
bodies and wrong content types SourceError (the coordinator backs off).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDictProxy
from pydantic import ValidationError

from connectors.base import AuthFailed, RateLimited, ReplyRefused, SourceError

MAX_BODY = 10 * 1024 * 1024  # `max_body` of a source, when its connector does not say
DEFAULT_RETRY = 60.0


@dataclass
class Response:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    url: str

    def json(self) -> Any:
        """The body as JSON; anything else is a SourceError (a proxy's HTML error page,
        a truncated body)."""
        content_type = self.headers.get("Content-Type", "")
        if "json" not in content_type:
            raise SourceError(
                f"expected JSON from {self.url}, got {content_type or 'no content type'}"
            )
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SourceError(f"malformed JSON from {self.url}: {exc}") from None


def retry_after_seconds(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds or an HTTP date; None when absent or unreadable."""
    value = headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def web_url(value: str) -> str:
    """Only http(s): a `file:` or `ftp:` URL would read from places the operator did not
    mean (and feedparser would happily open them)."""
    if urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc:
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    return value


ResetReader = Callable[[Mapping[str, str]], float | None]


async def read_body(content: aiohttp.StreamReader, url: str, limit: int) -> bytes:
    """The whole body, chunk by chunk (one `read(n)` returns only what has arrived so
    far, not n bytes), giving up as soon as it passes `limit`."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in content.iter_chunked(256 * 1024):
        size += len(chunk)
        if size > limit:
            raise SourceError(too_large(url, limit))
        chunks.append(chunk)
    return b"".join(chunks)


def too_large(url: str, limit: int, declared: int | None = None) -> str:
    announced = f" ({declared:,} bytes announced)" if declared is not None else ""
    return (f"{url}: answer larger than the source's max_body of {limit:,} bytes"
            f"{announced}; not read further (raise max_body if the page is meant to be "
            "that big)")


class Http:
    """An aiohttp session made on first use (it needs the running loop)."""

    def __init__(self, user_agent: str, timeout: float = 30, credential_hint: str = "",
                 reset_after: ResetReader | None = None, max_body: int = MAX_BODY):
        self.user_agent = user_agent
        self.timeout = timeout
        self.max_body = max_body
        self.credential_hint = credential_hint
        self.reset_after = reset_after
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": self.user_agent},
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )
        return self._session

    async def request(self, method: str, url: str, **kwargs: Any) -> Response:
        """Any response; transport failures, cut-off bodies, bodies over `max_body` (read
        no further than that) and answers slower than `timeout` in all (a trickle
        included) are SourceErrors."""
        try:
            async with self.session.request(method, url, allow_redirects=True,
                                            **kwargs) as response:
                declared = response.content_length
                if declared is not None and declared > self.max_body:
                    raise SourceError(too_large(url, self.max_body, declared))
                body = await read_body(response.content, url, self.max_body)
                return Response(response.status, response.headers, body, str(response.url))
        except aiohttp.ClientPayloadError as exc:
            raise SourceError(f"{url}: body cut off ({exc})") from None
        except TimeoutError:
            raise SourceError(f"{url}: no complete answer within {self.timeout:g}s "
                              "(timeout)") from None
        except aiohttp.ClientError as exc:
            raise SourceError(f"{url}: {type(exc).__name__} {exc}".strip()) from None

    async def get(self, url: str, **kwargs: Any) -> Response:
        """A successful (2xx or 304) response, or the typed error for the poll."""
        response = await self.request("GET", url, **kwargs)
        self.raise_for_poll(response)
        return response

    def raise_for_poll(self, response: Response) -> None:
        status = response.status
        if 200 <= status < 300 or status == 304:
            return
        if status == 429:
            wait = retry_after_seconds(response.headers)
            if wait is None and self.reset_after is not None:
                wait = self.reset_after(response.headers)
            raise RateLimited(f"429 Too Many Requests from {response.url}",
                              DEFAULT_RETRY if wait is None else wait)
        if status in (401, 403):
            hint = f"; check {self.credential_hint}" if self.credential_hint else ""
            raise AuthFailed(f"{status} from {response.url}: credentials refused{hint}")
        raise SourceError(f"HTTP {status} from {response.url}")

    def refusal(self, response: Response, what: str) -> ReplyRefused | None:
        """For replies: None on success, else the refusal with the platform's words."""
        status = response.status
        if 200 <= status < 300:
            return None
        detail = response.body[:300].decode("utf-8", "replace").strip()
        retry = retry_after_seconds(response.headers) if status == 429 else None
        if retry is None and status == 429 and self.reset_after is not None:
            retry = self.reset_after(response.headers)
        hint = f" (check {self.credential_hint})" if status in (401, 403) and \
            self.credential_hint else ""
        return ReplyRefused(status, f"{what} refused with HTTP {status}{hint}: {detail}", retry)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def reply_object(response: Response, platform: str, what: str) -> dict[str, Any]:
    """A reply's 2xx body as a JSON object; anything else means we cannot tell what was
    posted, which the API reports as the platform's fault (502)."""
    try:
        data = response.json()
    except SourceError as exc:
        raise ReplyRefused(502, f"{platform} answered something unreadable: {exc}") from None
    if not isinstance(data, dict):
        raise ReplyRefused(502, f"{platform} answered {type(data).__name__}, not {what}")
    return data


def validation_reason(exc: ValidationError, root: str) -> str:
    """A malformed item's pydantic errors as one line for `rejected_items`."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or f'({root})'}: {e['msg']}"
        for e in exc.errors(include_input=False, include_url=False))
