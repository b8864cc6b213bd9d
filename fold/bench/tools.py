"""Development tools some measurements compare with or talk to (DuckDB, an SMTP server).
Fold does not install them (`pip install 'fold[bench]'` does, as does `make install`),
so they are imported when a measurement starts, with what to install when missing."""

from __future__ import annotations

import importlib
from typing import Any


def dev_tool(module: str, purpose: str) -> Any:
    """`module`, or an exit naming what to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise SystemExit(
            f"{purpose} needs {module.split('.')[0]}, a development tool Fold does not "
            "install: pip install 'fold[bench]' (make install installs it too)."
        ) from None
