"""Test tiers: a test still marked `slow` (the tiers' old name) belongs to the integration tier."""

import pytest


@pytest.hookimpl(tryfirst=True)  # before pytest's own -m selection
def pytest_collection_modifyitems(items):
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("integration"):
            item.add_marker(pytest.mark.integration)
