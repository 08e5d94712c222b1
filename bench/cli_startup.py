"""Start-up time of the ``authz`` command: ``--version``, ``--help`` and every command's ``--help``.

    .venv/bin/python bench/cli_startup.py [--runs 15] [--limit 0.3] [--check] [--authz PATH]

Each invocation runs ``--runs`` times as a subprocess of the installed console script (default: ``authz``
beside this interpreter), after one unmeasured run; the wall time from spawning it to its exit is taken.
Printed per invocation: the median and the minimum, in ms.  The commands are read from the argument tree
(``authz.cli.parser``), so a new one is measured without editing this file.  ``--check`` makes the exit
status non-zero when a median is over ``--limit`` seconds.  Nothing here touches a data directory: neither
``--help`` nor ``--version`` reads the settings.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from authz.cli import parser as authz_parser


def command_paths(command: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command and subcommand of the tree, as its path of names (the root's is ``()``)."""
    yield path
    for action in command._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from command_paths(child, (*path, name))


def wall_times(argv: list[str], runs: int) -> list[float]:
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)  # warm the page cache
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    return times


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--runs", type=int, default=15, help="measured runs per invocation (default 15)")
    options.add_argument("--limit", type=float, default=0.3, help="seconds a median may take (default 0.3)")
    options.add_argument("--check", action="store_true", help="exit non-zero when a median is over --limit")
    script = str(Path(sys.executable).parent / "authz")
    options.add_argument("--authz", default=script, help="the console script (default: beside this Python)")
    args = options.parse_args()

    invocations = [["--version"]] + [[*path, "--help"] for path in command_paths(authz_parser())]
    print(f"{'invocation':<42} {'median ms':>10} {'min ms':>8}")
    over = []
    for extra in invocations:
        times = wall_times([args.authz, *extra], args.runs)
        median = statistics.median(times)
        label = " ".join(["authz", *extra])
        flag = "  over" if median > args.limit else ""
        print(f"{label:<42} {median * 1000:>10.0f} {min(times) * 1000:>8.0f}{flag}")
        if median > args.limit:
            over.append(label)
    verdict = f"{len(over)} over" if over else "all within"
    limit = f"limit {args.limit * 1000:.0f} ms"
    print(f"{len(invocations)} invocations, {args.runs} runs each; {limit}: {verdict}")
    return 1 if args.check and over else 0


if __name__ == "__main__":
    sys.exit(main())
