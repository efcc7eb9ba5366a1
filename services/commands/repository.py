"""Loading aggregate state from streams, with a per-process cache of evolved states."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from shared.domain.core import Decision
from shared.domain.registry import stream_kind
from shared.eventstore import EventStore, NewEvent, StreamAppend
from shared.messages.events import decode_event, encode_event, event_type


class Repository:
    """Current state of any stream: the cached state plus whatever was appended since.

    Cached states are immutable, so concurrent handlers can share them; a stale entry only costs
    a version conflict, after which the handler re-loads and re-decides.
    """

    def __init__(self, store: EventStore, capacity: int = 20_000) -> None:
        self.store = store
        self.capacity = capacity
        self._cache: OrderedDict[str, tuple[int, Any]] = OrderedDict()

    async def load(self, stream_id: str) -> tuple[int, Any]:
        """(version, state) of the stream now."""
        kind = stream_kind(stream_id)
        version, state = self._cache.get(stream_id) or (0, kind.state_type())
        recorded = await self.store.read_stream(stream_id, after_version=version)
        if recorded:
            state = kind.fold(state, [decode_event(r.data) for r in recorded])
            version = recorded[-1].version
        self._remember(stream_id, version, state)
        return version, state

    def appended(self, stream_id: str, expected_version: int, events: list[Any]) -> None:
        """Fold our own successful append into the cache (saves the next reader a replay)."""
        cached = self._cache.get(stream_id)
        if expected_version and (cached is None or cached[0] != expected_version):
            return
        kind = stream_kind(stream_id)
        state = kind.fold(cached[1] if cached else kind.state_type(), events)
        self._remember(stream_id, expected_version + len(events), state)

    def _remember(self, stream_id: str, version: int, state: Any) -> None:
        current = self._cache.get(stream_id)
        if current is None or current[0] <= version:
            self._cache[stream_id] = (version, state)
        self._cache.move_to_end(stream_id)
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)


class UnitOfWork:
    """One attempt at one command: remembers the version of every stream it read."""

    def __init__(self, repository: Repository) -> None:
        self.repository = repository
        self.versions: dict[str, int] = {}

    async def load(self, stream_id: str) -> Any:
        """The stream's state now; its version is remembered as the one the append expects."""
        version, state = await self.repository.load(stream_id)
        self.versions[stream_id] = version
        return state

    def appends(self, decision: Decision, new_event_id: Callable[[], str]) -> list[StreamAppend]:
        """The decision as appends, each expecting the version it was decided on (0 = a new stream)."""
        written = [
            StreamAppend(stream_id, self.versions.get(stream_id, 0),
                         [NewEvent(new_event_id(), event_type(e), encode_event(e)) for e in events])
            for stream_id, events in decision.changes if events
        ]
        names = {a.stream_id for a in written}
        guards = [StreamAppend(s, self.versions.get(s, 0), []) for s in dict.fromkeys(decision.guards)
                  if s not in names]
        return written + guards
