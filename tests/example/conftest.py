"""Tests of the bundled example (the digits data, the CNN): every test in this folder is marked
`example`. A fork that replaces the example deletes this folder, or runs `pytest -m "not example"`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.example)
