"""The installed package runs without the development tools: every module of fold imports
with DuckDB and aiosmtpd absent, and `fold bench` then says what to install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Runs in a child: the two tools made unimportable before anything of fold is loaded.
WITHOUT_TOOLS = """
import sys
sys.modules["duckdb"] = None
sys.modules["aiosmtpd"] = None
sys.modules["aiosmtpd.controller"] = None
"""

EVERY_MODULE = """
import importlib, pkgutil, fold
for info in pkgutil.walk_packages(fold.__path__, "fold."):
    if ".migrations" not in info.name:
        importlib.import_module(info.name)
print("imported")
"""

BENCH = """
from fold.cli.main import cli
cli(["bench", "--people", "100", "--output", sys.argv[1]])
"""


def run(code: str, *args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "FOLD_DATABASE_URL": f"sqlite:///{tmp_path / 'fold.db'}",
        "FOLD_DATA_DIR": str(tmp_path),
    }
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_TOOLS + code, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_every_module_imports_without_the_tools(tmp_path: Path) -> None:
    done = run(EVERY_MODULE, tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "imported"


def test_bench_names_what_to_install(tmp_path: Path) -> None:
    done = run(BENCH, str(tmp_path / "out.json"), tmp_path=tmp_path)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "pip install 'fold[bench]'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out.json").exists()
