"""memory_plugin: long-term and short-term memory for LLM agents, embedded in your process.

>>> from memory_plugin import MemoryClient, Scope
"""

from __future__ import annotations

from .aio import AsyncMemoryClient, AsyncMemoryStore
from .client import MemoryClient, MemoryStore
from .embedding import Embedder
from .errors import (
    AuthenticationError,
    ClientClosedError,
    ConnectionFailedError,
    EmbeddingError,
    EmbeddingMismatchError,
    ExtractionError,
    ForbiddenError,
    InvalidArgumentError,
    InvalidScopeError,
    KeyNotFoundError,
    MemoryNotFoundError,
    MemoryPluginError,
    MemoryStoreExistsError,
    MemoryStoreNotFoundError,
    RateLimitedError,
    RequestRefusedError,
    RequestTooLargeError,
    StorageError,
    StoreLockedError,
)
from .extraction import (
    ExtractionInput,
    Extractor,
    MemoryDeletion,
    MemoryOperation,
    MemoryUnchanged,
    MemoryUpdate,
    NewMemory,
    TurnExtractor,
)
from .llm_extraction import LLMExtractor, PromptTemplates
from .models import (
    ActivityBucket,
    AddResult,
    DeleteAllResult,
    ExtractionJob,
    HistoryEvent,
    Memory,
    MemoryStoreInfo,
    Message,
    Page,
    PruneResult,
    RequestRecord,
    ScopeSummary,
    SearchHit,
    SearchResults,
    StoreStats,
    Usage,
)
from .retrieval import DEFAULT_MIN_SCORE
from .scope import Scope
from .settings import Settings

__all__ = [
    "ActivityBucket",
    "ScopeSummary",
    "StoreStats",
    "RequestTooLargeError",
    "RequestRefusedError",
    "RateLimitedError",
    "KeyNotFoundError",
    "ForbiddenError",
    "ConnectionFailedError",
    "AuthenticationError",
    "AddResult",
    "AsyncMemoryClient",
    "AsyncMemoryStore",
    "ClientClosedError",
    "DEFAULT_MIN_SCORE",
    "DeleteAllResult",
    "Embedder",
    "EmbeddingError",
    "EmbeddingMismatchError",
    "ExtractionError",
    "ExtractionInput",
    "ExtractionJob",
    "Extractor",
    "HistoryEvent",
    "InvalidArgumentError",
    "InvalidScopeError",
    "LLMExtractor",
    "Memory",
    "MemoryClient",
    "MemoryDeletion",
    "MemoryOperation",
    "MemoryUnchanged",
    "MemoryNotFoundError",
    "MemoryPluginError",
    "MemoryStore",
    "MemoryStoreExistsError",
    "MemoryStoreInfo",
    "MemoryStoreNotFoundError",
    "MemoryUpdate",
    "Message",
    "NewMemory",
    "Page",
    "PromptTemplates",
    "PruneResult",
    "RequestRecord",
    "Scope",
    "Settings",
    "SearchHit",
    "SearchResults",
    "StorageError",
    "StoreLockedError",
    "TurnExtractor",
    "Usage",
]
__version__ = "0.1.0"
