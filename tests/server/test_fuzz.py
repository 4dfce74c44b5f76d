"""Fuzz the memory server from its own OpenAPI document (schemathesis): every operation, with requests that fit
the schema and requests that do not, must be answered without a server error, in the documented shapes.

Bounded for CI: deterministic generation (hypothesis ``derandomize``) of a few examples per operation and mode,
over one real server (SQLite and Chroma in a temp folder, the fake embedder) authenticated with a Bearer key.
Most cases are steered
(:func:`steer`) to name the fuzz store, a scope of the key's app and a real memory, so that the fuzzed remainder
gets past routing and authorisation into the operations themselves.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

# Imported here, at collection: first imported deep in a test's stack, this module's large literal trips a CPython
# 3.11.7 parser bug ("AST constructor recursion depth mismatch", fixed in 3.11.9) under pytest's assertion rewriting.
import schemathesis.specs.openapi.definitions  # noqa: F401
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.openapi import from_url
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from memory_plugin.ops import STORE_LIFECYCLE, STORE_OPERATIONS
from memory_plugin.ops.http import route_of
from memory_plugin.server.app import ServerLimits
from memory_plugin.server.vikingdb import ROUTE as VIKING_ROUTE
from tests.conftest import make_fake_embedder
from tests.server_harness import running_server

STORE = "fuzz"
SCRATCH = "scratch"
SCOPES = [
    "app-001/u1/assistant/s1",
    "app-001/*/*/*",
    {"app_id": "app-001", "tenant_id": "u2", "agent_id": "a", "run_id": "r"},
    {"app_id": "app-001", "tenant_id": ["u1", "u2"], "agent_id": "*", "run_id": ["s1"]},
]
CHOICES = [2, 1, 4, 3, 6, 5, 8, 7, 0]  # 0 (not steered) last: hypothesis favours the first
# Per operation and mode; MEMORY_PLUGIN_FUZZ_EXAMPLES=500 for a deeper run by hand.
EXAMPLES = int(os.environ.get("MEMORY_PLUGIN_FUZZ_EXAMPLES", "8"))
ERROR_FIELDS = {"code", "message", "field", "request_id"}
OPERATIONS = [(route_of(op).method, route_of(op).path) for op in (*STORE_LIFECYCLE, *STORE_OPERATIONS)]
OPERATIONS.append(("POST", VIKING_ROUTE))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@dataclass
class Fuzzing:
    schema: Any
    auth: dict[str, str]
    memory_id: str


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzing]:
    limits = ServerLimits(requests_per_second=1_000_000, burst=1_000_000)
    with running_server(tmp_path_factory.mktemp("fuzz"), make_fake_embedder(), limits=limits) as server:
        with server.client() as client:
            store = client.create_memory_store(STORE)
            added = store.add(SCOPES[0], messages=[{"role": "user", "content": "I like coffee"}])
        schema = from_url(f"{server.url}/openapi.json")
        auth = {"Authorization": f"Bearer {server.key.key_id}.{server.secret}"}
        yield Fuzzing(schema, auth, added.memories[0].id)


def steer(case: Any, fuzzing: Fuzzing, choice: int) -> None:
    """Most generated requests would stop at the first check (an unknown store, a scope of another app); this
    makes some of them name the fuzz store, a scope of the key's app and a real memory, so that the fuzzed
    remainder reaches the operations themselves. ``choice`` 0 leaves the case as generated."""
    if choice == 0:
        return
    if case.path_parameters and "store" in case.path_parameters:
        case.path_parameters["store"] = STORE
    if case.path_parameters and "name" in case.path_parameters:
        case.path_parameters["name"] = SCRATCH  # store lifecycle on a store of its own
    body = case.body
    if isinstance(body, dict):
        if "scope" in body:
            body["scope"] = SCOPES[choice % len(SCOPES)]  # even choices: a concrete scope, as writes need
        if "messages" in body and "text" in body:  # an add takes one of them
            del body["messages" if choice % 2 else "text"]
        if "memory_id" in body and choice % 2:
            body["memory_id"] = fuzzing.memory_id
        if "name" in body and choice % 2:
            body["name"] = SCRATCH
        if "collection_name" in body:
            body["collection_name"] = STORE


# GET /v1/stores takes nothing: no request to it can be invalid.
CASES = [
    (method, path, mode)
    for method, path in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or "{" in path or method != "GET"
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=[f"{m} {p} {mode.value}" for m, p, mode in CASES])
def test_no_server_error_and_documented_answers(api: Fuzzing, method: str, path: str, mode: GenerationMode) -> None:
    operation = api.schema[path][method]

    @settings(
        max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
        suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )  # fmt: skip
    @given(case=operation.as_strategy(generation_mode=mode), choice=st.sampled_from(CHOICES))
    def answers_well(case: Any, choice: int) -> None:
        steer(case, api, choice)
        response = case.call(headers=api.auth)
        case.validate_response(response, checks=CHECKS)
        if response.status_code >= 400:
            assert set(response.json()) >= ERROR_FIELDS, response.text

    answers_well()
