"""The folded forms of a mention's text that storing it needs: its `search_text` (what
the queue's search reads) and its `repeat_key` (what the noise stage compares).

Pure functions of the item, so `listener ingest`'s worker works them out next to
parsing and enrichment, and the process that writes batches (the busier one) does not.
"""

from __future__ import annotations

from typing import NamedTuple

from connectors.base import RawItem
from listener.pipeline.noise import repeat_key
from listener.search_fold import search_text


class TextKeys(NamedTuple):
    search_text: str
    repeat_key: str


def text_keys(item: RawItem) -> TextKeys:
    return TextKeys(search_text(item.text, item.author.handle, item.author.name),
                    repeat_key(item.text))
