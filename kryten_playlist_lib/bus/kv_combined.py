"""Many threads of one process changing the same key at once (a like count): one write carries them all.

A caller that arrives while a write of its key is in flight waits; the next
write applies every waiting change in arrival order inside one ordinary
`KvStore.update` (read, then compare-and-set with retry).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kryten_playlist_lib.bus.kv import Entry, KvStore


@dataclass(eq=False)
class _Waiting:
    """One caller's change, waiting to go out in (or to lead) a combined write of its key."""

    change: Callable[[Any], Any]
    woken: threading.Event = field(default_factory=threading.Event)
    leads: bool = False
    after: Any = None  # the value just after this change, in the latest try
    aborted: BaseException | None = None  # what this change raised in the latest try
    outcome: Entry | BaseException | None = None


class _NothingToWrite(Exception):
    """Every change of a combined write aborted itself."""


class CombinedUpdates:
    """`KvStore.update` for keys that many threads of this process change at once (a like count).

    A caller that arrives while a write of its key is in flight waits; the next
    write applies every waiting change in arrival order in one compare-and-set
    loop, so fifty concurrent increments cost a few round trips instead of
    hundreds of lost races. Each caller gets what one `update` of its own would
    have given; other replicas still meet these writes through compare-and-set,
    so nothing is lost between processes either.
    """

    def __init__(self, kv: KvStore) -> None:
        self._kv = kv
        self._lock = threading.Lock()
        self._waiting: dict[tuple[str, str], list[_Waiting]] = {}
        self._writing: set[tuple[str, str]] = set()

    def update(self, bucket: str, key: str, change: Callable[[Any], Any]) -> Entry:
        """As `KvStore.update`; the entry holds the value just after `change` (later changes may share the write)."""
        me = _Waiting(change)
        slot = (bucket, key)
        with self._lock:
            self._waiting.setdefault(slot, []).append(me)
            me.leads = slot not in self._writing
            self._writing.add(slot)
        if not me.leads:
            me.woken.wait()  # woken with an outcome, or to lead the next write
        if me.leads:
            self._write_waiting(slot)
        if isinstance(me.outcome, BaseException):
            raise me.outcome
        assert me.outcome is not None
        return me.outcome

    def _write_waiting(self, slot: tuple[str, str]) -> None:
        """Write every change waiting on `slot` in one update, then pass the lead to whoever came meanwhile."""
        with self._lock:
            batch = self._waiting.pop(slot)
        failure: BaseException | None = None
        revision = 0
        try:
            revision = self._kv.update(*slot, lambda old: _apply_in_turn(batch, old)).revision
        except _NothingToWrite:
            pass
        except BaseException as exc:  # noqa: BLE001  (handed to every caller of this write, the leader too)
            failure = exc
        for waiting in batch:
            waiting.outcome = waiting.aborted or failure or Entry(waiting.after, revision)
        with self._lock:
            following = self._waiting.get(slot)
            if following:
                following[0].leads = True
                following[0].woken.set()
            else:
                self._writing.discard(slot)
        for waiting in batch:
            waiting.woken.set()


def _apply_in_turn(batch: list[_Waiting], old: Any) -> Any:
    """The value after every change of `batch` in order; a change that raises is left out, as `update` would."""
    value = old
    applied = False
    for waiting in batch:
        try:
            value = waiting.change(value)
        except Exception as exc:  # noqa: BLE001  (that caller gets it; the others still count)
            waiting.aborted = exc
        else:
            waiting.after, waiting.aborted, applied = value, None, True
    if not applied:
        raise _NothingToWrite()
    return value
