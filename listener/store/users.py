"""Dashboard logins: argon2 password hashes, roles and the agent each login works as."""

from __future__ import annotations

from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from listener.models import User
from listener.web.access import ROLES
from listener.web.access import User as SignedIn

HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
"""OWASP's argon2id minimum (19 MiB, 2 passes, 1 lane): argon2-cffi's default takes 64 MiB
per sign-in, which was the server's whole memory peak; older hashes still verify and are
re-hashed with these settings at the next sign-in."""
# Verified against when the name is unknown, so a wrong name costs as long as a wrong
# password and response times do not tell which names exist.
_DUMMY_HASH = HASHER.hash("not a password of anyone")
MIN_PASSWORD = 8


class BadUser(ValueError):
    """The user cannot be created as asked; the message says what to change."""


def signed_in(user: User) -> SignedIn:
    return SignedIn(id=user.id, name=user.name, role=user.role, agent_id=user.agent_id,
                    lang=user.lang)


async def add_or_update(session: AsyncSession, name: str, role: str, password: str,
                        agent_id: str | None, now: datetime) -> tuple[User, bool]:
    """Create the user, or change the role, agent and password of an existing one;
    returns (user, created)."""
    name = name.strip()
    if not name or len(name) > 100 or any(ch.isspace() or ord(ch) < 32 for ch in name):
        raise BadUser("the user name must be 1-100 characters without spaces")
    if role not in ROLES:
        raise BadUser(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise BadUser(f"the password must be at least {MIN_PASSWORD} characters")
    user = await session.scalar(select(User).where(User.name == name))
    created = user is None
    if user is None:
        user = User(name=name, created_at=now, active=True)
        session.add(user)
    user.role, user.agent_id, user.active = role, agent_id, True
    user.password_hash = HASHER.hash(password)
    await session.flush()
    return user, created


async def authenticate(session: AsyncSession, name: str, password: str) -> User | None:
    """The active user with this name and password, else None (always one hash check)."""
    user = await session.scalar(select(User).where(User.name == name, User.active.is_(True)))
    try:
        HASHER.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None:
        return None
    if HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = HASHER.hash(password)
    return user


async def load(session: AsyncSession, user_id: int) -> User | None:
    user = await session.get(User, user_id)
    return user if user is not None and user.active else None


async def get(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def all_users(session: AsyncSession) -> list[User]:
    return list(await session.scalars(select(User).order_by(User.name)))


async def any_user(session: AsyncSession) -> bool:
    return await session.scalar(select(User.id).limit(1)) is not None
