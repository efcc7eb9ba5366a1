"""Availability engine latency: prints median and p99 (ms) per case; writes nothing else.

Run: python tests/benchmarks/bench_engine.py (from the repo root, or `make bench`).
Targets: a 7-day link window with 500 busy intervals <= 2 ms; a 31-day service window with
20 providers <= 20 ms. "warm" repeats a query whose days are already converted (a running
query service); "cold" first empties the per-(zone, date) conversion caches.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from shared.availability import (
    DAYS,
    AvailabilityRule,
    Busy,
    HostCalendar,
    LinkRules,
    ProviderSchedule,
    ServiceRules,
    SlotRule,
    WeeklyRule,
    link_slots,
    parse_instant,
    service_slots,
    timezones,
)

RUNS = 300
MINUTE = 60


def random_busy(rng: random.Random, start: int, end: int, count: int) -> list[Busy]:
    """`count` meetings of 15-90 minutes on the quarter hour, a third of them with buffers."""
    busy = []
    for _ in range(count):
        begin = start + rng.randrange(0, (end - start) // (15 * MINUTE)) * 15 * MINUTE
        buffers = (10 * MINUTE, 5 * MINUTE) if rng.random() < 1 / 3 else (0, 0)
        busy.append(Busy(begin, begin + rng.choice([15, 30, 45, 60, 90]) * MINUTE, *buffers))
    return busy


def link_case(busy_count: int) -> Callable[[], object]:
    """7 days, 1 host with `busy_count` busy intervals, durations 15/30/60, ranks 1 and 2."""
    rng = random.Random(0)
    start = parse_instant("2026-03-05T00:00:00Z")  # crosses the US DST change on 2026-03-08
    end = start + 7 * 86400
    link = LinkRules(
        time_zone="America/New_York",
        durations=[15, 30, 60],
        buffer_before=10,
        buffer_after=5,
        minimum_notice=60,
        availability=[
            AvailabilityRule(day_of_week=day, start_time="09:00", end_time="17:00") for day in DAYS[:5]
        ]
        + [
            AvailabilityRule(day_of_week=day, start_time="07:00", end_time="20:00", rank=2)
            for day in DAYS[:6]
        ],
    )
    host = HostCalendar(
        provider_id="prov_a",
        schedule=ProviderSchedule(time_zone="America/New_York"),
        busy=random_busy(rng, start, end, busy_count),
    )
    return lambda: link_slots(link, [host], start - 86400, start, end)


def service_case() -> Callable[[], object]:
    """31 days, 20 providers in two zones, 30-minute slots every 15 minutes, asked in Berlin time."""
    rng = random.Random(1)
    first = date(2026, 3, 1)
    start = parse_instant("2026-03-01T00:00:00Z")
    service = ServiceRules(
        duration=30,
        time_zone="America/New_York",
        slot_rules=[SlotRule(days_of_week=list(DAYS[:5]), start_time="08:00", end_time="18:00", interval=15)],
    )
    providers = [
        HostCalendar(
            provider_id=f"prov_{index:02d}",
            schedule=ProviderSchedule(
                time_zone="America/New_York" if index % 2 else "America/Chicago",
                weekly_rules=[
                    WeeklyRule(day_of_week=day, start_time="09:00", end_time="17:00") for day in DAYS[:5]
                ],
            ),
            busy=random_busy(rng, start, start + 32 * 86400, 60),
        )
        for index in range(20)
    ]
    return lambda: service_slots(
        service, providers, start - 86400, "Europe/Berlin", first, date(2026, 3, 31), None
    )


def clear_conversion_caches() -> None:
    timezones.local_day.cache_clear()
    timezones.wall_starts.cache_clear()


def measure(run: Callable[[], object], cold: bool) -> tuple[float, float]:
    run()
    samples = []
    for _ in range(RUNS):
        if cold:
            clear_conversion_caches()
        began = time.perf_counter()
        run()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples), statistics.quantiles(samples, n=100)[98]


def main() -> None:
    cases = [
        ("link 7 days, 1 host, 500 busy", link_case(500), 2.0),
        # Fewer busy intervals leave far more slots to build and order.
        ("link 7 days, 1 host, 50 busy", link_case(50), 2.0),
        ("service 31 days, 20 providers", service_case(), 20.0),
    ]
    print(f"{'case':<34}{'cache':<7}{'median ms':>10}{'p99 ms':>9}{'target':>8}")
    for name, run, target in cases:
        for cold in (False, True):
            median, p99 = measure(run, cold)
            print(f"{name:<34}{'cold' if cold else 'warm':<7}{median:>10.2f}{p99:>9.2f}{target:>8.1f}")


if __name__ == "__main__":
    main()
