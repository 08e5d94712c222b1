"""The wheel holds everything the service reads at run time: every file of its packages, the policy files
(``policies/``), the migrations, templates, OpenAPI documents and the admin console's files among them.
``.ci/wheel_smoke.sh`` installs that wheel and runs it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from authz.settings import PROJECT_ROOT

PACKAGES = ("authz", "identity", "policies")


def _package_files() -> set[str]:
    return {
        path.relative_to(PROJECT_ROOT).as_posix()
        for package in PACKAGES
        for path in (PROJECT_ROOT / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_the_wheel_holds_every_file_of_the_packages(tmp_path: Path) -> None:
    # Built from a copy: a build in the checkout would leave build/ and authz.egg-info in it.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT_ROOT / name, source / name)
    for package in PACKAGES:
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(PROJECT_ROOT / package, source / package, ignore=ignore)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(source)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = (tmp_path / "dist").glob("authz-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())

    assert sorted(_package_files() - shipped) == []
    assert {name.split("/")[0] for name in shipped if ".dist-info/" not in name} == set(PACKAGES)
