"""``authz serve``: migrations, default policies, the embedded Redis if needed, then N worker processes.

Workers share the listening port (SO_REUSEPORT) and run uvloop; the parent supervises them and owns the
embedded Redis.  With one worker the service runs in the parent process.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import shutil
import signal
import sys

from aiohttp import web

from authz.bootstrap import migrate, seed_defaults
from authz.embedded_redis import EmbeddedRedis
from authz.services import Services
from authz.settings import Settings

log = logging.getLogger(__name__)


def prepare(settings: Settings) -> tuple[str, EmbeddedRedis | None]:
    """Schema, default policies, Redis: everything the workers need before they start."""
    migrate(settings)
    embedded = None
    redis_url = settings.redis_url
    if not redis_url:
        embedded = EmbeddedRedis(settings.data_dir).start()
        redis_url = embedded.url

    async def seed() -> None:
        services = Services.open(settings, redis_url)
        try:
            await seed_defaults(services)
        finally:
            await services.close()

    try:
        asyncio.run(seed())
    except BaseException:
        if embedded is not None:
            embedded.stop()
        raise
    return redis_url, embedded


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _run_worker(settings: Settings, redis_url: str, reuse_port: bool) -> None:
    import uvloop

    from authz.app import build_app  # imported here: PROMETHEUS_MULTIPROC_DIR must be set first

    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(process)d %(name)s %(message)s")
    uvloop.install()
    app = build_app(settings, redis_url)
    app.on_startup.append(_freeze_heap)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        reuse_port=reuse_port,
        access_log=None,
        print=None,
        handle_signals=True,
        shutdown_timeout=5,
    )


async def _freeze_heap(_app: web.Application) -> None:
    """Move everything allocated at start-up (libraries, policies) out of the collector's sight.

    Full collections then walk only what requests allocate, instead of every module and compiled policy.
    """
    gc.collect()
    gc.freeze()


def serve(settings: Settings) -> int:
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(process)d %(name)s %(message)s")
    # Until the server installs its own handlers, SIGTERM unwinds (stopping the embedded Redis) instead of
    # killing the process outright.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    if settings.workers > 1:
        metrics_dir = settings.data_dir / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    redis_url, embedded = prepare(settings)
    print(f"authz listening on http://{settings.host}:{settings.port} with {settings.workers} worker(s)", flush=True)
    if settings.grpc_port:
        print(f"authz gRPC ext_authz on {settings.host}:{settings.grpc_port}", flush=True)
    try:
        if settings.workers == 1:
            _run_worker(settings, redis_url, reuse_port=False)
            return 0
        return _supervise(settings, redis_url)
    finally:
        if embedded is not None:
            embedded.stop()


def _supervise(settings: Settings, redis_url: str) -> int:
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_run_worker, args=(settings, redis_url, True), name=f"authz-worker-{i}")
        for i in range(settings.workers)
    ]
    for worker in workers:
        worker.start()
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.is_alive() and worker.pid:
                os.kill(worker.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = 0
    for worker in workers:
        while worker.is_alive():
            worker.join(timeout=0.5)
        if worker.exitcode not in (0, -signal.SIGTERM) and not stopping:
            code = 1
            stop(signal.SIGTERM, None)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use the `authz serve` command")
