"""LangChain's own standard test suites (the ``langchain-tests`` package) run against our adapters.

- ``RetrieversIntegrationTests`` for :class:`MemoryRetriever`, once with LangChain's conventional ``k`` and once
  with our ``top_k`` (retrieval, so on the real local model).
- ``ToolsUnitTests`` and ``ToolsIntegrationTests`` for each tool of :func:`create_memory_tools` (fake embedder:
  they check the tool interface, not retrieval quality).

``langchain-tests`` has no standard suite for chat message histories or for LangGraph stores; those adapters are
checked against LangChain's and LangGraph's own in-memory implementations in ``test_contracts.py``. Its
key-value ``BaseStore`` and vector-store suites do not apply: no adapter implements those interfaces.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import BaseTool
from langchain_tests.integration_tests import RetrieversIntegrationTests, ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests

from langchain_memory_plugin import MemoryRetriever, create_memory_tools
from memory_plugin import Embedder, MemoryClient, MemoryStore, Scope
from tests.adapters.langchain.conftest import AGENT, APP, scope
from tests.conftest import make_fake_embedder

COFFEE_NOTES = [
    "The user drinks espresso every morning",
    "The user's favourite coffee shop is around the corner",
    "The user switched to decaf coffee after 4 pm",
    "The user has a cat called Miso",
]


class _MemoryRetrieverSuite(RetrieversIntegrationTests):
    """The standard retriever tests on a store holding a few memories of one user (real embedding model)."""

    memory_store: ClassVar[MemoryStore]

    @pytest.fixture(autouse=True, scope="class")
    def _memories(
        self, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, real_embedder: Embedder
    ) -> Iterator[None]:
        # One store per suite: the standard tests only read it.
        with MemoryClient(path=tmp_path_factory.mktemp("retriever"), embedder=real_embedder) as client:
            request.cls.memory_store = client.create_memory_store("standard_retriever")
            for note in COFFEE_NOTES:
                request.cls.memory_store.add(scope(), text=note)
            yield

    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return MemoryRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"store": self.memory_store, "scope": Scope(app_id=APP, tenant_id="alice", agent_id="*", run_id="*")}

    @property
    def retriever_query_example(self) -> str:
        return "what coffee does the user drink?"


@pytest.mark.model
class TestMemoryRetrieverWithK(_MemoryRetrieverSuite):
    """``MemoryRetriever(k=3)`` and ``invoke(query, k=3)``: LangChain's conventional name."""

    @property
    def num_results_arg_name(self) -> str:
        return "k"


@pytest.mark.model
class TestMemoryRetrieverWithTopK(_MemoryRetrieverSuite):
    """``MemoryRetriever(top_k=3)`` and ``invoke(query, top_k=3)``: our own name."""

    @property
    def num_results_arg_name(self) -> str:
        return "top_k"


class _MemoryToolSuite:
    """One tool of :func:`create_memory_tools`, with every scope segment fixed (a tool called outside an agent has
    no runtime context to take them from), on a store holding one memory the tools can find, change and delete."""

    tool_name: ClassVar[str]
    example_args: ClassVar[dict[str, Any]]
    memory_store: ClassVar[MemoryStore]

    @pytest.fixture(autouse=True, scope="class")
    def _memories(self, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
        # One store per suite: the standard tests check what the tools answer, not what they leave behind.
        with MemoryClient(path=tmp_path_factory.mktemp("tools"), embedder=make_fake_embedder()) as client:
            request.cls.memory_store = client.create_memory_store("standard_tools")
            request.cls.memory_store.add(scope(), text="The user is allergic to peanuts")
            yield

    @property
    def tool_constructor(self) -> BaseTool:
        tools = create_memory_tools(self.memory_store, app_id=APP, tenant_id="alice", agent_id=AGENT, run_id="s1")
        return next(t for t in tools if t.name == self.tool_name)

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return dict(self.example_args)


class _SaveMemory(_MemoryToolSuite):
    tool_name = "save_memory"
    example_args: ClassVar[dict[str, Any]] = {"text": "The user lives in Lisbon"}


class _SearchMemories(_MemoryToolSuite):
    tool_name = "search_memories"
    example_args: ClassVar[dict[str, Any]] = {"query": "peanuts", "top_k": 2}


class _UpdateMemory(_MemoryToolSuite):
    tool_name = "update_memory"
    example_args: ClassVar[dict[str, Any]] = {"memory_id": "mem_unknown", "text": "The user is allergic to cashews"}


class _DeleteMemory(_MemoryToolSuite):
    tool_name = "delete_memory"
    example_args: ClassVar[dict[str, Any]] = {"memory_id": "mem_unknown", "run_id": "s1"}


class TestSaveMemoryToolUnit(_SaveMemory, ToolsUnitTests):
    pass


class TestSaveMemoryToolIntegration(_SaveMemory, ToolsIntegrationTests):
    pass


class TestSearchMemoriesToolUnit(_SearchMemories, ToolsUnitTests):
    pass


class TestSearchMemoriesToolIntegration(_SearchMemories, ToolsIntegrationTests):
    pass


class TestUpdateMemoryToolUnit(_UpdateMemory, ToolsUnitTests):
    pass


class TestUpdateMemoryToolIntegration(_UpdateMemory, ToolsIntegrationTests):
    pass


class TestDeleteMemoryToolUnit(_DeleteMemory, ToolsUnitTests):
    pass


class TestDeleteMemoryToolIntegration(_DeleteMemory, ToolsIntegrationTests):
    pass
