"""Suite-wide scheduling: the longest test files start first.

`make test` spreads files over pytest-xdist workers (`--dist loadfile`) in collection order; a long file
collected late keeps one worker busy after the others are done. Files marked `long_running`
(`pytestmark = pytest.mark.long_running`) are moved to the front, so they run alongside the rest.
"""

from __future__ import annotations


def pytest_collection_modifyitems(session, config, items) -> None:
    items.sort(key=lambda item: item.get_closest_marker("long_running") is None)  # stable: file order kept
