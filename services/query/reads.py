"""What every query handler may use: the read models' pool, the clock, the public URL, read-your-writes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import asyncpg

from projections import runnable
from projections.runner import Projection, applied_everywhere, log_head, tx_of
from shared.errors import DomainError, ValidationFailed


@dataclass(frozen=True)
class Reads:
    """The explicit dependencies of the query handlers; tests pass their own clock."""

    pool: asyncpg.Pool
    public_url: str = "http://127.0.0.1:8000/book"
    clock: Callable[[], float] = time.time
    max_wait: float = 5.0
    # the checkpoints a read waits for: every unit the runners follow (each calendars partition too)
    projections: Sequence[Projection] = field(default_factory=runnable)

    def now(self) -> int:
        """The current instant in whole epoch seconds."""
        return int(self.clock())

    async def wait_for(self, position: int) -> None:
        """Return once every read model has applied the event at `position` (read-your-writes)."""
        tx_id = await tx_of(self.pool, position)
        if tx_id is None:
            return  # no such event (yet): nothing to wait for
        deadline = asyncio.get_running_loop().time() + self.max_wait
        while not await applied_everywhere(self.pool, self.projections, tx_id, position):
            if asyncio.get_running_loop().time() > deadline:
                raise DomainError("the read models have not caught up yet; try again",
                                  {"min_position": ["not reached in time"]})
            await asyncio.sleep(0.003)

    async def wait_for_head(self) -> None:
        """Wait until the read models hold everything in the log now (a miss that may be a fresh write)."""
        head = await log_head(self.pool)
        if head:
            await self.wait_for(head)


def page_limit(value: int, field_name: str = "limit") -> int:
    """A list's page size: 1 to 100."""
    if not 1 <= value <= 100:
        raise ValidationFailed.on(field_name, "must be 1 to 100")
    return value
