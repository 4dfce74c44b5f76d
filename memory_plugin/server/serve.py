"""``memory-plugin serve``: one process owns a data folder and serves it over HTTP (uvicorn); or, with
``--database postgresql://... --index http://HOST:PORT``, one of several stateless servers on a shared PostgreSQL
database and Chroma server (access keys then live in the database).

The configuration file (``--config FILE``, TOML) is optional; every key has a default::

    [server]
    host = "127.0.0.1"
    port = 8080
    keys = "/srv/memory/keys.db"       # the access keys' file (default: keys.db in the data folder)
    max_body_bytes = 16777216
    requests_per_second = 50           # per access key, sustained
    burst = 100                        # per access key, at once
    request_timeout_seconds = 120
    shutdown_grace_seconds = 30        # on SIGTERM: stop accepting, finish what runs, close the folder
    console = true                     # the web console at /console (`--no-console` turns it off)

    [engine]                           # memory_plugin.Settings: every field, its default when left out
    job_lease_seconds = 60             # a killed server's background job passes to another after this
    vector_memory_limit = 200000       # memories held in memory for exact vector search

    [stores."*"]                       # every store without a section of its own
    embedder = "local"                 # all-MiniLM-L6-v2; or "package.module:factory"
    extractor = "turn"                 # one memory per turn, no LLM; or "package.module:factory"

    [stores.agent_memory]
    extractor = "my_app.memory:make_llm_extractor"

A ``package.module:factory`` names an object to import; a class or function is called with no arguments to build
the embedder or extractor. Command-line options win over the file.
"""

from __future__ import annotations

import importlib
import inspect
import ipaddress
import logging
import signal
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgumentError
from ..extraction import Extractor, TurnExtractor
from ..service import MemoryService
from ..settings import Settings
from ..storage.sqlite.keys import SQLiteKeyStore
from .app import ServerLimits, create_app

if TYPE_CHECKING:
    from ..storage.postgres.keys import PostgresKeyStore

log = logging.getLogger("memory_plugin.server")
DEFAULT_STORE = "*"


@dataclass(frozen=True)
class StoreSetupConfig:
    """What one store runs with: embedder and extractor as ``local`` / ``turn`` or ``module:factory``."""

    embedder: str = "local"
    extractor: str = "turn"


@dataclass(frozen=True)
class ServerConfig:
    path: Path
    host: str = "127.0.0.1"
    port: int = 8080
    keys: Path | None = None
    limits: ServerLimits = field(default_factory=ServerLimits)
    shutdown_grace_seconds: float = 30.0
    console: bool = True
    stores: Mapping[str, StoreSetupConfig] = field(default_factory=dict)
    settings: Settings = field(default_factory=Settings)
    database: str | None = None  # a PostgreSQL database (scaled out), with the Chroma server ``index``
    index: str | None = None

    @property
    def keys_folder(self) -> Path:
        return self.keys.parent if self.keys is not None else self.path


def _number(section: Mapping[str, Any], key: str, kind: type, default: Any) -> Any:
    value = section.get(key, default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool) or (isinstance(value, (int, float)) and value <= 0):
        raise InvalidArgumentError(f"server.{key}", f"must be a positive {kind.__name__}, got {value!r:.40}")
    return value


def _flag(section: Mapping[str, Any], key: str, default: bool) -> bool:
    value = section.get(key, default)
    if not isinstance(value, bool):
        raise InvalidArgumentError(f"server.{key}", f"must be true or false, got {value!r:.40}")
    return value


def _settings(section: Mapping[str, Any]) -> Settings:
    """The ``[engine]`` section as :class:`~memory_plugin.Settings`; a wrong key or value names ``engine.<key>``."""
    known = sorted(f.name for f in fields(Settings))
    unknown = sorted(set(section) - set(known))
    if unknown:
        raise InvalidArgumentError(f"engine.{unknown[0]}", f"is not an engine setting; allowed: {known}")
    try:
        return Settings(**section)
    except InvalidArgumentError as e:
        raise InvalidArgumentError(f"engine.{e.field}", e.problem) from None


def load_config(path: Path, file: Path | None = None, **options: Any) -> ServerConfig:
    """The server's configuration: defaults, then ``file`` (TOML), then ``options`` that are not ``None``.

    Raises:
        InvalidArgumentError: the file cannot be read, or a value is wrong (the key is named).
    """
    data: dict[str, Any] = {}
    if file is not None:
        try:
            data = tomllib.loads(Path(file).read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise InvalidArgumentError("--config", f"cannot read {file}: {e}") from None
    unknown = sorted(set(data) - {"server", "engine", "stores"})
    if unknown:
        raise InvalidArgumentError(
            unknown[0], "is not a section of the server's configuration (server, engine, stores)"
        )
    server = data.get("server", {})
    known = {"host", "port", "keys", "max_body_bytes", "requests_per_second", "burst", "request_timeout_seconds",
             "shutdown_grace_seconds", "console"}  # fmt: skip
    unknown = sorted(set(server) - known)
    if unknown:
        raise InvalidArgumentError(f"server.{unknown[0]}", f"is not a server setting; allowed: {sorted(known)}")
    stores = {}
    for name, section in data.get("stores", {}).items():
        extra = sorted(set(section) - {"embedder", "extractor"})
        if extra:
            raise InvalidArgumentError(f"stores.{name}.{extra[0]}", "is not a store setting (embedder, extractor)")
        stores[name] = StoreSetupConfig(**{k: str(v) for k, v in section.items()})
    config = ServerConfig(
        path=path,
        host=str(server.get("host", "127.0.0.1")),
        port=_number(server, "port", int, 8080),
        keys=Path(server["keys"]) if "keys" in server else None,
        limits=ServerLimits(
            max_body_bytes=_number(server, "max_body_bytes", int, ServerLimits.max_body_bytes),
            requests_per_second=_number(server, "requests_per_second", float, ServerLimits.requests_per_second),
            burst=_number(server, "burst", int, ServerLimits.burst),
            request_timeout_seconds=_number(server, "request_timeout_seconds", float, 120.0),
        ),
        shutdown_grace_seconds=_number(server, "shutdown_grace_seconds", float, 30.0),
        console=_flag(server, "console", True),
        settings=_settings(data.get("engine", {})),
        stores=stores,
    )
    return replace(config, **{k: v for k, v in options.items() if v is not None})


def _build(spec: str, what: str) -> object:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise InvalidArgumentError(what, f"must be a built-in name or 'package.module:factory', got {spec!r:.80}")
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as e:
        raise InvalidArgumentError(what, f"cannot import {spec!r:.80}: {e}") from None
    return target() if inspect.isclass(target) or inspect.isfunction(target) else target


def store_setup(config: ServerConfig) -> Any:
    """``setup(name)``: the embedder and extractor a store runs with, built once per distinct configuration."""
    built: dict[tuple[str, str], tuple[object, Extractor | None]] = {}

    def setup(name: str) -> tuple[object, Extractor | None]:
        chosen = config.stores.get(name) or config.stores.get(DEFAULT_STORE) or StoreSetupConfig()
        key = (chosen.embedder, chosen.extractor)
        if key not in built:
            embedder = None if chosen.embedder == "local" else _build(chosen.embedder, f"stores.{name}.embedder")
            extractor: Any = TurnExtractor() if chosen.extractor == "turn" else _build(
                chosen.extractor, f"stores.{name}.extractor"
            )  # fmt: skip
            if not isinstance(extractor, Extractor):
                raise InvalidArgumentError(f"stores.{name}.extractor", "must build an Extractor (a .extract method)")
            built[key] = (embedder, extractor)
        return built[key]

    return setup


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _open(config: ServerConfig) -> tuple[MemoryService, SQLiteKeyStore | PostgresKeyStore]:
    """The service and its access keys: a data folder with ``keys.db``, or a PostgreSQL database (keys in it)."""
    if config.database is None and config.index is None:
        service = MemoryService.embedded(config.path, config.settings, setup=store_setup(config))
        return service, SQLiteKeyStore(config.keys_folder)
    if config.database is None or config.index is None:
        missing = "--database" if config.database is None else "--index"
        raise InvalidArgumentError(missing, "a PostgreSQL database (--database) goes with a Chroma server (--index)")
    from ..storage.postgres.keys import PostgresKeyStore

    service = MemoryService.scaled_out(config.database, config.index, config.settings, setup=store_setup(config))
    return service, PostgresKeyStore(service.folder.record)  # type: ignore[arg-type]


def serve(config: ServerConfig) -> None:
    """Open the data folder and serve it until SIGTERM or SIGINT, then drain and close cleanly.

    Raises:
        InvalidArgumentError: listening beyond loopback without any access key.
        StoreLockedError: another process owns the data folder.
    """
    import uvicorn

    service, keys = _open(config)
    if not is_loopback(config.host) and not [k for k in keys.list() if not k.revoked]:
        service.close()
        keys.close()
        where = "--database URL" if config.database else f"--path {config.keys_folder}"
        raise InvalidArgumentError(
            "--host",
            f"refusing to listen on {config.host} without access keys: create one with `memory-plugin keys create "
            f"{where} --app APP` (or listen on 127.0.0.1)",
        )
    app = create_app(service, keys, config.limits, console=config.console)
    log.info("memory_plugin server: serving %s on http://%s:%d", service.folder.location, config.host, config.port)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            timeout_graceful_shutdown=int(config.shutdown_grace_seconds),
            lifespan="on",
            log_level="info",
        )
    )

    # uvicorn drains on SIGTERM / SIGINT, then raises the signal again for the handler it found; with the default
    # one the process would die by the signal after a clean shutdown. This one lets serve() return (exit code 0),
    # and stops a server that has not yet installed its own handlers (a signal during start-up).
    def stop(sig: int, frame: object) -> None:
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        keys.close()
    log.info("memory_plugin server: stopped; %s is closed", config.path)
