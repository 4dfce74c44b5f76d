"""The web console end to end: a real memory server (real embedding model) and headless Chromium, driven the way a
developer or a support person uses it. One server and one browser for the module; each test signs in afresh and
works on tenants of its own, so the tests do not depend on their order."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from memory_plugin import Scope
from tests.console.browser import Console
from tests.server_harness import RunningServer, running_server

pytestmark = pytest.mark.model
APP = "app-001"
STORE = "agent_memory"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, real_embedder: Any) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("console"), real_embedder) as server:
        client = server.client()
        store = client.create_memory_store(STORE, description="what the support agent remembers")
        for tenant, turns, fact, topic in (
            ("alice", ["I moved to Lisbon last spring", "Lisbon is lovely, and tram 28 is worth a ride"],
             "Alice is allergic to peanuts", "health"),
            ("bob", ["I play the cello in a small orchestra", "A small orchestra is a fine place to play"],
             "Bob's orchestra rehearses on Thursdays", "music"),
            ("carol", ["My daughter starts school in September", "September is a good month to start school"],
             "Carol drives a green van", "car"),
            ("dave", ["I collect vintage fountain pens", "Fountain pens from the fifties write beautifully"],
             "Dave writes with a 1950s pen", "pens"),
        ):  # fmt: skip
            run = Scope(APP, tenant, "support-bot", "run-1")
            store.add(run, messages=[{"role": "user", "content": turns[0]}, {"role": "assistant", "content": turns[1]}])
            store.add(run, text=fact, metadata={"topic": topic})
        client.close()
        yield server


def memory_of(server: RunningServer, tenant: str, text: str) -> Any:
    client = server.client()
    try:
        page = client.get_memory_store(STORE).list(Scope(APP, tenant, "*", "*"), limit=100)
        return next((m for m in page.items if text in m.text), None)
    finally:
        client.close()


def test_find_a_memory_see_its_history_edit_it_search_it_forget_the_tenant_and_audit_each(
    server: RunningServer, console: Console
) -> None:
    console.sign_in(server.key.key_id, server.secret)
    kept = console.driver.execute_script("return [localStorage.length, document.cookie, sessionStorage.length]")
    assert kept == [0, "", 2]  # the key (and the chosen store) live in this tab's session only
    stores = console.wait_for("main table", STORE)
    # 12 memories (per tenant 2 turns and a fact), 8 messages, 4 tenants, no pending or failed job
    assert re.search(rf"{STORE}\s+what the support agent remembers\s+12\s+8\s+4\s+0\s+0\s", stores), stores
    console.screenshot("01-stores")

    # Find the memory: the tenant's memories filtered by metadata.
    console.open(f"memories?store={STORE}")
    console.fill("#memory-filters", redraws=True, scope=f"{APP}/alice/*/*", filters='{"topic": "health"}')
    table = console.wait_for("main table", "allergic to peanuts")
    assert "Lisbon" not in table and "cello" not in table  # the filter and the scope hold
    console.screenshot("02-memories-filtered")
    console.follow("Alice is allergic to peanuts")

    # Its page: text, metadata, times, and history (created).
    page = console.wait_for("#memory-fields", "Alice is allergic to peanuts")
    assert '{"topic":"health"}' in page and "created" in console.wait_for("main table", "created")

    # Edit it: the history shows the update with the old and new text.
    console.fill("#edit-memory", redraws=True, text="Alice is allergic to peanuts and cashews",
                 metadata='{"topic": "health", "severity": "high"}')  # fmt: skip
    console.wait_for("#memory-text", "peanuts and cashews")
    history = console.wait_for("main table", "updated")
    assert "Alice is allergic to peanuts → Alice is allergic to peanuts and cashews" in history
    edited = memory_of(server, "alice", "cashews")
    assert edited is not None and edited.metadata == {"topic": "health", "severity": "high"}
    console.screenshot("03-memory-history")

    # Search it and read the score breakdown.
    console.open(f"search?store={STORE}")
    console.fill("#search-form", query="what is alice allergic to?", scope=f"{APP}/*/*/*", top_k="3")
    results = console.wait_for("#search-results", "score")
    first_hit = console.driver.find_element(By.CSS_SELECTOR, ".hit")
    assert "peanuts and cashews" in first_hit.text
    signals = {row.find_element(By.TAG_NAME, "th").text: float(row.find_element(By.CLASS_NAME, "num").text)
               for row in first_hit.find_elements(By.CSS_SELECTOR, ".signals tr")}  # fmt: skip
    assert {"semantic", "lexical", "score"} <= set(signals), results
    assert all(0.0 <= value <= 1.0 for name, value in signals.items() if name not in ("bm25", "evidence")), signals
    assert f"score {signals['score']:.4f}" in first_hit.text  # the breakdown ends in the score shown
    console.screenshot("04-search-signals")

    # Forget the tenant: a wrong confirmation erases nothing; the right one erases everything of alice.
    console.open(f"memory?store={STORE}&scope={APP}/alice/support-bot/run-1&id={edited.id}")
    console.wait_for("#memory-fields", "cashews")
    console.fill("#forget-tenant", confirm="alic")
    assert "type alice exactly; nothing was deleted" in console.error("nothing was deleted")
    assert memory_of(server, "alice", "cashews") is not None
    console.fill("#forget-tenant", confirm="alice")
    assert "Tenant alice forgotten: 3 memories" in console.wait_for("main", "Tenant alice forgotten")
    assert memory_of(server, "alice", "") is None and memory_of(server, "bob", "cello") is not None
    console.screenshot("05-tenant-forgotten")

    # The audit has a record of each step, by this key.
    for operation, scope in (("ListMemories", "alice/*/*"), ("GetHistory", "alice/support-bot/run-1"),
                             ("UpdateMemory", "alice/support-bot/run-1"), ("SearchMemories", "*/*/*"),
                             ("DeleteAll", "alice/*/*")):  # fmt: skip
        console.open(f"audit?store={STORE}&operation={operation}&scope={APP}/*/*/*")
        rows = console.wait_for("main tbody", operation)
        assert f"{APP}/{scope}" in rows and "ok" in rows and server.key.key_id in rows
    console.screenshot("06-audit-delete-all")
    console.fill("#audit-filters", redraws=True, operation="", outcome="error", key=server.key.key_id)
    console.wait_for("main", "Nothing here.")  # every call of the journey succeeded


def test_scopes_lead_from_tenants_to_agents_to_runs_to_the_transcript(server: RunningServer, console: Console) -> None:
    console.sign_in(server.key.key_id, server.secret)
    console.open(f"scopes?store={STORE}")
    tenants = console.wait_for("main tbody", "bob")
    assert re.search(r"bob\s+3\s+2\s", tenants), tenants  # 3 memories (2 turns and a fact), 2 messages
    console.follow("bob")
    console.wait_for("main tbody", "support-bot")
    console.follow("support-bot")
    console.wait_for("main tbody", "run-1")
    console.follow("run-1")
    transcript = console.wait_for(".transcript", "I play the cello in a small orchestra")
    assert transcript.index("I play the cello") < transcript.index("A small orchestra is a fine place to play")
    assert "carol" not in transcript.lower()
    console.screenshot("07-transcript")

    # From the run to its memories, and from a memory made of a turn back to that turn.
    console.follow("Memories of this run")
    console.follow("I play the cello in a small orchestra")
    sources = console.wait_for(".transcript", "I play the cello")
    reply = "A small orchestra is a fine place to play"
    assert "user" in sources and reply not in sources  # only the turn it was made from


def test_stores_show_counts_and_admin_keys_create_and_delete_them(server: RunningServer, console: Console) -> None:
    console.sign_in(server.key.key_id, server.secret)
    console.open("stores")
    console.fill("#create-store", name="scratch", description="a store to delete")
    console.wait_for("#store-select option", "scratch")
    console.open(f"memories?store=scratch&scope={APP}/bob/*/*")
    console.wait_for("main", "Nothing here.")
    with console.drawing():  # the store selector shows the same view of the other store
        Select(console.find("#store-select")).select_by_value(STORE)
    assert "cello" in console.wait_for("main tbody", "cello")
    console.open("stores")
    console.wait_for("main tbody", "a store to delete")
    console.find("[aria-label='Delete store scratch']").click()
    console.fill("#delete-store", confirm="scratc")
    console.error("type scratch exactly")
    console.fill("#delete-store", confirm="scratch")
    console.wait_for("main", "Store scratch deleted.")
    client = server.client()
    assert [s.name for s in client.list_memory_stores()] == [STORE]
    client.close()


def test_a_tenant_bound_key_sees_only_its_tenants_in_every_view(server: RunningServer, console: Console) -> None:
    key_id, secret = server.new_key(APP, ["bob"])
    console.sign_in(key_id, secret)
    others = ("carol", "Carol", "green van", "daughter", "fountain pen", "Dave")

    def only_bob(text: str) -> str:
        assert not [word for word in others if word in text], text
        return text

    console.open("stores")
    only_bob(console.wait_for("main tbody", STORE))
    assert "Creating and deleting stores needs an admin key." in console.text()
    console.open(f"scopes?store={STORE}")
    only_bob(console.wait_for("main tbody", "bob"))
    console.open(f"memories?store={STORE}&scope={APP}/*/*/*")
    only_bob(console.wait_for("main tbody", "cello"))
    console.open(f"search?store={STORE}")
    console.fill("#search-form", query="who drives a van or collects pens?", scope=f"{APP}/*/*/*")
    only_bob(console.wait_for("#search-results", "hits from"))
    console.open(f"audit?store={STORE}&scope={APP}/*/*/*")
    only_bob(console.wait_for("main tbody", "ListMemories"))
    console.open(f"charts?store={STORE}")
    assert "Tenants\n1" in console.wait_for(".cards", "Tenants")
    console.open(f"jobs?store={STORE}")
    only_bob(console.wait_for("main", "Extraction jobs"))

    # Asking for another tenant by name is refused with the reason, and shows nothing of it.
    carol = memory_of(server, "carol", "green van")
    for view in (f"memories?store={STORE}&scope={APP}/carol/*/*",
                 f"transcript?store={STORE}&scope={APP}/carol/support-bot/run-1",
                 f"memory?store={STORE}&scope={APP}/carol/support-bot/run-1&id={carol.id}",
                 f"audit?store={STORE}&scope={APP}/carol/*/*",
                 f"search?store={STORE}"):  # fmt: skip
        console.open(view)
        if view.startswith("search"):
            console.fill("#search-form", query="van", scope=f"{APP}/carol/*/*")
        message = console.error("may not reach tenant_id 'carol'")
        assert f"access key {key_id} may not reach tenant_id 'carol'; it is bound to 'bob'" in message
        assert "green van" not in console.text()
    console.screenshot("08-tenant-bound-refused")
    console.sign_out()


def test_bad_input_in_every_form_gets_a_clear_message_and_changes_nothing(
    server: RunningServer, console: Console
) -> None:
    console.driver.get(f"{server.url}/console/")
    console.driver.execute_script("sessionStorage.clear()")
    console.driver.refresh()
    console.fill("#sign-in", key_id="not-a-key", secret="x")
    console.error("key id: must be mpk_ followed by 20 characters")
    console.fill("#sign-in", key_id=server.key.key_id, secret="wrong")
    console.error(f"signature does not match for access key {server.key.key_id}: signed with another secret")
    assert console.driver.execute_script("return sessionStorage.length") == 0  # a refused key is not kept

    console.sign_in(server.key.key_id, server.secret)
    console.open("stores")
    console.fill("#create-store", name="bad name!")
    console.error("name: must be 1-64 characters of letters, digits")

    console.open(f"memories?store={STORE}")
    for values, message in (
        ({"scope": f"{APP}/dave"}, "scope"),
        ({"scope": f"{APP}/dave/*/*", "filters": '{"topic": '}, "metadata filters: must be a JSON object"),
        ({"filters": "", "types": "no such type!"}, "memory_types"),
        ({"types": "", "start": "2026-05-02T10:00", "end": "2026-05-01T10:00"}, "start_time: must not be later"),
    ):
        console.fill("#memory-filters", **values)
        console.error(message)

    dave = memory_of(server, "dave", "1950s pen")
    console.open(f"memory?store={STORE}&scope={APP}/dave/support-bot/run-1&id={dave.id}")
    console.wait_for("#memory-fields", "1950s pen")
    for values, message in (
        ({"text": " "}, "text: must not be empty"),
        ({"text": "Dave writes with a 1950s pen", "metadata": "[1, 2]"}, "metadata: must be a JSON object"),
        ({"metadata": '{"nested": {"no": 1}}'}, "metadata.nested"),
    ):
        console.fill("#edit-memory", **values)
        console.error(message)
    console.find("#delete-memory button").click()
    console.error("tick the box first")
    console.fill("#forget-tenant", confirm="DAVE")
    console.error("type dave exactly")
    after = memory_of(server, "dave", "1950s pen")
    assert after is not None and after.text == dave.text and after.metadata == dave.metadata

    console.open(f"search?store={STORE}")
    for values, message in (
        ({"query": " "}, "query: type what to look for"),
        ({"query": "pens", "top_k": "0"}, "top k: must be a whole number from 1 to 100"),
        ({"top_k": "5", "scope": "nonsense"}, "scope"),
    ):
        console.fill("#search-form", **values)
        console.error(message)

    console.open(f"audit?store={STORE}")
    for values, message in (
        ({"key": "bogus key"}, "access key id: must be mpk_"),
        ({"key": "", "outcome": "not ok!"}, "outcome"),
    ):
        console.fill("#audit-filters", **values)
        console.error(message)


def test_keyboard_only_and_a_phone_screen(server: RunningServer, console: Console) -> None:
    console.driver.get(f"{server.url}/console/")
    console.driver.execute_script("sessionStorage.clear()")
    console.driver.refresh()
    console.wait_for("h1", "Sign in")
    active = console.driver.switch_to.active_element  # the key id field has the focus
    active.send_keys(server.key.key_id, Keys.TAB)
    console.driver.switch_to.active_element.send_keys(server.secret, Keys.ENTER)
    console.wait_for("#whoami", server.key.key_id)
    links = console.driver.find_elements(By.CSS_SELECTOR, "#nav a")
    links[2].send_keys(Keys.ENTER)  # "Memories", reached by Tab like any link
    console.wait_for("h1", "Memories")
    assert console.driver.switch_to.active_element.tag_name == "h1"  # the view's title takes the focus

    console.driver.set_window_size(390, 844)
    try:
        for view in (f"memories?store={STORE}&scope={APP}/bob/*/*", f"search?store={STORE}", f"charts?store={STORE}"):
            console.open(view)
            console.wait_for("main", "bob" if "memories" in view else "")
            width = console.driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1], f"{view} scrolls sideways on a phone: {width}"
        console.open(f"memories?store={STORE}&scope={APP}/bob/*/*")
        console.wait_for("main tbody", "cello")
        console.screenshot("09-phone-memories")
    finally:
        console.driver.set_window_size(1280, 900)


def test_charts_draw_operations_latency_and_memories_per_type(server: RunningServer, console: Console) -> None:
    console.sign_in(server.key.key_id, server.secret)
    console.open(f"charts?store={STORE}")
    console.wait_for("main", "Memories per type")
    labels = console.driver.execute_script(
        "return [...document.querySelectorAll('svg.chart')].map(svg => svg.getAttribute('aria-label'))"
    )
    client = server.client()
    stats = client.get_memory_store(STORE).stats(Scope(APP, "*", "*", "*"))
    client.close()
    operations, latency, types = labels
    assert re.fullmatch(r"requests per minute: [1-9]\d* requests in the last hour, \d+ failed", operations), operations
    assert re.fullmatch(r"latency: p95 latency peaked at \d+\.\d ms", latency), latency
    assert types == "memories: " + ", ".join(f"{name} {count}" for name, count in stats.memory_types.items())
    bars = console.driver.find_elements(By.CSS_SELECTOR, "svg.chart:last-of-type rect")
    assert len(bars) == len(stats.memory_types)
    console.screenshot("11-charts")


def test_a_read_only_key_reads_but_is_offered_no_change(server: RunningServer, console: Console) -> None:
    key_id, secret = server.new_key(APP, ["dave"], read_only=True)
    console.sign_in(key_id, secret)
    whoami = console.driver.find_element(By.ID, "whoami").text
    assert whoami == f"{key_id} · {APP} · tenants dave · read-only"
    dave = memory_of(server, "dave", "1950s pen")
    console.open(f"memory?store={STORE}&scope={APP}/dave/support-bot/run-1&id={dave.id}")
    page = console.wait_for("main", "This key is read-only")
    assert "Dave writes with a 1950s pen" in page
    assert not console.driver.find_elements(By.CSS_SELECTOR, "#edit-memory, #delete-memory, #forget-tenant")
