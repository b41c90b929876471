"""The repository layer: every SQL statement lives in this package."""

from listener.store.base import Store
from listener.store.ingest import IngestTx
from listener.store.queries import MentionFilter, MentionPage

__all__ = ["IngestTx", "MentionFilter", "MentionPage", "Store"]
