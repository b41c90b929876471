"""Field types shared by the config sections and by each connector's own source model.

Kept apart from `listener.config` so a connector can declare its config next to its code
without importing the module that assembles the whole config from the registry.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

from sla.durations import parse_at_risk, parse_duration, parse_time_of_day


def _duration(value: Any) -> Any:
    return parse_duration(value) if isinstance(value, str) else value


def _time_of_day(value: Any) -> Any:
    return parse_time_of_day(value) if isinstance(value, str) else value


def _at_risk(value: Any) -> Any:
    return parse_at_risk(value) if isinstance(value, str) else value


def _known_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name like Europe/Istanbul"
        ) from None
    return name


TimeZoneName = Annotated[str, AfterValidator(_known_zone)]
Duration = Annotated[timedelta, BeforeValidator(_duration)]
TimeOfDay = Annotated[int, BeforeValidator(_time_of_day)]
AtRisk = Annotated[timedelta | float, BeforeValidator(_at_risk)]
StrList = Annotated[list[str], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
