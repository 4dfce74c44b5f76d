"""Quick start: an agent remembers what a user said in one session and recalls it in the next.

Runs offline on the embedded default (``./.memory_plugin``, or ``$MEMORY_PLUGIN_HOME``) with the local
all-MiniLM-L6-v2 model. Run it with ``make demo``.
"""

from __future__ import annotations

import asyncio
import contextlib

from memory_plugin import AsyncMemoryClient, MemoryClient, MemoryStoreNotFoundError, Scope

STORE = "quickstart_demo"
MONDAY = Scope(app_id="demo-app", tenant_id="user-001", agent_id="assistant", run_id="session-monday")
FRIDAY = MONDAY.with_(run_id="session-friday")


def fresh_store(client: MemoryClient) -> None:
    """The demo starts from an empty store of its own each time (other stores in the folder are untouched)."""
    with contextlib.suppress(MemoryStoreNotFoundError):
        client.delete_memory_store(STORE)
    client.create_memory_store(STORE, description="Quick start demo memories")


def session_one(client: MemoryClient) -> None:
    store = client.get_memory_store(STORE)
    print(f"== Monday ({MONDAY}): the user talks, every turn is remembered")
    result = store.add(
        MONDAY,
        messages=[
            {"role": "user", "content": "Hi! I'm vegetarian, so no meat suggestions please.", "name": "Lena"},
            {"role": "assistant", "content": "Got it, vegetarian options only."},
            {"role": "user", "content": "I'm flying to Lisbon on the 14th for a conference.", "name": "Lena"},
            {"role": "assistant", "content": "Have a great trip to Lisbon!"},
            {"role": "user", "content": "My cat Miso needs a sitter while I'm away.", "name": "Lena"},
        ],
        metadata={"channel": "chat"},
    )
    store.add(MONDAY, text="Lena prefers short, bullet-point answers")
    print(f"   stored {len(result.message_ids)} raw messages and {len(result.memories) + 1} memories")


def session_two(client: MemoryClient) -> None:
    store = client.get_memory_store(STORE)
    recall_scope = FRIDAY.with_(run_id="*")  # Friday's agent reads every session of this user
    print(f"\n== Friday ({FRIDAY}): a new session recalls by query before answering")
    for question in ("Can you suggest a dinner recipe?", "Where is the user travelling?", "Who looks after the pet?"):
        hits = store.search(recall_scope, question, top_k=2)
        print(f"   Q: {question}")
        for hit in hits:
            print(f"      {hit.score:.3f}  [{hit.memory.memory_type}, {hit.memory.scope.run_id}]  {hit.memory.text}")
    print("\n== Short-term memory of Monday's session (raw messages, in order)")
    for message in store.messages(MONDAY, limit=3).items:
        print(f"   {message.role:9} {message.content}")
    print("\n== Audit: the last calls on this store")
    for record in store.requests(MONDAY.with_(tenant_id="*", agent_id="*", run_id="*"), limit=4).items:
        print(f"   {record.operation:15} {record.outcome:3} {record.latency_ms:7.1f} ms  {record.counts}")


async def session_two_async() -> None:
    async with AsyncMemoryClient() as client:
        store = await client.get_memory_store(STORE)
        hits = await store.search(FRIDAY.with_(run_id="*"), "answer style", top_k=1)
        print(f"\n== The async client sees the same memories: {hits[0].memory.text!r}")


def main() -> None:
    with MemoryClient() as client:
        print(f"data folder: {client.path.resolve()}\n")
        fresh_store(client)
        session_one(client)
    # A new client, as a new process would open it: everything said on Monday is still there.
    with MemoryClient() as client:
        session_two(client)
    asyncio.run(session_two_async())


if __name__ == "__main__":
    main()
