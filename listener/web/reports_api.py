"""Report endpoints of /api/v1: share of voice per brand, channel and local day."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from listener.reports import RangeError, parse_range
from listener.services import SERVICES
from listener.share_of_voice import SENTIMENTS, Slice, share_of_voice
from listener.web.errors import APIError

routes = web.RouteTableDef()


def slice_json(part: Slice, brands: list[str]) -> dict[str, Any]:
    return {"mentions": part.mentions, "brands": [brand_json(part, name) for name in brands]}


def brand_json(part: Slice, brand: str) -> dict[str, Any]:
    figures = part.brands[brand]
    share, mean = part.share(brand), figures.mean_sentiment
    return {
        "brand": brand,
        "mentions": figures.mentions,
        "share": None if share is None else round(share, 2),
        "sentiment": {**{name: figures.by_sentiment[name] for name in SENTIMENTS},
                      "mean": None if mean is None else round(mean, 3)},
    }


@routes.get("/api/v1/reports/share-of-voice")
async def share_of_voice_report(request: web.Request) -> web.Response:
    """`from`/`to`: local dates, both included; the last 7 days when not given."""
    svc = request.app[SERVICES]
    now = svc.clock.now()
    try:
        rng = parse_range(request.query.get("from") or None, request.query.get("to") or None,
                          now, svc.config.tz)
    except RangeError as exc:
        raise APIError(400, "bad_request", str(exc)) from None
    async with svc.store.read() as session:
        report = await share_of_voice(session, rng, svc.pipeline.brands.names)
    brands = report.brands
    return web.json_response({
        "from": rng.first.isoformat(),
        "to": rng.last.isoformat(),
        "timezone": svc.config.timezone,
        "brands": brands,
        "total": slice_json(report.total, brands),
        "channels": [{"channel": channel, **slice_json(part, brands)}
                     for channel, part in report.channels.items()],
        "days": [{"date": day.isoformat(), **slice_json(part, brands),
                  "channels": [{"channel": channel, **slice_json(by_channel, brands)}
                               for channel, by_channel in report.day_channels[day].items()]}
                 for day, part in report.days.items()],
    })
