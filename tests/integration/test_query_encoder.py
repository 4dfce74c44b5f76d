"""The lean query forward pass of the default model returns what the model itself returns, and is only used when
it does."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from memory_plugin.embedding import Embedder, _load_local_model
from memory_plugin.query_encoder import BertQueryEncoder

pytestmark = pytest.mark.model

QUERIES = [
    "What did Melanie paint last summer?",
    "Which foods should I avoid in recipes for this user?",
    "使用者喜歡什麼飲品",
    "naïve café déjà vu — résumé ✨🙂",
    "x",
    "",
    "   leading and trailing spaces   ",
    "tabs\tand\nnew lines",
    "a " * 600,  # far past the model's 256-token truncation
    "When did Caroline go to the LGBTQ support group? " * 30,
]


@pytest.fixture(scope="module")
def model() -> Any:
    return _load_local_model()


def test_query_vectors_equal_the_models_own(real_embedder: Embedder, model: Any) -> None:
    expected = model.encode(QUERIES, normalize_embeddings=True, batch_size=64)
    got = np.stack([real_embedder.embed_query(text) for text in QUERIES])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(got, real_embedder.embed_documents(QUERIES), rtol=0, atol=1e-5)


def test_the_default_model_gets_the_lean_path(model: Any) -> None:
    encoder = BertQueryEncoder.verified(model, lambda text: model.encode([text], normalize_embeddings=True))
    assert encoder is not None
    assert encoder("hello").shape == (1, 384)


def test_a_lean_path_that_differs_from_the_model_is_not_used(model: Any) -> None:
    def shifted(text: str) -> Any:
        vector = model.encode([text], normalize_embeddings=True)
        vector[0, 0] += 1e-3
        return vector

    assert BertQueryEncoder.verified(model, shifted) is None


def test_another_pooling_is_not_taken_for_the_default_model(model: Any) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Normalize, Pooling

    cls_pooled = SentenceTransformer(modules=[model[0], Pooling(384, pooling_mode="cls"), Normalize()], device="cpu")
    reference = cls_pooled.encode(["probe"], normalize_embeddings=True)
    assert BertQueryEncoder.verified(cls_pooled, lambda text: reference) is None
    unnormalised = SentenceTransformer(modules=[model[0], model[1]], device="cpu")
    assert BertQueryEncoder.verified(unnormalised, lambda text: unnormalised.encode([text])) is None


def test_the_local_embedder_takes_the_lean_path(real_embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    real_embedder.warm_up()  # verified once, when the model loads

    def generic_path(model: Any, text: str) -> Any:
        raise AssertionError("the query went through the model's generic path")

    monkeypatch.setattr("memory_plugin.embedding._encode_one", generic_path)
    assert real_embedder.embed_query("What did Melanie paint last summer?").shape == (384,)
