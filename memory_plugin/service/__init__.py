"""The service layer: executes operations (``memory_plugin.ops``) over the storage seam (``memory_plugin.storage``).

It holds every rule (validation, scope checks, audit, transactions), the search and the write path, and the
background worker; no storage code."""

from __future__ import annotations

from .service import MemoryService

__all__ = ["MemoryService"]
