"""Normalising keeps every field of an item: it builds a new RawItem field by field, so a
field added to RawItem later must be carried here too, or this fails."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone

from connectors.base import RawAuthor, RawItem
from listener.pipeline.normalize import normalize


def item_with_every_field() -> RawItem:
    """No field left at its default (shared with tests/pipeline/test_lines.py)."""
    return RawItem(
        external_id="x-1", text="Kargo\x00 gelmedi \ud83d", channel=" Twitter ",
        created_at=datetime(2026, 11, 24, 9, 0, tzinfo=UTC),
        author=RawAuthor("@Ayse", "Ayşe\x07", " A@Example.COM ", 12, " 0532 111 22 33 "),
        url="https://example.com/1", lang="tr", in_reply_to="x-0", thread="t-1",
        note="no date upstream", by_brand=True, repost=True, rating=4)


def test_every_field_survives_normalising() -> None:
    item = item_with_every_field()
    out = normalize(item)
    assert (out.text, out.channel, out.author.handle, out.author.name, out.author.email,
            out.author.phone) == ("Kargo gelmedi \ufffd", "twitter", "ayse", "Ayşe",
                                  "a@example.com", "0532 111 22 33")
    unchanged = {"external_id", "created_at", "url", "lang", "in_reply_to", "thread", "note",
                 "by_brand", "repost", "rating"}
    assert unchanged | {"text", "channel", "author"} == {f.name for f in fields(RawItem)}
    for name in unchanged:
        assert getattr(out, name) == getattr(item, name), name
    assert out.author.followers == 12


def test_control_characters_in_identifiers_stay_distinct() -> None:
    item = RawItem(external_id="a\x00b", text="t", channel="web",
                   created_at=datetime(2026, 11, 24, tzinfo=UTC), author=RawAuthor("h"),
                   thread="t\x01", in_reply_to="r\x02")
    out = normalize(item)
    assert (out.external_id, out.thread, out.in_reply_to) == ("a\ufffdb", "t\ufffd", "r\ufffd")


def test_times_come_out_in_utc_and_the_ends_of_the_calendar_stay_as_given() -> None:
    istanbul = timezone(timedelta(hours=3))
    item = RawItem(external_id="x", text="t", channel="web", author=RawAuthor("h"),
                   created_at=datetime(2026, 11, 24, 12, 0, tzinfo=istanbul))
    out = normalize(item)
    assert out.created_at.tzinfo is UTC
    assert out.created_at == item.created_at and out.created_at.hour == 9
    first = datetime(1, 1, 1, 1, 0, tzinfo=istanbul)  # before year 1 in UTC: kept aside later
    assert normalize(RawItem(external_id="y", text="t", channel="web", author=RawAuthor("h"),
                             created_at=first)).created_at is first
