"""Generate ``memory_plugin/aio.py`` (the async API) from ``memory_plugin/client.py`` (the sync API).

The sync client is written by hand as thin shells over a transport; the async client is the same code with the
transport's calls awaited, so a signature exists once and the two cannot drift apart. A test regenerates the file
and compares (``tests/unit/test_generated_client.py``).

    python scripts/generate_async_client.py          # rewrite memory_plugin/aio.py
    python scripts/generate_async_client.py --check  # exit 1 if it is out of date
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "memory_plugin" / "client.py"
TARGET = ROOT / "memory_plugin" / "aio.py"

HEADER = '''"""The public async API: :class:`AsyncMemoryClient` and :class:`AsyncMemoryStore`, the same methods awaited.

GENERATED from ``client.py`` by ``scripts/generate_async_client.py``: do not edit; change ``client.py`` and run
the script. See ``client.py`` for each method's contract.
"""
'''
NAMES = {
    "MemoryStore": "AsyncMemoryStore",
    "MemoryClient": "AsyncMemoryClient",
    "Transport": "AsyncTransport",
    "LocalTransport": "AsyncLocalTransport",
    "connect": "connect_async",
}
# Calls that reach the service (or another awaited method) and must be awaited.
AWAITED = re.compile(
    r"(?<!await )\b(self\._call\(|self\._transport\.(?:call|create_store|open_store|close)\("
    r"|self\.(?:get_memory_store|create_memory_store|close)\()"
)
METHOD = re.compile(r"^    def (\w+)\(")


def _rename(text: str) -> str:
    return re.sub(r"\b(" + "|".join(NAMES) + r")\b", lambda m: NAMES[m.group(1)], text)


def generate(source: str) -> str:
    """The async module for the sync module ``source``."""
    body = source[source.index("from __future__ import annotations") :]
    lines = _rename(body).split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = METHOD.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        end = i + 1
        while end < len(lines) and not (lines[end].startswith("    def ") or lines[end].startswith("    @")):
            if lines[end] and not lines[end].startswith(" "):
                break
            end += 1
        block = lines[i:end]
        name = match.group(1)
        if name in ("__enter__", "__exit__"):
            block[0] = block[0].replace(f"def {name}(", f"async def __a{name[2:]}(")
            block = [AWAITED.sub(r"await \1", line) for line in block]
        elif any(AWAITED.search(line) for line in block[1:]):
            block[0] = block[0].replace("    def ", "    async def ", 1)
            block = [block[0], *(AWAITED.sub(r"await \1", line) for line in block[1:])]
        out.extend(block)
        i = end
    return HEADER + "\n" + "\n".join(out)


def main(argv: list[str]) -> int:
    generated = generate(SOURCE.read_text())
    if "--check" in argv:
        if TARGET.read_text() != generated:
            print(f"{TARGET} is out of date: run python scripts/generate_async_client.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(generated)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
