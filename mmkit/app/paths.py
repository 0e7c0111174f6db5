"""One home for everything a run writes, and config paths that do not depend on the current directory.

Why: ``mmkit status CONFIG`` run from another directory found no store, a
config's recording path broke, live reports went to ``var/reports/`` and
backtests to ``reports/``. Now every command (``start``, ``status``,
``history``, ``backtest``, ``check``) asks :func:`instance_home` where an
instance's files live, and relative paths inside a config are read against
the config file's directory (:func:`resolve_config_path`).

Layout of an instance home (docs/operations.md, "Where a run writes")::

    <home>/store/<instance>.sqlite   default SQLite store
    <home>/audit/<instance>.jsonl    audit trail
    <home>/reports/                  final reports of live runs, backtests under reports/backtest-*/
    <home>/logs/                     connector session logs (FIX), journal
"""

from __future__ import annotations

import os
from pathlib import Path

from mmkit.app.config import StoreSection

#: Environment variable that moves every instance home: ``$MMKIT_HOME/<instance>/``.
ENV_HOME = "MMKIT_HOME"


def instance_home(
    config_path: str | Path, instance: str, override: str | Path | None = None, *, configured: str | None = None
) -> Path:
    """The absolute directory where everything instance ``instance`` writes lives (store, journal, audit,
    logs, reports). The first of these that is set wins:

    1. ``override`` (the ``--output-dir`` option), relative to the current directory;
    2. ``engine.output_dir`` in the config (``configured``), relative to the config file;
    3. ``$MMKIT_HOME/<instance>``;
    4. ``var/<instance>/`` beside the config file.

    The same config therefore gives the same home whatever directory a command runs from.
    """
    if override is not None:
        return Path(override).expanduser().resolve()
    if configured:
        return resolve_config_path(config_path, configured)
    env = os.environ.get(ENV_HOME)
    if env:
        return (Path(env).expanduser() / instance).resolve()
    return (Path(config_path).resolve().parent / "var" / instance).resolve()


def resolve_config_path(config_path: str | Path, value: str | Path) -> Path:
    """``value`` as written in the config at ``config_path``: absolute as is, relative to the config's folder."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    return (Path(config_path).resolve().parent / path).resolve()


def reports_dir(home: str | Path) -> Path:
    """Where the final reports of live runs go."""
    return Path(home) / "reports"


def backtest_dir(home: str | Path, name: str) -> Path:
    """The default output folder of one backtest (``--out`` overrides it)."""
    return Path(home) / "reports" / f"backtest-{name}"


def store_url(store: StoreSection, instance: str, home: str | Path) -> str:
    """The SQLAlchemy URL the run uses: ``store.url``, else SQLite at ``<home>/store/<instance>.sqlite``."""
    from mmkit.app.persistence import default_store_url

    return default_store_url(store, instance, home)


def describe_store(store: StoreSection, instance: str, home: str | Path) -> str:
    from mmkit.store.db import redact_url

    text = redact_url(store_url(store, instance, home))
    return text + (f", redis {redact_url(store.redis_url)}" if store.redis_url else "")


def probe_store(store: StoreSection, instance: str, home: str | Path) -> tuple[str, str] | None:
    """Open the store and Redis a run would use; ``(key path, reason)`` when one cannot be used, else None.

    Reads only: a missing SQLite file is fine when its folder can be created, an existing one must be a
    database; a server URL must accept a connection within a few seconds.
    """
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from mmkit.store.db import create_store_engine, redact_url

    url = store_url(store, instance, home)
    key = "store.url"
    try:
        parsed = make_url(url)
    except Exception as exc:
        return key, f"not a database URL: {redact_url(url)} ({exc})"
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        file = Path(parsed.database)
        if not file.exists():
            folder = _existing_ancestor(file.parent)
            if not os.access(folder, os.W_OK):
                return key, f"cannot create the SQLite store {file}: {folder} is not writable"
            return _probe_redis(store)
    try:
        engine = create_store_engine(url, connect_timeout_s=3.0)
    except Exception as exc:
        return key, f"cannot use the store {redact_url(url)}: {one_line(exc)}"
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            if parsed.get_backend_name() == "sqlite":
                conn.execute(text("SELECT count(*) FROM sqlite_master"))
    except Exception as exc:
        return key, f"cannot use the store {redact_url(url)}: {one_line(exc)}"
    finally:
        engine.dispose()
    return _probe_redis(store)


def _probe_redis(store: StoreSection) -> tuple[str, str] | None:
    if not store.redis_url:
        return None
    import redis

    from mmkit.store.db import redact_url

    try:
        client = redis.Redis.from_url(store.redis_url, socket_connect_timeout=3, socket_timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return "store.redis_url", f"cannot reach redis at {redact_url(store.redis_url)}: {one_line(exc)}"
    return None


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (a driver's error without its SQL and its background link)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip() or type(exc).__name__
    return text.splitlines()[0]
