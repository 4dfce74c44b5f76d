"""The async client is generated from the sync one; the committed file must be what the generator makes now."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_async_client_is_generated_from_the_sync_one() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/generate_async_client.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_the_two_clients_have_the_same_methods_and_signatures() -> None:
    import inspect

    from memory_plugin import AsyncMemoryClient, AsyncMemoryStore, MemoryClient, MemoryStore

    for sync, aio in ((MemoryStore, AsyncMemoryStore), (MemoryClient, AsyncMemoryClient)):
        public = {n for n in dir(sync) if not n.startswith("_")}
        assert public == {n for n in dir(aio) if not n.startswith("_")}
        for name in public:
            ours, theirs = getattr(sync, name), getattr(aio, name)
            if callable(ours):
                assert inspect.iscoroutinefunction(theirs) or name == "transport", name
                assert list(inspect.signature(ours).parameters) == list(inspect.signature(theirs).parameters), name
