"""The reliability suite: faults and bad input against real processes and real receivers on 127.0.0.1.

Every test here is marked `reliability` and states what it measured through the `figure` fixture:
`figure("smtp outage", lost=0, duplicates=0, pending=0)`. The figures are printed at the end of the run
and written to `reliability-figures.json` in pytest's base temporary folder, the numbers docs/reliability.md
quotes.
"""
from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.servers import http_server, http_servers, smtp_server  # noqa: F401  (fixtures)

_FIGURES: list[dict] = []
_WHERE: list = []


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if "tests/reliability/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.reliability)


@pytest.fixture(scope="session", autouse=True)
def _figures_folder(tmp_path_factory) -> None:
    _WHERE.append(tmp_path_factory.getbasetemp())


@pytest.fixture
def figure(request) -> Callable[..., None]:
    """Record what a test measured: a name and its figures (counts, seconds), printed at the end of the run."""

    def record(name: str, **values) -> None:
        row = {"test": request.node.nodeid, "name": name, **values}
        _FIGURES.append(row)
        print(f"reliability: {name}: " + ", ".join(f"{k}={v}" for k, v in values.items()))

    return record


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not _FIGURES:
        return
    terminalreporter.section("reliability figures")
    for row in _FIGURES:
        values = ", ".join(f"{k}={v}" for k, v in row.items() if k not in ("test", "name"))
        terminalreporter.write_line(f"{row['name']}: {values}")
    if _WHERE:
        (_WHERE[0] / "reliability-figures.json").write_text(json.dumps(_FIGURES, ensure_ascii=False, indent=1, default=str))
