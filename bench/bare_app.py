"""The baseline: a bare aiohttp handler (200, empty body) on uvloop, N workers sharing the port (SO_REUSEPORT).

It is the sidecar minus the decision: the same server, loop, worker model and catch-all route shape, so
``sidecar rps / bare rps`` is the share of the HTTP stack's throughput that the decision leaves.

    python bench/bare_app.py --port 18081 --workers 2
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import sys

from aiohttp import web


async def ok(_request: web.Request) -> web.Response:
    return web.Response(status=200)


def build_app() -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/{path:.*}", ok)
    return app


def run_worker(host: str, port: int, reuse_port: bool) -> None:
    import uvloop

    uvloop.install()
    web.run_app(build_app(), host=host, port=port, reuse_port=reuse_port, access_log=None, print=None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18081)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    if args.workers == 1:
        run_worker(args.host, args.port, reuse_port=False)
        return 0
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=run_worker, args=(args.host, args.port, True), name=f"bare-worker-{i}")
        for i in range(args.workers)
    ]
    for worker in workers:
        worker.start()

    def stop(_signum: int, _frame: object) -> None:
        for worker in workers:
            if worker.is_alive() and worker.pid:
                os.kill(worker.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(
        f"bare aiohttp listening on http://{args.host}:{args.port} with {args.workers} worker(s)", flush=True
    )
    for worker in workers:
        worker.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
