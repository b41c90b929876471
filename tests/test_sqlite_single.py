"""SQLite is one `listener serve` per file: a second one stops at once and says why,
and the file is free again as soon as the first one is gone, even after SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_serve import SECRET, free_port, launch, write_config

pytestmark = pytest.mark.slow


def second_serve(database: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{database}", free_port())
    return subprocess.run([sys.executable, "-m", "listener", "serve", "--config", str(config)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "HOOK_SECRET": SECRET})


async def test_second_serve_on_one_sqlite_file_exits_naming_it(tmp_path: Path) -> None:
    database = tmp_path / "listener.db"
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    first, _, _ = await launch(f"sqlite+aiosqlite:///{database}", first_dir)
    try:
        refused = second_serve(database, second_dir)
        assert refused.returncode != 0
        assert str(database) in refused.stderr
        assert "another `listener serve` is already using" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert first.poll() is None  # the first one keeps serving
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    # The kernel dropped the dead process's lock: a new serve starts on the same file.
    restarted, _, _ = await launch(f"sqlite+aiosqlite:///{database}", second_dir)
    restarted.send_signal(signal.SIGTERM)
    assert restarted.wait(timeout=60) == 0
