#!/usr/bin/env python3
"""Build the single file `dist/kryten-playlist.pyz` (operations.md, "Deployment shapes").

pip installs this checkout and its runtime dependencies into a temporary
folder, which then becomes a zipapp. pip writes the project's dist-info from
setup.cfg, so `--version` inside the file reads the same package metadata as
an installed copy. Python imports only pure-Python code from a zip, so a
compiled extension stops the build.

Usage: python scripts/build_pyz.py [--output PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipapp
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO / "dist" / "kryten-playlist.pyz"
INTERPRETER = "/usr/bin/env python3"
COMPILED_SUFFIXES = (".so", ".pyd", ".dylib")
# Left out of the copy pip builds from: build outputs, local data, tests, tool caches and dot folders.
SKIPPED_AT_TOP = {"build", "dist", "data", "tests", "venv", "node_modules"}
MAIN_PY = '''"""The single file's entry point: `python3 kryten-playlist.pyz VERB ...`."""

import sys

from kryten_playlist_lib.cli import main

sys.exit(main())
'''


class BuildError(Exception):
    """The build cannot go on; the message says why."""


def build(output: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix="kryten-pyz-") as scratch:
        source, app = Path(scratch) / "source", Path(scratch) / "app"
        # pip builds in the source tree; a copy keeps setuptools' build/ folder (and stale files in it) out of
        # the checkout and out of the next build.
        shutil.copytree(REPO, source, ignore=_skipped)
        _pip_install(source, app)
        _prune(app)
        compiled = compiled_extensions(app)
        if compiled:
            raise BuildError("compiled extensions cannot be imported from a zip: " + ", ".join(compiled))
        (app / "__main__.py").write_text(MAIN_PY, encoding="utf-8")
        output.parent.mkdir(parents=True, exist_ok=True)
        partial = output.with_name(output.name + ".partial")
        zipapp.create_archive(app, partial, interpreter=INTERPRETER, main=None, compressed=True)
        os.replace(partial, output)
    return output


def compiled_extensions(folder: Path) -> list[str]:
    """The files under `folder` that are compiled extension modules, as paths relative to it."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*")
                  if path.is_file() and path.name.endswith(COMPILED_SUFFIXES))


def _skipped(folder: str, names: list[str]) -> set[str]:
    if Path(folder) == REPO:
        return {name for name in names
                if name.startswith(".") or name in SKIPPED_AT_TOP or name.endswith(".egg-info")}
    return {name for name in names if name == "__pycache__"}


def _pip_install(source: Path, target: Path) -> None:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
               "--target", str(target), str(source)]
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise BuildError(f"pip install failed (exit {result.returncode}); its messages are above")


def _prune(app: Path) -> None:
    """Console scripts point at the building interpreter and bytecode at its version: neither belongs here."""
    shutil.rmtree(app / "bin", ignore_errors=True)
    for cache in list(app.rglob("__pycache__")):
        shutil.rmtree(cache)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the single-file zipapp kryten-playlist.pyz.")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, metavar="PATH",
                        help=f"where to write it (default {DEFAULT_OUTPUT.relative_to(REPO)} in the checkout)")
    args = parser.parse_args(argv)
    try:
        built = build(args.output.resolve())
    except BuildError as exc:
        print(f"build_pyz: {exc}", file=sys.stderr)
        return 1
    print(f"{built} ({built.stat().st_size / 1024:,.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
