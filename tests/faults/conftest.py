"""Engine restarts disturb every cloud on the host: this suite runs alone and last (`make
test` runs it as a second pytest invocation; a bare `pytest` orders it after the rest)."""
from __future__ import annotations

from pathlib import Path

FAULTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: FAULTS in Path(str(item.fspath)).parents)  # stable: the rest keep their order
