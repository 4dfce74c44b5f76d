from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memory_plugin import InvalidScopeError, Scope
from memory_plugin.errors import InvalidArgumentError


def test_concrete_scope_keeps_its_ids() -> None:
    scope = Scope(app_id="app", tenant_id="user", agent_id="bot", run_id="run")
    assert scope.is_concrete
    assert scope.require_concrete("add") is scope
    assert str(scope) == "app/user/bot/run"


@pytest.mark.parametrize("segment", ["tenant_id", "agent_id", "run_id"])
def test_wildcard_allowed_in_read_segments_but_not_for_writes(segment: str) -> None:
    values = {"app_id": "app", "tenant_id": "u", "agent_id": "a", "run_id": "r", segment: "*"}
    scope = Scope(**values)
    assert not scope.is_concrete
    with pytest.raises(InvalidScopeError, match=f"scope.{segment}"):
        scope.require_concrete("add")


def test_id_list_is_a_tuple_deduplicated_and_single_item_collapses() -> None:
    scope = Scope(app_id="app", tenant_id=["u1", "u2", "u1"], agent_id=["a"], run_id="*")
    assert scope.tenant_id == ("u1", "u2")
    assert scope.agent_id == "a"
    with pytest.raises(InvalidScopeError, match="tenant_id"):
        scope.require_concrete("get")


@pytest.mark.parametrize(
    ("values", "field", "problem"),
    [
        ({"app_id": "*"}, "app_id", "concrete"),
        ({"app_id": ["a", "b"]}, "app_id", "single id"),
        ({"tenant_id": ""}, "tenant_id", "empty"),
        ({"tenant_id": "   "}, "tenant_id", "empty"),
        ({"agent_id": "x" * 129}, "agent_id", "at most 128"),
        ({"run_id": "a\x00b"}, "run_id", "control"),
        ({"run_id": "line\nbreak"}, "run_id", "control"),
        ({"run_id": "a*"}, "run_id", "'\\*'"),
        ({"tenant_id": []}, "tenant_id", "empty"),
        ({"tenant_id": ["ok", "*"]}, r"tenant_id\[1\]", "'\\*'"),
        ({"tenant_id": ["u"] * 101}, "tenant_id", "at most 100"),
        ({"tenant_id": 5}, "tenant_id", "got int"),
        ({"tenant_id": {"$ne": ""}}, "tenant_id", "dict"),
    ],
)
def test_bad_segments_name_the_field(values: dict[str, object], field: str, problem: str) -> None:
    base: dict[str, object] = {"app_id": "app", "tenant_id": "u", "agent_id": "a", "run_id": "r"}
    with pytest.raises(InvalidScopeError, match=f"{field}.*{problem}"):
        Scope(**{**base, **values})  # type: ignore[arg-type]


def test_scope_is_frozen() -> None:
    scope = Scope(app_id="app", tenant_id="u", agent_id="a", run_id="r")
    with pytest.raises(AttributeError):
        scope.tenant_id = "other"  # type: ignore[misc]


def test_parse_accepts_mappings_in_snake_and_camel_case() -> None:
    expected = Scope(app_id="app", tenant_id="u", agent_id="a", run_id="r")
    assert Scope.parse({"app_id": "app", "tenant_id": "u", "agent_id": "a", "run_id": "r"}) == expected
    assert Scope.parse({"appId": "app", "tenantId": "u", "agentId": "a", "runId": "r"}) == expected
    with pytest.raises(InvalidScopeError, match="missing"):
        Scope.parse({"app_id": "app"})
    with pytest.raises(InvalidScopeError, match="unknown"):
        Scope.parse({"app_id": "app", "tenant_id": "u", "agent_id": "a", "run_id": "r", "store": "x"})
    with pytest.raises(InvalidArgumentError, match="scope"):
        Scope.parse(42)


def test_parse_reads_the_text_form_str_prints() -> None:
    assert Scope.parse("app/u/a/r") == Scope(app_id="app", tenant_id="u", agent_id="a", run_id="r")
    assert Scope.parse("app/u/*/[s1,s2]") == Scope(app_id="app", tenant_id="u", agent_id="*", run_id=["s1", "s2"])
    assert Scope.parse("app/u1,u2/*/*").tenant_id == ("u1", "u2")
    for bad, problem in (("app/u/a", "4 segments"), ("app/u/a/r/x", "4 segments"), ("*/u/a/r", "app_id")):
        with pytest.raises(InvalidScopeError, match=problem):
            Scope.parse(bad)


def test_with_replaces_segments_and_validates() -> None:
    scope = Scope(app_id="app", tenant_id="u", agent_id="a", run_id="r")
    assert scope.with_(run_id="*").run_id == "*"
    with pytest.raises(InvalidScopeError):
        scope.with_(app_id="*")


ids = st.text(min_size=1, max_size=128).filter(
    lambda s: (
        s.strip()
        and "*" not in s
        and all(ord(c) >= 32 and not 127 <= ord(c) < 160 for c in s)
        and not any(0xD800 <= ord(c) <= 0xDFFF or c in "\u2028\u2029" for c in s)
    )
)


@given(app=ids, tenant=ids, agent=ids, run=ids)
def test_any_valid_ids_make_a_concrete_scope(app: str, tenant: str, agent: str, run: str) -> None:
    scope = Scope(app_id=app, tenant_id=tenant, agent_id=agent, run_id=run)
    assert scope.is_concrete
    assert scope.segments() == {"app_id": app, "tenant_id": tenant, "agent_id": agent, "run_id": run}
    if not any("/" in i or "," in i or i.startswith("[") for i in (app, tenant, agent, run)):
        assert Scope.parse(str(scope)) == scope  # the text form round-trips
