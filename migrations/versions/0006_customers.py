"""Customers: identities (handle, e-mail, phone, CRM id), the link audit, notes, CRM fields

Existing authors' handles and customers' e-mails become identities, so linking by strong
identifiers works for customers seen before the upgrade.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_id", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("lifetime_value", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("merged_into", sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(op.f("uq_customers_external_id"), ["external_id"])
    identities = op.create_table(
        "customer_identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=30), nullable=False),
        sa.Column("value", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"],
            name=op.f("fk_customer_identities_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_identities")),
        sa.UniqueConstraint("kind", "channel", "value", name="uq_customer_identities_kind"),
    )
    with op.batch_alter_table("customer_identities", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_identities_customer_id"), ["customer_id"], unique=False
        )
    op.create_table(
        "customer_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("other_customer_id", sa.Integer(), nullable=True),
        sa.Column("identity_id", sa.Integer(), nullable=True),
        sa.Column("identity", sa.String(length=400), nullable=True),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("undo", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_links")),
    )
    with op.batch_alter_table("customer_links", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_links_customer_id"), ["customer_id"], unique=False
        )
    op.create_table(
        "customer_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=100), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"],
            name=op.f("fk_customer_notes_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_notes")),
    )
    with op.batch_alter_table("customer_notes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_notes_customer_id"), ["customer_id"], unique=False
        )
    _backfill(identities)


def _backfill(identities: sa.Table) -> None:
    """Handles and e-mails already known become identities (first owner wins a clash)."""
    bind = op.get_bind()
    now = datetime.now(UTC).replace(tzinfo=None) if bind.dialect.name == "sqlite" else (
        datetime.now(UTC))
    seen: set[tuple[str, str, str]] = set()
    rows = []
    authors = bind.execute(sa.text("SELECT channel, handle, customer_id FROM authors ORDER BY id"))
    customers = bind.execute(sa.text(
        "SELECT 'email', '', email, id FROM customers WHERE email IS NOT NULL ORDER BY id"))
    wanted = [("handle", channel, handle.lstrip("@").lower(), cid)
              for channel, handle, cid in authors]
    wanted += [("email", "", email.strip().lower(), cid) for _, _, email, cid in customers]
    for kind, channel, value, cid in wanted:
        if (kind, channel, value) not in seen and value:
            seen.add((kind, channel, value))
            rows.append({"customer_id": cid, "kind": kind, "channel": channel,
                         "value": value[:320], "created_at": now})
    if rows:
        op.bulk_insert(identities, rows)


def downgrade() -> None:
    op.drop_table("customer_notes")
    op.drop_table("customer_links")
    op.drop_table("customer_identities")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_customers_external_id"), type_="unique")
        batch_op.drop_column("merged_into")
        batch_op.drop_column("lifetime_value")
        batch_op.drop_column("external_id")
