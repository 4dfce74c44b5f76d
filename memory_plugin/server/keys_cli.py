"""``memory-plugin keys create | list | revoke``: manage the access keys of a data folder.

These commands open only ``keys.db`` (see :mod:`memory_plugin.storage.sqlite.keys`), never the engine's record, so
they work while ``memory-plugin serve`` owns the folder. ``keys create`` prints the new key's secret once; nothing
can show it again (``keys list`` never does).

    memory-plugin keys create --path ./agent-memory --app app-001 --tenant user-001 --read-only --json
    memory-plugin keys list --path ./agent-memory
    memory-plugin keys revoke --path ./agent-memory mpk_...
"""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import KeyNotFoundError
from ..keys import KeyStore
from ..storage.sqlite.keys import KEYS_FILE, SQLiteKeyStore
from ..transport import resolve_home

Rows = tuple[list[dict[str, Any]], str | None]


def add_keys_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``keys`` and its subcommands to the CLI's subparsers (``commands`` in ``cli.build_parser``).

    Like every other command, ``--path`` and ``--json`` may also follow the subcommand.
    """
    help_text = "create, list or revoke access keys of the memory server"
    keys = commands.add_parser("keys", help=help_text, description=help_text)
    actions = keys.add_subparsers(dest="keys_command", required=True)

    def action(name: str, text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = actions.add_parser(name, help=text, description=text)
        sub.add_argument("--path", default=argparse.SUPPRESS, help="data folder (default $MEMORY_PLUGIN_HOME)")
        sub.add_argument("--database", help="postgresql://... : the keys of a scaled-out deployment's database")
        sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
        return sub

    create = action("create", "make a key and print its id and secret (the secret is shown this once)")
    create.add_argument("--app", required=True, help="the one app the key may reach")
    create.add_argument("--tenant", action="append", dest="tenants", help="a tenant the key may reach, repeatable")
    create.add_argument("--read-only", action="store_true", help="the key may not write")
    create.add_argument("--admin", action="store_true", help="the key may manage stores and keys")
    action("list", "list keys (never their secrets)")
    action("revoke", "refuse a key from now on").add_argument("key_id")


def run_keys_command(args: argparse.Namespace) -> Rows:
    """Execute a parsed ``keys`` command; returns the rows to print (no cursor).

    Raises:
        InvalidArgumentError: a bad app or tenant id, or ``--admin`` with ``--read-only`` or ``--tenant``.
        KeyNotFoundError: ``revoke`` of a key that does not exist.
    """
    if getattr(args, "database", None):
        from ..storage.postgres.keys import PostgresKeyStore

        with PostgresKeyStore(args.database) as shared:
            return _run(args, shared)
    home = resolve_home(args.path)
    if args.keys_command != "create" and not (home / KEYS_FILE).exists():  # reads never create a file
        if args.keys_command == "list":
            return [], None
        raise KeyNotFoundError(f"no access keys in {home} yet; `memory-plugin keys create` makes one")
    with SQLiteKeyStore(home) as keys:
        return _run(args, keys)


def _run(args: argparse.Namespace, keys: KeyStore) -> Rows:
    if args.keys_command == "create":
        record, secret = keys.create(args.app, args.tenants, read_only=args.read_only, admin=args.admin)
        return [{"key_id": record.key_id, "secret": secret.reveal(), **record.as_dict()}], None
    if args.keys_command == "revoke":
        return [keys.revoke(args.key_id).as_dict()], None
    return [record.as_dict() for record in keys.list()], None
