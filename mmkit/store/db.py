"""Engine creation for the store: one place that knows the per-database settings.

Supported: SQLite (``sqlite:///path/to/file.db``, the default; rollback
journal and no mmap, see :func:`_sqlite_pragmas`) and PostgreSQL through
psycopg 3 (``postgresql+psycopg://user@host:port/db``). Connect and lock
timeouts are short on purpose: the writer thread must notice an outage
quickly and retry, not hang behind a dead server.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Insert, Table, create_engine, event
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url

from mmkit.store.private import private_dir

DEFAULT_URL = "sqlite:///var/store/mmkit.sqlite"
SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def redact_url(url: str) -> str:
    """The URL with any password masked, for logs."""
    return make_url(url).render_as_string(hide_password=True)


def create_store_engine(
    url: str, *, connect_timeout_s: float = 2.0, extra_connect_args: Mapping[str, Any] | None = None,
) -> Engine:
    """Create an engine for ``url`` with the settings the store relies on.

    ``extra_connect_args`` go to the PostgreSQL driver only (libpq parameters: the advisory lock's
    keepalives); a SQLite store ignores them.

    For a SQLite file, its parent directory is created. In-memory SQLite is
    refused: the writer thread and readers would each see a different database.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise ValueError(f"store url {redact_url(url)}: unsupported database {backend!r}; use sqlite or postgresql")
    connect_args: dict[str, Any] = {}
    if backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file::memory:"):
            raise ValueError("store url: in-memory SQLite cannot be shared by the writer thread; give a file path")
        private_dir(Path(database).parent)
        connect_args["timeout"] = connect_timeout_s  # busy timeout on a locked database
    else:
        connect_args["connect_timeout"] = max(1, round(connect_timeout_s))
        connect_args.update(extra_connect_args or {})
    engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """No memory-mapped I/O at all: a file that becomes unwritable (made immutable, disk full, its
    directory gone) must fail a write with an error the recorder handles, never SIGBUS the engine
    (issue 11, case 5). WAL maps its ``-shm`` file, so the rollback journal (DELETE) is used; readers
    (`mmkit status`) still read while the engine writes, waiting out the brief write locks."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA mmap_size=0")
    cursor.execute("PRAGMA journal_mode=DELETE")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def insert_ignoring_duplicates(engine: Engine, table: Table) -> Insert:
    """INSERT that silently skips rows violating a unique key (fills seen twice)."""
    if engine.dialect.name == "postgresql":
        # Imported here: the PostgreSQL dialect is ~2 MB resident that a SQLite store (the demo's) never uses.
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    return sqlite_insert(table).on_conflict_do_nothing()
