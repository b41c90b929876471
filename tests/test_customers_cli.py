"""`listener customers import` as an operator runs it, on both databases."""

from __future__ import annotations

import re
from pathlib import Path

from tests.test_cli import listener, write_config

EXAMPLE = Path(__file__).parents[1] / "examples" / "customers.csv"


def test_crm_import_reports_bad_lines_by_number_and_reruns_as_updates(
        tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path, db_url)
    data = tmp_path / "crm.csv"
    data.write_text(EXAMPLE.read_text(encoding="utf-8")
                    + "CRM-2000,Ghost,twitter:@aliveli,,,\n", encoding="utf-8")
    first = listener("customers", "import", "--config", str(config), str(data))
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().endswith("5 customers: 4 created, 0 updated, 1 rejected")
    assert re.findall(r"line (\d+): skipped", first.stderr) == ["6"]
    assert "twitter:@aliveli belongs to CRM customer CRM-1001" in first.stderr
    again = listener("customers", "import", "--config", str(config), str(data))
    assert "5 customers: 0 created, 4 updated, 1 rejected" in again.stdout


def test_crm_import_of_a_missing_file_fails_clearly(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path, db_url)
    result = listener("customers", "import", "--config", str(config), str(tmp_path / "no.csv"))
    assert result.returncode == 1 and "cannot read" in result.stderr
    assert "Traceback" not in result.stderr
