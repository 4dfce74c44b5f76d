"""Authorisation rules: apps, tenants, read-only and admin keys; a property test that scopes are never widened."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memory_plugin import Scope
from memory_plugin.errors import ForbiddenError
from memory_plugin.keys import KeyRecord
from memory_plugin.server.authorization import OPERATION_KINDS, OperationKind, authorize

NOW = datetime(2026, 11, 30, tzinfo=timezone.utc)


def key(
    tenants: set[str] | None = None, *, app: str = "app-a", read_only: bool = False, admin: bool = False
) -> KeyRecord:
    return KeyRecord(
        "mpk_abcdefghijklmnopqrst", app, None if tenants is None else frozenset(tenants), read_only, admin, NOW
    )


def scope(tenant: str | list[str], app: str = "app-a") -> Scope:
    return Scope(app_id=app, tenant_id=tenant, agent_id="*", run_id="*")


def concrete(tenant: str, app: str = "app-a") -> Scope:
    return Scope(app_id=app, tenant_id=tenant, agent_id="bot", run_id="s1")


def test_an_unbound_key_reaches_every_tenant_of_its_app() -> None:
    for s in (scope("*"), scope("u9"), scope(["u1", "u9"])):
        assert authorize(key(), "read", s) == s
    assert authorize(key(), "write", concrete("u9")) == concrete("u9")


def test_a_key_of_app_a_on_app_b_is_refused() -> None:
    for kind in ("read", "write"):
        with pytest.raises(ForbiddenError, match="bound to app_id 'app-a'; scope.app_id 'app-b'") as caught:
            authorize(key(), kind, concrete("u1", app="app-b"))
        assert caught.value.http_status == 403
    with pytest.raises(ForbiddenError, match="app_id"):
        authorize(key(admin=True), "store-admin", concrete("u1", app="app-b"))


def test_tenant_bound_reads_are_narrowed_never_widened() -> None:
    bound = key({"u1", "u2"})
    assert authorize(bound, "read", scope("*")).tenant_id == ("u1", "u2")
    assert authorize(key({"u1"}), "read", scope("*")).tenant_id == "u1"
    assert authorize(bound, "read", scope("u2")) == scope("u2")
    assert authorize(bound, "read", scope(["u2", "u1"])) == scope(["u2", "u1"])
    narrowed = authorize(bound, "read", Scope("app-a", "*", ["bot", "x"], "s1"))
    assert (narrowed.agent_id, narrowed.run_id) == (("bot", "x"), "s1")  # other segments untouched


@pytest.mark.parametrize(
    ("tenant", "refused"), [("u3", "'u3'"), (["u1", "u3"], "'u3'"), (["u4", "u1", "u3"], "'u3', 'u4'")]
)
def test_tenant_bound_keys_cannot_reach_other_tenants(tenant: str | list[str], refused: str) -> None:
    bound = key({"u1", "u2"})
    with pytest.raises(ForbiddenError, match=f"may not reach tenant_id {refused}; it is bound to 'u1', 'u2'"):
        authorize(bound, "read", scope(tenant))
    if isinstance(tenant, str):
        with pytest.raises(ForbiddenError, match=refused):
            authorize(bound, "write", concrete(tenant))


def test_tenant_bound_writes_need_one_of_the_key_tenants() -> None:
    bound = key({"u1", "u2"})
    assert authorize(bound, "write", concrete("u1")) == concrete("u1")
    with pytest.raises(ForbiddenError, match="a write must name one of them, not '\\*'"):
        authorize(bound, "write", Scope("app-a", "*", "*", "*"))


def test_read_only_keys_cannot_write() -> None:
    reader = key({"u1"}, read_only=True)
    assert authorize(reader, "read", scope("u1")) == scope("u1")
    with pytest.raises(ForbiddenError, match="read-only"):
        authorize(reader, "write", concrete("u1"))


@pytest.mark.parametrize("kind", ["store-admin", "key-admin"])
def test_administration_needs_an_admin_key(kind: OperationKind) -> None:
    for plain in (key(), key({"u1"}), key(read_only=True)):
        with pytest.raises(ForbiddenError, match="need an admin key"):
            authorize(plain, kind)
    assert authorize(key(admin=True), kind) is None
    assert authorize(key(admin=True), "write", concrete("u1")) == concrete("u1")


def test_revoked_keys_and_unknown_kinds_are_refused() -> None:
    revoked = KeyRecord("mpk_abcdefghijklmnopqrst", "app-a", None, False, True, NOW, revoked_at=NOW)
    with pytest.raises(ForbiddenError, match="revoked"):
        authorize(revoked, "read", scope("u1"))
    with pytest.raises(ValueError, match="kind must be one of"):
        authorize(key(), "delete", scope("u1"))  # type: ignore[arg-type]


def test_refusals_never_name_tenants_outside_the_request_and_the_key() -> None:
    """The message may name what was asked and the key's own binding; nothing else exists for the caller."""
    with pytest.raises(ForbiddenError) as caught:
        authorize(key({"u1"}), "read", scope(["u1", "secret-tenant-asked"]))
    message = str(caught.value)
    assert "secret-tenant-asked" in message and "'u1'" in message and "u2" not in message


IDS = st.sampled_from(["u1", "u2", "u3", "u4", "u5"])
APPS = st.sampled_from(["app-a", "app-b"])


@st.composite
def keys(draw: st.DrawFn) -> KeyRecord:
    admin = draw(st.booleans())
    tenants = None if admin or draw(st.booleans()) else draw(st.frozensets(IDS, min_size=1))
    read_only = not admin and draw(st.booleans())
    return KeyRecord("mpk_abcdefghijklmnopqrst", draw(APPS), tenants, read_only, admin, NOW)


@st.composite
def scopes(draw: st.DrawFn) -> Scope:
    tenant = draw(st.one_of(st.just("*"), IDS, st.lists(IDS, min_size=1, max_size=5)))
    segment = st.one_of(
        st.just("*"), st.sampled_from(["bot", "x"]), st.lists(st.sampled_from(["bot", "x"]), min_size=1)
    )
    return Scope(app_id=draw(APPS), tenant_id=tenant, agent_id=draw(segment), run_id=draw(segment))


def _tenant_set(value: str | tuple[str, ...]) -> set[str] | None:
    """None for '*' (every tenant)."""
    return None if value == "*" else {value} if isinstance(value, str) else set(value)


@given(keys(), st.sampled_from(OPERATION_KINDS), scopes())
def test_authorized_scopes_stay_inside_the_key_and_the_request(k: KeyRecord, kind: OperationKind, s: Scope) -> None:
    try:
        result = authorize(k, kind, s)
    except ForbiddenError:
        return
    assert result.app_id == k.app_id == s.app_id
    assert (result.agent_id, result.run_id) == (s.agent_id, s.run_id)
    granted, asked = _tenant_set(result.tenant_id), _tenant_set(s.tenant_id)
    if k.tenant_ids is not None:
        assert granted is not None and granted <= k.tenant_ids  # bound: never '*', never another tenant
    if asked is not None:
        assert granted is not None and granted <= asked  # never widened beyond the request
    assert not (kind == "write" and k.read_only)
    assert kind not in ("store-admin", "key-admin") or k.admin
