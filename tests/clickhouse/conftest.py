"""Fixtures for the ClickHouse layer: one chDB directory per test process, one database per test.

chDB hosts a single engine bound to a single directory per process, so every chDB test shares
``chdb_url`` and isolates itself with its own database (``fresh_db``).
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

_counter = itertools.count()


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(scope="session")
def chdb_url(chdb_dir: Path) -> str:
    return f"chdb://{chdb_dir}"


@pytest.fixture
def fresh_db() -> str:
    return f"t{next(_counter)}_db"


@pytest.fixture
def backend(chdb_url: str) -> Iterator[object]:
    from agentportal_otel.clickhouse import connect

    conn = connect(chdb_url)
    yield conn
    conn.close()
