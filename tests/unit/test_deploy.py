"""deploy/compose.yaml runs what `sched run --cluster` runs: every service, two of each, the same settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from services.cli import SERVICES

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "compose.yaml"


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())["services"]  # type: ignore[no-any-return]


def test_every_cluster_service_runs_in_compose_twice_with_the_cluster_settings() -> None:
    services = _compose()
    for name in SERVICES:
        if name == "gateway":
            gateways = [s for key, s in services.items() if key.startswith("gateway-")]
            assert len(gateways) == 2 and all(g["command"] == ["sched", "serve", "gateway"] for g in gateways)
            continue
        assert services[name]["command"] == ["sched", "serve", name], name
        assert services[name]["deploy"]["replicas"] == 2, name
        env = services[name]["environment"]
        assert env["SCHED_EVENTS_REPLICAS"] == "3" and env["SCHED_CALENDAR_PARTITIONS"] == "4", name
