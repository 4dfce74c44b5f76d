"""The ``memory-plugin`` command (also ``python -m memory_plugin``): add, search, list, messages, requests, stores.

Scopes are written ``app/tenant/agent/run``; ``*`` is a wildcard and ``a,b`` a list of ids, e.g.
``memory-plugin search --store agent_memory --scope "app-001/user-001/*/*" "what does the user drink?"``.
Output is a table, or JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from .client import MemoryClient, MemoryStore
from .errors import MemoryPluginError, MemoryStoreNotFoundError
from .scope import SEGMENTS, Scope


def parse_scope(text: str) -> Scope:
    """``app/tenant/agent/run``; a segment may be ``*`` or ``id1,id2``."""
    parts = text.split("/")
    if len(parts) != 4:
        raise argparse.ArgumentTypeError("scope must be app/tenant/agent/run, e.g. app-001/user-001/*/*")
    values: list[str | list[str]] = [p.split(",") if "," in p else p for p in parts]
    try:
        return Scope(**dict(zip(SEGMENTS, values, strict=True)))  # type: ignore[arg-type]
    except MemoryPluginError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _metadata(pairs: Sequence[str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"metadata must be key=value, got {pair!r}")
        result[key] = json.loads(value) if value in ("true", "false") or value.lstrip("-").isdigit() else value
    return result


def _message(text: str) -> dict[str, str]:
    role, sep, content = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"a message is role:content, e.g. 'user:I like coffee', got {text!r}")
    return {"role": role, "content": content}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="memory-plugin", description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", help="data folder (default $MEMORY_PLUGIN_HOME or ./.memory_plugin)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str, scoped: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--path", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        if scoped:
            sub.add_argument("--store", required=True, help="memory store name")
            sub.add_argument("--scope", required=True, type=parse_scope, help="app/tenant/agent/run")
        return sub

    add = command("add", "remember text or messages (creates the store if needed)")
    what = add.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", help="a pre-digested memory")
    what.add_argument("--message", action="append", type=_message, help="role:content, repeatable")
    add.add_argument("--metadata", action="append", default=[], help="key=value, repeatable")
    add.add_argument("--background", action="store_true", help="extract in the background (sync=False)")

    search = command("search", "find memories relevant to a query")
    search.add_argument("query")
    search.add_argument("--top-k", type=int, default=10)
    search.add_argument("--type", action="append", dest="memory_types", help="memory type, repeatable")
    search.add_argument("--no-rerank", action="store_true")

    for name, help_text in (
        ("list", "list memories"),
        ("messages", "raw messages of one full scope"),
        ("requests", "the audit of calls"),
    ):
        sub = command(name, help_text)
        sub.add_argument("--limit", type=int, default=20)
        sub.add_argument("--cursor")
        if name == "requests":
            sub.add_argument("--operation")

    stores = command("stores", "list memory stores, or create / delete one", scoped=False)
    stores.add_argument("--create", metavar="NAME")
    stores.add_argument("--description", default="")
    stores.add_argument("--delete", metavar="NAME")
    return parser


def _open(client: MemoryClient, name: str, create: bool = False) -> MemoryStore:
    try:
        return client.get_memory_store(name)
    except MemoryStoreNotFoundError:
        if not create:
            raise
        return client.create_memory_store(name)


def run(args: argparse.Namespace, client: MemoryClient) -> tuple[list[dict[str, Any]], str | None]:
    """Execute one command; returns rows to print and the next cursor, if any."""
    if args.command == "stores":
        if args.create:
            client.create_memory_store(args.create, description=args.description)
        if args.delete:
            client.delete_memory_store(args.delete)
        return [s.model_dump(mode="json") for s in client.list_memory_stores()], None
    store = _open(client, args.store, create=args.command == "add")
    if args.command == "add":
        result = store.add(
            args.scope,
            messages=args.message,
            text=args.text,
            metadata=_metadata(args.metadata),
            sync=not args.background,
        )
        rows = [_memory_row(m.model_dump(mode="json")) for m in result.memories]
        return rows or [{"message_ids": ",".join(result.message_ids), "pending": result.pending}], None
    if args.command == "search":
        hits = store.search(
            args.scope, args.query, top_k=args.top_k, rerank=not args.no_rerank, memory_types=args.memory_types
        )
        return [{"score": round(h.score, 4), **_memory_row(h.memory.model_dump(mode="json"))} for h in hits], None
    if args.command == "list":
        page = store.list(args.scope, limit=args.limit, cursor=args.cursor)
        return [_memory_row(m.model_dump(mode="json")) for m in page.items], page.next_cursor
    if args.command == "messages":
        messages = store.messages(args.scope, limit=args.limit, cursor=args.cursor)
        return [m.model_dump(mode="json", exclude={"scope"}) for m in messages.items], messages.next_cursor
    records = store.requests(args.scope, operation=args.operation, limit=args.limit, cursor=args.cursor)
    return [{**r.model_dump(mode="json", exclude={"scope"}), "scope": str(r.scope)} for r in records.items], (
        records.next_cursor
    )


def _memory_row(memory: dict[str, Any]) -> dict[str, Any]:
    scope = memory.pop("scope")
    memory["scope"] = "/".join(str(scope[s]) for s in SEGMENTS)
    return memory


# Columns left out of tables to keep one row per line (``--json`` shows everything).
TABLE_HIDDEN = frozenset({"created_at", "updated_at", "source_message_ids"})


def format_table(rows: list[dict[str, Any]]) -> str:
    """Rows as an aligned text table; long cells are cut to keep one line per row."""
    if not rows:
        return "(none)"
    columns = [key for key in dict.fromkeys(key for row in rows for key in row) if key not in TABLE_HIDDEN]

    def cell(value: Any) -> str:
        text = json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)
        text = " ".join(text.split())
        return text if len(text) <= 60 else text[:57] + "..."

    cells = [[cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with MemoryClient(path=args.path) as client:
            rows, cursor = run(args, client)
    except MemoryPluginError as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"items": rows, "next_cursor": cursor}, ensure_ascii=False, indent=2))
    else:
        print(format_table(rows))
        if cursor:
            print(f"next cursor: {cursor}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
