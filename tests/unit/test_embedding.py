from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from memory_plugin import Embedder, EmbeddingError, EmbeddingMismatchError, InvalidArgumentError
from memory_plugin.embedding import check_embedder_matches


class LangChainStyle:
    model = "lc-model"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[float(len(t)), 1.0] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return [1.0, 0.0]


class LlamaIndexStyle:
    model_name = "li-model"

    def get_text_embedding_batch(self, texts: list[str]) -> list[list[float]]:
        return [[0.0, 2.0] for _ in texts]

    def get_query_embedding(self, query: str) -> list[float]:
        return [3.0, 4.0]


class ChromaStyle:
    @staticmethod
    def name() -> str:
        return "chroma-ef"

    def __call__(self, input: list[str]) -> list[np.ndarray]:
        return [np.array([1.0, 1.0]) for _ in input]


@pytest.mark.parametrize(
    ("source", "name"),
    [
        (LangChainStyle(), "LangChainStyle:lc-model"),
        (LlamaIndexStyle(), "LlamaIndexStyle:li-model"),
        (ChromaStyle(), "chroma-ef"),
    ],
)
def test_framework_embedders_are_wrapped_with_stable_names(source: Any, name: str) -> None:
    embedder = Embedder.from_any(source)
    assert embedder.name == name
    rows = embedder.embed_documents(["a", "bb"])
    assert rows.shape == (2, 2) and rows.dtype == np.float32
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0)
    assert np.isclose(np.linalg.norm(embedder.embed_query("q")), 1.0)
    assert embedder.dimension == 2


def test_plain_callable_and_explicit_name() -> None:
    embedder = Embedder.from_any(lambda texts: [[1.0, 2.0, 2.0] for _ in texts], name="toy-v1")
    assert embedder.name == "toy-v1"
    assert np.allclose(embedder.embed_query("x"), [1 / 3, 2 / 3, 2 / 3])


def test_unsupported_embedder_is_a_clear_error() -> None:
    with pytest.raises(InvalidArgumentError, match="embedder: must be None"):
        Embedder.from_any(SimpleNamespace(foo=1))


@pytest.mark.parametrize(
    "output",
    [[[1.0]], [[1.0, float("nan")]] * 2, "nonsense", [[1.0, 2.0], [1.0]], [[]] * 2],
)
def test_bad_embedder_output_raises_embedding_error(output: Any) -> None:
    embedder = Embedder(lambda texts: output, name="bad")
    with pytest.raises(EmbeddingError, match="bad"):
        embedder.embed_documents(["a", "b"])


def test_raising_embedder_is_wrapped() -> None:
    def broken(texts: list[str]) -> list[list[float]]:
        raise RuntimeError("model server down")

    with pytest.raises(EmbeddingError, match="model server down"):
        Embedder(broken, name="broken").embed_documents(["a"])


def test_dimension_change_is_a_mismatch() -> None:
    sizes = iter([2, 3])
    embedder = Embedder(lambda texts: [[1.0] * next(sizes) for _ in texts], name="drifting")
    embedder.embed_documents(["a"])
    with pytest.raises(EmbeddingMismatchError, match="3-dimensional"):
        embedder.embed_documents(["a"])


def test_store_refuses_another_embedder() -> None:
    embedder = Embedder(lambda texts: [[1.0, 0.0] for _ in texts], name="a", dimension=2)
    check_embedder_matches("s", "a", 2, embedder)
    with pytest.raises(EmbeddingMismatchError, match="built with embedder 'b'"):
        check_embedder_matches("s", "b", 2, embedder)
    with pytest.raises(EmbeddingMismatchError, match="holds 3-dimensional"):
        check_embedder_matches("s", "a", 3, embedder)
