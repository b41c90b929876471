"""The queue page's URL: which filters and page it asks for, checked before any query.

Everything the page shows is decided by its query string, so a link, a reload and the
live refresh all show the same rows. A value that makes no sense becomes a message on the
page (status 400), never a server error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from listener.store.open_queue import QUEUE_STATES, QueueFilter
from listener.web.access import User

PAGE_SIZE = 50
MAX_PAGE = 100_000
FIELDS = ("channel", "source", "assignee", "state", "lang", "segment", "q")
MAX_LENGTH = {"q": 200}  # everything else: 100, the longest id column
UNASSIGNED, MINE = "unassigned", "mine"


@dataclass(frozen=True)
class Problem:
    """A message for the page, in English with named fields, translated when shown."""

    text: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QueueQuery:
    filter: QueueFilter
    page: int
    values: dict[str, str]  # as given, for the form and for links
    problems: list[Problem]

    @property
    def offset(self) -> int:
        return (self.page - 1) * PAGE_SIZE

    def url(self, path: str = "/", page: int | None = None) -> str:
        """This same view (another page of it) as a link; empty filters left out."""
        params = [(k, v) for k, v in self.values.items() if v]
        page = self.page if page is None else page
        if page > 1:
            params.append(("page", str(page)))
        return path + ("?" + urlencode(params) if params else "")


def parse_queue_query(query: Mapping[str, str], user: User | None) -> QueueQuery:
    values = {name: query.get(name, "").strip() for name in FIELDS}
    problems = [problem for name, value in values.items()
                if (problem := _check_text(name, value)) is not None]
    if problems:
        return QueueQuery(QueueFilter(), 1, values, problems)
    page, page_problem = _page(query.get("page", "1"))
    state = values["state"]
    if state and state not in QUEUE_STATES:
        problems.append(Problem("SLA state must be one of: {states}.",
                                {"states": ", ".join(QUEUE_STATES)}))
    assignee = values["assignee"]
    if assignee == MINE:
        if user is None or not user.agent_id:
            problems.append(Problem("Your login is not linked to an agent, so there is no "
                                    "queue of your own. Ask an admin to link it."))
        else:
            assignee = user.agent_id
    if page_problem:
        problems.append(page_problem)
    flt = QueueFilter(
        channel=values["channel"] or None,
        source=values["source"] or None,
        assignee=assignee if assignee not in ("", UNASSIGNED) else None,
        unassigned=assignee == UNASSIGNED,
        sla_state=state or None,
        lang=values["lang"] or None,
        segment=values["segment"] or None,
        text=values["q"] or None,
    )
    return QueueQuery(QueueFilter() if problems else flt, page, values, problems)


def _check_text(name: str, value: str) -> Problem | None:
    limit = MAX_LENGTH.get(name, 100)
    if len(value) > limit:
        return Problem("The {field} filter is too long (at most {limit} characters).",
                       {"field": name, "limit": limit})
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return Problem("The {field} filter contains control characters.", {"field": name})
    return None


def _page(text: str) -> tuple[int, Problem | None]:
    if text.isascii() and text.isdigit() and len(text) <= 6 and 1 <= int(text) <= MAX_PAGE:
        return int(text), None
    return 1, Problem("Page must be a whole number from 1 to {max}.", {"max": MAX_PAGE})
