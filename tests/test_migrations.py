"""The Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from listener import db
from listener.models import Base


async def test_migrations_reach_head_and_match_the_models(db_url: str) -> None:
    engine = db.create_engine(db_url)
    try:
        assert not await db.at_head(engine)
        await db.migrate(engine)
        assert await db.current_revision(engine) == db.head_revision()
        await db.migrate(engine)  # running again is a no-op

        def diff(connection: object) -> list[object]:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, Base.metadata)

        async with engine.connect() as connection:
            assert await connection.run_sync(diff) == []
    finally:
        await engine.dispose()
