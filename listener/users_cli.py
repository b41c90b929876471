"""`listener users add`: a dashboard login from the command line (the first admin too)."""

from __future__ import annotations

import getpass
import os
import sys

from listener.app import prepare_database
from listener.services import Services
from listener.store import users

PASSWORD_ENV = "LISTENER_PASSWORD"


def read_password() -> str:
    """From LISTENER_PASSWORD (scripts), else asked twice without echo."""
    password = os.environ.get(PASSWORD_ENV)
    if password:
        return password
    if not sys.stdin.isatty():
        raise SystemExit(f"set {PASSWORD_ENV}, or run this in a terminal to be asked")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Password again: "):
        raise SystemExit("the two passwords differ; nothing was changed")
    return first


async def add_user(services: Services, name: str, role: str, password: str,
                   agent_id: str | None) -> tuple[str, bool]:
    """Returns (message, ok). An unknown agent id is refused: "my queue" would be empty."""
    known = {agent.id for agent in services.config.agents}
    if agent_id is not None and agent_id not in known:
        listed = ", ".join(sorted(known)) or "none configured"
        return f"agent {agent_id!r} is not in the config's agents ({listed})", False
    try:
        await prepare_database(services, migrate=True)
        async with services.store.write() as session:
            user, created = await users.add_or_update(
                session, name, role, password, agent_id, services.clock.now())
            summary = f"{user.name} ({user.role}" + (
                f", agent {user.agent_id})" if user.agent_id else ")")
    except users.BadUser as exc:
        return f"cannot add {name!r}: {exc}", False
    finally:
        await services.store.close()
    return f"{'created' if created else 'updated'} user {summary}", True
