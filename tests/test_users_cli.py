"""`listener users add` as an operator runs it: the first admin, roles, agents, bad input."""

from __future__ import annotations

import asyncio
from pathlib import Path

from listener.config import load_config
from listener.store import Store, users
from tests.test_cli import listener, write_config

SECRET = "a long enough secret"


async def can_sign_in(db_url: str, name: str, password: str) -> tuple[str, str | None] | None:
    store = Store.open(db_url)
    try:
        async with store.write() as session:
            user = await users.authenticate(session, name, password)
            return (user.role, user.agent_id) if user else None
    finally:
        await store.close()


def test_users_add_creates_then_updates_a_login(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path, db_url)
    agent = load_config(config).agents[0].id
    first = listener("users", "add", "--config", str(config), "ayse", "--role", "agent",
                     "--agent", agent, env={"LISTENER_PASSWORD": SECRET})
    assert first.returncode == 0, first.stderr
    assert f"created user ayse (agent, agent {agent})" in first.stdout
    assert SECRET not in first.stdout + first.stderr
    assert asyncio.run(can_sign_in(db_url, "ayse", SECRET)) == ("agent", agent)
    again = listener("users", "add", "--config", str(config), "ayse", "--role", "lead",
                     env={"LISTENER_PASSWORD": SECRET + "!"})
    assert again.returncode == 0 and "updated user ayse (lead)" in again.stdout
    assert asyncio.run(can_sign_in(db_url, "ayse", SECRET)) is None
    assert asyncio.run(can_sign_in(db_url, "ayse", SECRET + "!")) == ("lead", None)


def test_users_add_refuses_what_would_not_work(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path, db_url)
    unknown = listener("users", "add", "--config", str(config), "can", "--role", "agent",
                       "--agent", "nobody", env={"LISTENER_PASSWORD": SECRET})
    assert unknown.returncode == 2 and "agent 'nobody' is not in the config's agents" in \
        unknown.stderr
    short = listener("users", "add", "--config", str(config), "can", "--role", "agent",
                     env={"LISTENER_PASSWORD": "short"})
    assert short.returncode == 2 and "at least 8 characters" in short.stderr
    role = listener("users", "add", "--config", str(config), "can", "--role", "boss",
                    env={"LISTENER_PASSWORD": SECRET})
    assert role.returncode == 2 and "invalid choice: 'boss'" in role.stderr
    asked = listener("users", "add", "--config", str(config), "can", "--role", "agent",
                     env={"LISTENER_PASSWORD": ""})
    assert asked.returncode != 0 and "set LISTENER_PASSWORD" in asked.stderr
    assert "Traceback" not in unknown.stderr + short.stderr + asked.stderr
