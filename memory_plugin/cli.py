"""The ``memory-plugin`` command (also ``python -m memory_plugin``): one command per store operation.

Scopes are written ``app/tenant/agent/run`` as ``str(scope)`` prints them; ``*`` is a wildcard and ``[a,b]`` (or
``a,b``) a list of ids, e.g. ``memory-plugin search --store agent_memory --scope "app-001/user-001/*/*" "what does
the user drink?"``. Output is a table, or JSON with ``--json`` (errors too: ``{"error": {...}}``, exit code 2).
Commands that only read never create a data folder or a store.

With ``--endpoint URL`` (or ``$MEMORY_PLUGIN_ENDPOINT`` and no ``--path``) the same commands run against a memory
server (``memory-plugin serve``) with the access key in ``$MEMORY_PLUGIN_ACCESS_KEY_ID`` and
``$MEMORY_PLUGIN_ACCESS_KEY_SECRET`` (never on the command line, where other users could read it): a CLI works
while a server owns the folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from .client import MemoryClient, MemoryStore
from .errors import InvalidArgumentError, MemoryPluginError, MemoryStoreExistsError, MemoryStoreNotFoundError
from .scope import SEGMENTS, Scope
from .transport import ENDPOINT_ENV, resolve_home

RECORD_FILE = "memory.db"
Rows = tuple[list[dict[str, Any]], str | None]


class UsageError(Exception):
    """The command line itself is wrong (unknown option, missing argument)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse would print usage and exit; main() reports it instead
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def parse_scope(text: str) -> Scope:
    """``app/tenant/agent/run``; a segment may be ``*``, ``[id1,id2]`` or ``id1,id2``."""
    try:
        return Scope.from_text(text)
    except InvalidArgumentError as e:
        raise argparse.ArgumentTypeError(e.problem) from None


def _scalar(text: str) -> Any:
    if text in ("true", "false") or text.lstrip("-").isdigit():
        return json.loads(text)
    return text


def _pairs(pairs: Sequence[str], option: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidArgumentError(option, f"must be key=value, got {pair!r}")
        result.setdefault(key, []).append(_scalar(value))
    return {k: v[0] if len(v) == 1 else v for k, v in result.items()}


def _message(text: str) -> dict[str, str]:
    role, sep, content = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"a message is role:content, e.g. 'user:I like coffee', got {text!r}")
    return {"role": role, "content": content}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="memory-plugin", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--path", help="data folder (default $MEMORY_PLUGIN_HOME or ./.memory_plugin)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--endpoint", help="a memory server's URL (default $MEMORY_PLUGIN_ENDPOINT); the key comes from the environment"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str, scope_help: str | None = "app/tenant/agent/run") -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--path", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        sub.add_argument("--endpoint", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        if scope_help is not None:
            sub.add_argument("--store", required=True, help="memory store name")
            sub.add_argument("--scope", required=True, type=parse_scope, help=scope_help)
        return sub

    def read_filters(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--type", action="append", dest="memory_types", help="memory type, repeatable")
        sub.add_argument("--filter", action="append", default=[], dest="filters", help="metadata key=value")
        sub.add_argument("--start-time", help="ISO 8601, earliest event time")
        sub.add_argument("--end-time", help="ISO 8601, latest event time")

    add = command("add", "remember text or messages (creates the store if needed)", "app/tenant/agent/run, concrete")
    what = add.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", help="a pre-digested memory")
    what.add_argument("--message", action="append", type=_message, help="role:content, repeatable")
    add.add_argument("--metadata", action="append", default=[], help="key=value, repeatable")
    add.add_argument("--background", action="store_true", help="extract in the background (sync=False)")
    add.add_argument("--idempotency-key", help="a retry with the same key is applied once")

    search = command("search", "find memories relevant to a query", "app/tenant/agent/run; * and [a,b] allowed")
    search.add_argument("query")
    search.add_argument("--top-k", type=int, default=10)
    search.add_argument("--no-rerank", action="store_true")
    read_filters(search)

    listing = command("list", "list memories, oldest first", "app/tenant/agent/run; * and [a,b] allowed")
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--cursor")
    read_filters(listing)

    for name, help_text in (("get", "show one memory"), ("history", "what happened to one memory")):
        command(name, help_text, "app/tenant/agent/run, concrete").add_argument("memory_id")
    update = command("update", "change a memory's text and/or metadata", "app/tenant/agent/run, concrete")
    update.add_argument("memory_id")
    update.add_argument("--text")
    update.add_argument("--metadata", action="append", default=None, help="key=value, repeatable; replaces all")
    command("delete", "delete one memory", "app/tenant/agent/run, concrete").add_argument("memory_id")
    delete_all = command(
        "delete-all",
        "forget everything of one tenant: memories, history, messages, pending extraction",
        "app/tenant/agent/run; one concrete tenant, agent and run may be * or [a,b]",
    )
    delete_all.add_argument("--yes", action="store_true", help="confirm the erasure")

    messages = command("messages", "raw messages of one full scope, oldest first", "app/tenant/agent/run, concrete")
    messages.add_argument("--limit", type=int, default=100)
    messages.add_argument("--cursor")
    requests = command("requests", "the audit of calls, newest first", "app/tenant/agent/run; * and [a,b] allowed")
    requests.add_argument("--limit", type=int, default=50)
    requests.add_argument("--cursor")
    requests.add_argument("--operation")

    for name, help_text in (
        ("prune", "delete audit records and history past the store's retention"),
        ("jobs", "background extraction jobs not finished (pending, running, failed)"),
    ):
        sub = command(name, help_text, None)
        sub.add_argument("--store", required=True, help="memory store name")
        if name == "jobs":
            sub.add_argument("--retry-failed", action="store_true", help="queue the failed jobs again")

    stores = command("stores", "list memory stores, or create / update / delete one", None)
    stores.add_argument("--create", metavar="NAME")
    stores.add_argument("--update", metavar="NAME")
    stores.add_argument("--description")
    stores.add_argument("--audit-retention-days", type=int)
    stores.add_argument("--history-retention-days", type=int)
    stores.add_argument("--delete", metavar="NAME")

    serve = command("serve", "serve the data folder (or a PostgreSQL database) over HTTP (memory server)", None)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1; others need access keys)")
    serve.add_argument("--port", type=int, help="port (default 8080)")
    serve.add_argument("--config", type=Path, help="TOML file: stores' embedder and extractor, limits, keys file")
    serve.add_argument("--no-console", action="store_true", help="do not serve the web console at /console")
    serve.add_argument("--database", help="postgresql://... : serve this database instead of a data folder "
                       "(several servers may share it; needs --index)")  # fmt: skip
    serve.add_argument("--index", help="the Chroma server of --database, http://HOST:PORT (`chroma run`)")

    from .server.keys_cli import add_keys_commands  # the server's commands; they open keys.db, never the record

    add_keys_commands(commands)
    return parser


WRITES = frozenset({"add", "update", "delete", "delete-all", "prune"})


def _open(client: MemoryClient, name: str, create: bool = False) -> MemoryStore:
    try:
        return client.get_memory_store(name)
    except MemoryStoreNotFoundError:
        if not create:
            raise MemoryStoreNotFoundError(
                f"no memory store named {name!r} in {client.location}; `memory-plugin stores` lists them, "
                f"`memory-plugin stores --create {name}` creates it (so does `memory-plugin add`)"
            ) from None
        return client.create_memory_store(name)


def _memory_row(memory: dict[str, Any]) -> dict[str, Any]:
    scope = memory.pop("scope")
    memory["scope"] = "/".join(str(scope[s]) for s in SEGMENTS)
    return memory


def _read_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "memory_types": args.memory_types,
        "filters": _pairs(args.filters, "--filter") or None,
        "start_time": args.start_time,
        "end_time": args.end_time,
    }


def _stores(args: argparse.Namespace, client: MemoryClient) -> Rows:
    retention = {
        key: getattr(args, key)
        for key in ("audit_retention_days", "history_retention_days")
        if getattr(args, key) is not None
    }
    if args.create:
        try:
            client.create_memory_store(args.create, description=args.description or "", **retention)
        except MemoryStoreExistsError:
            raise MemoryStoreExistsError(
                f"memory store {args.create!r} already exists; `memory-plugin stores --update {args.create}` "
                "changes its settings"
            ) from None
    if args.update:
        changes = {**retention, **({"description": args.description} if args.description is not None else {})}
        client.update_memory_store(args.update, **changes)
    if args.delete:
        client.delete_memory_store(args.delete)
    return [s.model_dump(mode="json") for s in client.list_memory_stores()], None


def _store_command(args: argparse.Namespace, store: MemoryStore) -> Rows:
    """One command on one store; returns rows to print and the next cursor, if any."""
    command, scope = args.command, args.scope
    if command == "add":
        return _added(args, store)
    if command == "search":
        hits = store.search(scope, args.query, top_k=args.top_k, rerank=not args.no_rerank, **_read_options(args))
        return [{"score": round(h.score, 4), **_memory_row(h.memory.model_dump(mode="json"))} for h in hits], None
    if command == "list":
        return _page(store.list(scope, limit=args.limit, cursor=args.cursor, **_read_options(args)))
    if command in ("get", "update"):
        if command == "get":
            memory = store.get(scope, args.memory_id)
        else:
            metadata = None if args.metadata is None else _pairs(args.metadata, "--metadata")
            memory = store.update(scope, args.memory_id, text=args.text, metadata=metadata)
        return [_memory_row(memory.model_dump(mode="json"))], None
    if command == "delete":
        store.delete(scope, args.memory_id)
        return [{"deleted": args.memory_id}], None
    if command == "history":
        return [event.model_dump(mode="json") for event in store.history(scope, args.memory_id)], None
    if command == "delete-all":
        return [store.delete_all(scope).model_dump(mode="json")], None
    if command == "messages":
        return _page(store.messages(scope, limit=args.limit, cursor=args.cursor), drop_scope=True)
    if command == "requests":
        records = store.requests(scope, operation=args.operation, limit=args.limit, cursor=args.cursor)
        return [{**r.model_dump(mode="json", exclude={"scope"}), "scope": str(r.scope)} for r in records.items], (
            records.next_cursor
        )
    raise UsageError(f"unknown command {command!r}")


def _store_maintenance(args: argparse.Namespace, store: MemoryStore) -> Rows:
    """The commands on a whole store: ``prune`` and ``jobs``."""
    if args.command == "prune":
        return [store.prune().model_dump(mode="json")], None
    if args.retry_failed:
        store.retry_failed()
    jobs = store.extraction_status()
    return [{**j.model_dump(mode="json", exclude={"scope"}), "scope": str(j.scope)} for j in jobs], None


def _added(args: argparse.Namespace, store: MemoryStore) -> Rows:
    result = store.add(
        args.scope,
        messages=args.message,
        text=args.text,
        metadata=_pairs(args.metadata, "--metadata"),
        sync=not args.background,
        idempotency_key=args.idempotency_key,
    )
    rows = [_memory_row(m.model_dump(mode="json")) for m in result.memories]
    return rows or [{"message_ids": ",".join(result.message_ids), "pending": result.pending}], None


def _page(page: Any, drop_scope: bool = False) -> Rows:
    if drop_scope:
        return [item.model_dump(mode="json", exclude={"scope"}) for item in page.items], page.next_cursor
    return [_memory_row(item.model_dump(mode="json")) for item in page.items], page.next_cursor


def run(args: argparse.Namespace, client: MemoryClient) -> Rows:
    """Execute one parsed command against an open client."""
    if args.command == "stores":
        return _stores(args, client)
    if args.command == "delete-all" and not args.yes:
        raise InvalidArgumentError(
            "--yes", f"delete-all erases every memory, message and history event of {args.scope}; add --yes to confirm"
        )
    store = _open(client, args.store, create=args.command == "add")
    if args.command in ("prune", "jobs"):
        return _store_maintenance(args, store)
    return _store_command(args, store)


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


def _creates_data(args: argparse.Namespace) -> bool:
    return args.command in WRITES or (args.command == "stores" and bool(args.create or args.update or args.delete))


def _report(error: Exception, as_json: bool) -> int:
    kind = "UsageError" if isinstance(error, UsageError) else type(error).__name__
    if as_json:
        body: dict[str, Any] = {"type": kind, "message": str(error)}
        if isinstance(error, InvalidArgumentError):
            body.update(field=error.field, message=error.problem)
        print(json.dumps({"error": body}, ensure_ascii=False))
    else:
        print(f"error: {kind}: {error}", file=sys.stderr)
    return 2


def _run_on_folder(args: argparse.Namespace) -> Rows:
    """Run a store command on the data folder, or on the memory server named by ``--endpoint`` or
    ``$MEMORY_PLUGIN_ENDPOINT`` (unless ``--path`` is given)."""
    endpoint = args.endpoint or (None if args.path else os.environ.get(ENDPOINT_ENV) or None)
    if endpoint is not None:
        if args.path:
            raise UsageError("give --path (a data folder) or --endpoint (a memory server), not both")
        with MemoryClient(endpoint=endpoint) as client:
            return run(args, client)
    home = resolve_home(args.path)
    if not _creates_data(args) and not (Path(home) / RECORD_FILE).exists():
        raise MemoryStoreNotFoundError(
            f"nothing is stored in {home} yet; `memory-plugin add` or `memory-plugin stores --create NAME` "
            "starts a data folder (or give --path / $MEMORY_PLUGIN_HOME)"
        )
    with MemoryClient(path=home) as client:
        return run(args, client)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0, or 2 on any error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    try:
        args = build_parser().parse_args(argv)
        as_json = args.json
        if args.command == "keys":  # works while a server owns the folder: it never opens the record
            from .server.keys_cli import run_keys_command

            rows, cursor = run_keys_command(args)
        elif args.command == "serve":
            from .server.serve import load_config, serve

            options = {"host": args.host, "port": args.port, "database": args.database, "index": args.index}
            options["console"] = False if args.no_console else None  # None: the file's setting (default on)
            serve(load_config(resolve_home(args.path), args.config, **options))
            return 0
        else:
            rows, cursor = _run_on_folder(args)
    except (UsageError, MemoryPluginError) as e:
        return _report(e, as_json)
    except argparse.ArgumentTypeError as e:
        return _report(UsageError(str(e)), as_json)
    if as_json:
        print(json.dumps({"items": rows, "next_cursor": cursor}, ensure_ascii=False, indent=2))
    else:
        print(format_table(rows))
        if cursor:
            print(f"next cursor: {cursor}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
