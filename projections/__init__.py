"""Read models: one package per projection (schema.sql, projector.py, queries.py)."""

from __future__ import annotations

import importlib.resources as package_files

from projections.calendars.projector import PROJECTION as CALENDARS
from projections.resources.projector import PROJECTION as RESOURCES
from projections.runner import Projection, partitioned

PROJECTIONS: dict[str, Projection] = {p.name: p for p in (CALENDARS, RESOURCES)}


def runnable(calendar_partitions: int = 1) -> list[Projection]:
    """What the runners follow, each with its own checkpoint: the calendars split by provider, the rest whole."""
    return [*partitioned(CALENDARS, calendar_partitions), RESOURCES]


def migrations() -> list[tuple[int, str, str]]:
    """The read models' schemas as numbered migrations (after the event store's own)."""
    found = []
    for number, package in ((1001, "calendars"), (1002, "resources")):
        sql = package_files.files(f"projections.{package}").joinpath("schema.sql").read_text()
        found.append((number, f"{package}/schema.sql", sql))
    return found
