"""``make scaleout-demo``: the scaled-out deployment on this machine, from nothing, then gone again.

Starts a throwaway PostgreSQL cluster (this machine's PostgreSQL binaries, a temp folder, an unprivileged user), a
Chroma server (``chroma run``) and two memory servers (``memory-plugin serve --database ... --index ...``) on
loopback; makes an access key in the database; writes through one server and reads through the other.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from memory_plugin import MemoryClient, Scope  # noqa: E402
from scripts.throwaway import ThrowawayChroma, ThrowawayPostgres, free_port  # noqa: E402

CLI = [sys.executable, "-m", "memory_plugin"]


def wait_ready(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=5):
                return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the memory server at {url} did not start") from None
            time.sleep(0.2)


def main() -> None:
    print("starting a throwaway PostgreSQL cluster and a Chroma server ...")
    postgres, chroma = ThrowawayPostgres(), ThrowawayChroma()
    servers: list[subprocess.Popen[bytes]] = []
    try:
        database = postgres.new_database()
        created = subprocess.run([*CLI, "keys", "create", "--database", database, "--app", "app-001", "--admin",
                                  "--json"], check=True, capture_output=True, text=True)  # fmt: skip
        key = json.loads(created.stdout)["items"][0]
        urls = []
        for _ in range(2):
            port = free_port()
            urls.append(f"http://127.0.0.1:{port}")
            command = [*CLI, "serve", "--database", database, "--index", chroma.url, "--port", str(port)]
            servers.append(subprocess.Popen(command, env={**os.environ, "HF_HUB_OFFLINE": "1"}))
        for url, server in zip(urls, servers, strict=True):
            wait_ready(url, server)
        print(f"PostgreSQL  {postgres.dsn()}\nChroma      {chroma.url}\nservers     {urls[0]}  {urls[1]}\n")

        scope = Scope(app_id="app-001", tenant_id="user-001", agent_id="assistant", run_id="session-001")
        everyone = scope.with_(agent_id="*", run_id="*")
        secret = {"access_key_id": key["key_id"], "access_key_secret": key["secret"]}
        with MemoryClient(endpoint=urls[0], **secret) as one, MemoryClient(endpoint=urls[1], **secret) as two:
            one.create_memory_store("agent_memory", description="shared by both servers")
            written = one.get_memory_store("agent_memory").add(
                scope, messages=[{"role": "user", "content": "I like coffee"}], sync=True
            )
            print(f"wrote through {urls[0]}: {[m.text for m in written.memories]}")
            store = two.get_memory_store("agent_memory")
            hits = store.search(everyone, "what does the user drink?", top_k=3)
            print(f"read through  {urls[1]}: {[(h.memory.text, round(h.score, 3)) for h in hits]}")
            assert hits and hits[0].memory.id == written.memories[0].id
        print("\nboth servers serve one memory; stopping everything")
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=60)
        chroma.close()
        postgres.close()


if __name__ == "__main__":
    main()
