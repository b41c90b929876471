"""HTML fragments (Mastodon `content`, Discourse `cooked`, feed summaries) as plain text:
paragraphs and line breaks kept, links kept as their text, entities decoded, markup gone.
The result is still hostile text; it is escaped wherever it is shown."""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser as HTMLParser

BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
BLOCK_END = re.compile(r"</(?:p|div|li|blockquote|h[1-6]|tr|pre|ul|ol|table)\s*>", re.IGNORECASE)
SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
BLANK_LINES = re.compile(r"\n{3,}")
LONE_SURROGATES = re.compile("[\ud800-\udfff]")


def without_lone_surrogates(text: str) -> str:
    """JSON may escape half an emoji (`"\\ud83d"`, from a sender that cut UTF-16 text);
    no database or encoder takes it, so it becomes U+FFFD like any undecodable byte."""
    return LONE_SURROGATES.sub("\ufffd", text)


def html_to_text(fragment: str, drop: tuple[str, ...] = ()) -> str:
    """`drop` lists CSS selectors removed first (quoted posts, image captions...)."""
    if not fragment or ("<" not in fragment and "&" not in fragment):
        return (fragment or "").strip()
    marked = BLOCK_END.sub(lambda m: m.group(0) + "\n\n", BREAK.sub("\n", fragment))
    tree = HTMLParser(f"<div>{marked}</div>")
    for selector in ("script", "style", "template", *drop):
        for node in tree.css(selector):
            node.decompose()
    root = tree.body or tree.root
    text = root.text(separator="") if root is not None else ""
    lines = [SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
