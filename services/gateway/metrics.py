"""Request counts and latency per route and status, in Prometheus' text format (`GET /metrics`)."""

from __future__ import annotations


class Metrics:
    """Counters of one gateway process."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = {}
        self.seconds: dict[str, float] = {}

    def observe(self, route_name: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests[(route_name, status)] = self.requests.get((route_name, status), 0) + 1
        self.seconds[route_name] = self.seconds.get(route_name, 0.0) + seconds

    def render(self) -> str:
        """The counters as Prometheus text."""
        lines = ["# HELP sched_http_requests_total HTTP requests by route and status.",
                 "# TYPE sched_http_requests_total counter"]
        lines += [f'sched_http_requests_total{{route="{r}",status="{s}"}} {n}'
                  for (r, s), n in sorted(self.requests.items())]
        lines += ["# HELP sched_http_request_seconds_sum Time spent answering, by route.",
                  "# TYPE sched_http_request_seconds_sum counter"]
        lines += [f'sched_http_request_seconds_sum{{route="{r}"}} {v:.6f}' for r, v in sorted(self.seconds.items())]
        return "\n".join(lines) + "\n"
