"""Real PostgreSQL and Redis for the store's integration tests.

The URLs come from MMKIT_TEST_PG_URL / MMKIT_TEST_REDIS_URL (``bash .ci/services start``
then ``. var/services/env``). A server that is configured but unreachable is a
failure, and so is a missing variable under CI: only a developer's machine
without the variables may skip, and the skip says how to enable the tests.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from sqlalchemy.engine import make_url

pytestmark = pytest.mark.integration


def service_url(var: str) -> str:
    url = os.environ.get(var)
    if url:
        return url
    if os.environ.get("CI"):
        pytest.fail(f"{var} is not set under CI: the store suite needs the real server (.ci/services start)")
    pytest.skip(f"{var} not set; run `bash .ci/services start && . var/services/env` to test against the server")


def _libpq(url: str, database: str | None = None) -> str:
    """A libpq conninfo for psycopg from a SQLAlchemy URL."""
    parsed = make_url(url)
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def pg_admin_url() -> str:
    url = service_url("MMKIT_TEST_PG_URL")
    try:
        with psycopg.connect(_libpq(url), connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        pytest.fail(f"MMKIT_TEST_PG_URL is set but PostgreSQL is unreachable: {exc}")
    return url


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty database per test, dropped afterwards."""
    name = f"mmkit_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(pg_admin_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(_libpq(pg_admin_url), autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_admin(pg_admin_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(_libpq(pg_admin_url), autocommit=True) as conn:
        yield conn


@pytest.fixture
def redis_url() -> str:
    url = service_url("MMKIT_TEST_REDIS_URL")
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"MMKIT_TEST_REDIS_URL is set but Redis is unreachable: {exc}")
    finally:
        client.close()
    return url


class ThrowawayRedis:
    """A redis-server of our own on a free port, so a test can kill and restart it."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (needed for the outage test; see .ci/install-system)")
        self.binary = binary
        self.workdir = workdir
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Until it answers PING, by a deadline rather than a count of tries: on a busy 2-core box the exec and
        # the bind can take longer than 100 quick refusals (~2 s); a server that exited is reported at once.
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                client.ping()
                client.close()
                return
            except redis.RedisError:
                time.sleep(0.02)
        pytest.fail(f"throwaway redis-server on :{self.port} did not answer (exit code {self.proc.poll()})")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis(tmp_path)
    server.start()
    yield server
    server.kill()


def _wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    """Poll a condition set by a background thread; returns as soon as it holds (no fixed sleeps)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


@pytest.fixture
def wait_until() -> Callable[[Callable[[], bool], float], bool]:
    return _wait_until
