"""Run Python code as on a default install (``pip install worlds-sdk``): psycopg cannot be imported.

``python without_psycopg.py CODE`` blocks every psycopg module with a meta-path
finder that answers as a missing package would, then executes ``CODE``.
"""

from __future__ import annotations

import sys
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

BLOCKED = {"psycopg", "psycopg_pool", "psycopg_binary", "psycopg_c"}


class NoPsycopg(MetaPathFinder):
    def find_spec(self, name: str, path: Any = None, target: ModuleType | None = None) -> ModuleSpec | None:
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


if __name__ == "__main__":
    sys.meta_path.insert(0, NoPsycopg())
    exec(compile(sys.argv[1], "<without psycopg>", "exec"))
