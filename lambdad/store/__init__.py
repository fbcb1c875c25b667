"""Durable state in one SQLite file: async events, local queues, dead letters, pending files, counters."""

from lambdad.store.db import Durability, Store, StoreError, StoreUnavailable

__all__ = ["Durability", "Store", "StoreError", "StoreUnavailable"]
