"""The operator's reference cannot drift from the code: every config key is documented."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from connectors.base import SourceConfig
from listener.config import Config
from responders.alerts.base import SinkConfig
from tests.test_config import _kind_of, _models_in

DOCS = Path(__file__).resolve().parents[1] / "docs"
HEADING = re.compile(r"^(#{2,6})\s+(.*)$")
ROW_KEY = re.compile(r"^\|\s*`([^`]+)`")
COMMON_SOURCE_KEYS = "sources: keys every source has"
# Lists picked by `kind`: keys every kind shares are documented once, in this section.
COMMON_KEYS = ((SourceConfig, COMMON_SOURCE_KEYS), (SinkConfig, "alerts: keys every sink has"))


def sections(markdown: str) -> dict[str, set[str]]:
    """Heading text (backticks dropped) → the keys its table rows document."""
    found: dict[str, set[str]] = {}
    current = None
    for line in markdown.splitlines():
        heading = HEADING.match(line)
        if heading:
            current = heading.group(2).replace("`", "").strip()
            found[current] = set()
        elif current is not None and (row := ROW_KEY.match(line)):
            found[current].add(row.group(1))
    return found


def documented_models() -> list[tuple[str, type[BaseModel]]]:
    """(section title, model) for the whole config tree, titles as the reference names
    them: `server`, `calendar.holidays`, `sources kind html: selectors`."""
    out: list[tuple[str, type[BaseModel]]] = [("Top level", Config)]

    def walk(model: type[BaseModel], path: str) -> None:
        for name, field in model.model_fields.items():
            submodels = _models_in(field.annotation)
            for sub in submodels:
                if len(submodels) > 1:
                    title = f"{name} kind {_kind_of(sub)}"
                elif " kind " in path:
                    title = f"{path}: {name}"
                else:
                    title = f"{path}.{name}" if path else name
                if all(sub is not known for _, known in out):
                    out.append((title, sub))
                    walk(sub, title)

    walk(Config, "")
    return out


def undocumented(markdown: str) -> list[str]:
    documented = sections(markdown)
    missing = []
    for title, model in documented_models():
        keys = documented.get(title)
        if keys is None:
            missing.append(f"no section '{title}' for {model.__name__}")
            continue
        for name, field in model.model_fields.items():
            spellings = {name, field.alias} - {None}
            shared, common = False, set()
            for family, section in COMMON_KEYS:
                if issubclass(model, family):
                    common = documented.get(section, set())
                    shared = name == "kind" or any(
                        name in base.model_fields for base in model.__mro__[1:]
                        if isinstance(base, type) and issubclass(base, family))
            if not spellings & keys and not (shared and spellings & common):
                missing.append(f"{title}: {name}")
    return missing


def test_every_config_key_is_in_the_configuration_reference() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert undocumented(text) == [], "document these in docs/configuration.md"


def test_the_reference_check_notices_a_missing_key() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    trimmed = text.replace("| `max_pages` | 1–50 | `1` |", "| max pages | 1–50 | `1` |").replace(
        "### `calendar.holidays`", "### holidays")
    assert undocumented(trimmed) == [
        "no section 'calendar.holidays' for HolidaysConfig", "sources kind html: max_pages"]


def test_readme_and_docs_do_not_send_users_to_files_they_do_not_have() -> None:
    root = DOCS.parent
    for path in [root / "README.md", *DOCS.glob("*.md")]:
        assert "shared/" not in path.read_text(encoding="utf-8"), path
