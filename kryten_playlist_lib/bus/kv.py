"""JSON key/value storage on NATS JetStream, namespaced, with compare-and-set.

Keys passed in here are relative (`otp/request/alice`); the store adds
`ns/{namespace}/`. Outside data in a key goes through `keys.encode_segment`
first. Every read-modify-write goes through `update`, which retries a lost
compare-and-set with jittered backoff for up to 5 s (storage.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import nats.errors
import nats.js.errors
from nats.js.api import KeyValueConfig, ObjectStoreConfig, StorageType
from nats.js.kv import KeyValue

from kryten_playlist_lib.bus.bridge import DEFAULT_TIMEOUT_SECONDS, NatsBridge
from kryten_playlist_lib.bus.keys import namespace_prefix
from kryten_playlist_lib.bus.kv_pipeline import (
    EXPECTED_LAST_SUBJECT_SEQUENCE,
    WRONG_LAST_SEQUENCE,
    Pipeline,
    Request,
    stored_message,
    written_revision,
)
from kryten_playlist_lib.errors import NatsUnavailable, ServiceError
from kryten_playlist_lib.timeutil import is_expired

log = logging.getLogger("kryten_playlist.kv")

BUCKETS: dict[str, str] = {
    name: f"kryten_playlist_{name}"
    for name in ("snapshot", "acl", "playlists", "auth", "analytics", "likes", "locks")
}
OBJECT_STORE = "kryten_playlist_catalog"
BUCKET_HISTORY = 5
MAX_VALUE_BYTES = 1024 * 1024
CAS_RETRY_SECONDS = 5.0
JS_API = "$JS.API"  # `bootstrap` binds the buckets through `nc.jetstream()`, the default API prefix

Change = tuple[str, str, Callable[[Any], Any]]  # (bucket, key, change) for `update_many`


@dataclass(frozen=True)
class Entry:
    value: Any
    revision: int


class KvReader(Protocol):
    """Something keys are read from: KV itself, or reads that fall back to the local mirror."""

    def get(self, bucket: str, key: str) -> Entry | None: ...


def encode_value(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class KvStore:
    def __init__(self, bridge: NatsBridge, namespace: str, replicas: int = 1) -> None:
        self._bridge = bridge
        self._prefix = namespace_prefix(namespace)
        self._replicas = replicas
        self._buckets: dict[str, KeyValue] = {}

    @property
    def ready(self) -> bool:
        return self._bridge.connected and len(self._buckets) == len(BUCKETS)

    # ---- bootstrap (a connect hook, runs on the loop) --------------------

    async def bootstrap(self) -> None:
        """Bind every bucket, creating the missing ones; an existing bucket is never reconfigured."""
        js = self._bridge.nc.jetstream()
        for name, bucket in BUCKETS.items():
            try:
                self._buckets[name] = await js.key_value(bucket)
            except nats.js.errors.BucketNotFoundError:
                self._buckets[name] = await self._create_bucket(bucket)
        try:
            await js.object_store(OBJECT_STORE)
        except nats.js.errors.BucketNotFoundError:
            await js.create_object_store(OBJECT_STORE, ObjectStoreConfig(
                bucket=OBJECT_STORE, storage=StorageType.FILE, replicas=self._replicas))

    async def _create_bucket(self, bucket: str) -> KeyValue:
        js = self._bridge.nc.jetstream()
        config = KeyValueConfig(bucket=bucket, history=BUCKET_HISTORY, storage=StorageType.FILE,
                                max_value_size=MAX_VALUE_BYTES, replicas=self._replicas)
        try:
            return await js.create_key_value(config)
        except nats.js.errors.BadRequestError:
            # Another replica created it first with settings of its own: bind to that one.
            return await js.key_value(bucket)

    def _bucket(self, name: str) -> KeyValue:
        try:
            return self._buckets[name]
        except KeyError:
            raise ServiceError("nats_unavailable", "The key/value store is not ready yet.") from None

    # ---- single operations (blocking) ------------------------------------

    def get(self, bucket: str, key: str) -> Entry | None:
        """The current value, or None when absent, deleted or expired."""
        entry = self.get_raw(bucket, key)
        if entry is None or is_expired(entry.value):
            return None
        return entry

    def get_raw(self, bucket: str, key: str) -> Entry | None:
        """Like `get`, but an expired value is returned too (the janitor and CAS need its revision)."""
        kv = self._bucket(bucket)

        async def read() -> Entry | None:
            try:
                found = await kv.get(self._prefix + key)
            except nats.js.errors.KeyNotFoundError:
                return None
            return Entry(_decode(bucket, key, found.value), found.revision)

        return self._bridge.run(read)

    def put(self, bucket: str, key: str, value: Any) -> int:
        kv = self._bucket(bucket)
        return self._bridge.run(kv.put, self._prefix + key, encode_value(value))

    def compare_and_set(self, bucket: str, key: str, value: Any, revision: int) -> int | None:
        """Write only if the key is still at `revision` (0: absent); the new revision, or None."""
        kv = self._bucket(bucket)

        async def write() -> int | None:
            try:
                if revision == 0:
                    return await kv.create(self._prefix + key, encode_value(value))
                return await kv.update(self._prefix + key, encode_value(value), last=revision)
            except nats.js.errors.KeyWrongLastSequenceError:
                return None

        return self._bridge.run(write)

    def create(self, bucket: str, key: str, value: Any) -> int | None:
        """Create a key nobody holds (an expired value counts as free); its revision, or None if taken."""
        revision = self.compare_and_set(bucket, key, value, 0)
        if revision is not None:
            return revision
        current = self.get_raw(bucket, key)
        if current is None:
            return self.compare_and_set(bucket, key, value, 0)
        if is_expired(current.value):
            return self.compare_and_set(bucket, key, value, current.revision)
        return None

    def delete(self, bucket: str, key: str, revision: int | None = None) -> bool:
        """Delete; with `revision`, only if the key is still at it. False when that check fails."""
        kv = self._bucket(bucket)

        async def remove() -> bool:
            try:
                return await kv.delete(self._prefix + key, last=revision)
            except nats.js.errors.APIError as exc:
                # nats-py raises the raw APIError here, not KeyWrongLastSequenceError.
                if exc.err_code == WRONG_LAST_SEQUENCE:
                    return False
                raise

        return self._bridge.run(remove)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Relative keys of this namespace that start with `prefix` and hold a value now.

        Listed from the stream's subjects, then read, rather than with
        nats-py's watch-based `keys()`, which can come back empty when the
        watch starts while messages are still in flight.
        """
        kv = self._bucket(bucket)
        subject_prefix = f"$KV.{BUCKETS[bucket]}."
        full_prefix = self._prefix + prefix

        async def list_keys() -> list[str]:
            info = await self._bridge.nc.jetstream().stream_info(f"KV_{BUCKETS[bucket]}",
                                                                  subjects_filter=f"{subject_prefix}>")
            names = [subject[len(subject_prefix):] for subject in (info.state.subjects or {})]
            names = sorted(name for name in names if name.startswith(full_prefix))
            held = await asyncio.gather(*(self._holds_value(kv, name) for name in names))
            return [name[len(self._prefix):] for name, has_value in zip(names, held, strict=True) if has_value]

        return self._bridge.run(list_keys, timeout=30.0)

    @staticmethod
    async def _holds_value(kv: KeyValue, name: str) -> bool:
        try:
            await kv.get(name)
        except nats.js.errors.KeyNotFoundError:  # deleted or purged: only a marker is left
            return False
        return True

    async def watch(self, bucket: str, on_change: Callable[[str], None]) -> None:
        """On the loop: call `on_change(relative key)` for every change in this namespace of `bucket`.

        nats-py watches one subject, so the whole bucket is watched and filtered
        here. `on_change` runs on the loop and must not block.
        """
        kv = self._bucket(bucket)
        watcher = await kv.watch(">", meta_only=True)

        async def pump() -> None:
            try:
                async for entry in watcher:
                    if entry is not None and entry.key.startswith(self._prefix):
                        on_change(entry.key[len(self._prefix):])
            finally:
                # Unsubscribing also ends nats-py's heartbeat and flow-control tasks of the watch.
                with contextlib.suppress(nats.errors.Error):
                    await watcher.stop()

        self._bridge.track(asyncio.ensure_future(pump()))

    # ---- read-modify-write -----------------------------------------------

    def update(self, bucket: str, key: str, change: Callable[[Any], Any]) -> Entry:
        """Apply `change(current value or None)` with compare-and-set until it sticks.

        `change` may run several times, so it must be a pure function of its
        argument; it may raise to abort. After 5 s of lost races: 503.
        """
        deadline = time.monotonic() + CAS_RETRY_SECONDS
        pause = 0.002
        while True:
            current = self.get_raw(bucket, key)
            revision = current.revision if current else 0
            old_value = None if current is None or is_expired(current.value) else current.value
            new_value = change(old_value)
            written = self.compare_and_set(bucket, key, new_value, revision)
            if written is not None:
                return Entry(new_value, written)
            if time.monotonic() > deadline:
                raise ServiceError("nats_unavailable", "The store is too busy to save this change; "
                                   "try again.", {"key": key})
            time.sleep(random.uniform(0, pause))
            pause = min(pause * 2, 0.1)

    def update_many(self, changes: list[Change]) -> list[Entry]:
        """`update` of many keys at once (queue statistics); their entries, in order.

        Each key gets the compare-and-set loop of `update`, but pipelined: all
        reads go out before the first answer is awaited, then all writes, and
        only the keys that lost a race go round again; a few round trips for the
        lot instead of two per key. `change` runs on the event loop, so it must
        be quick and must not call the store. Every key is tried; then the
        first error (a raising `change`, an unreadable value, NATS, 5 s of lost
        races) is raised.
        """
        if not changes:
            return []
        for bucket, _key, _change in changes:
            self._bucket(bucket)  # not bootstrapped: 503 before anything is sent
        outcomes = self._bridge.run(self._update_many, changes,
                                    timeout=CAS_RETRY_SECONDS + 2 * DEFAULT_TIMEOUT_SECONDS)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return outcomes

    async def _update_many(self, changes: list[Change]) -> list[Entry | BaseException]:
        outcomes: list[Entry | BaseException | None] = [None] * len(changes)
        deadline = time.monotonic() + CAS_RETRY_SECONDS
        pause = 0.002
        async with Pipeline(self._bridge.nc) as pipeline:
            while left := [index for index, outcome in enumerate(outcomes) if outcome is None]:
                if time.monotonic() > deadline:
                    for index in left:
                        outcomes[index] = ServiceError("nats_unavailable", "The store is too busy to save this "
                                                       "change; try again.", {"key": changes[index][1]})
                    break
                if len(left) < len(changes):
                    await asyncio.sleep(random.uniform(0, pause))  # after lost races, as `update` does
                    pause = min(pause * 2, 0.1)
                await self._update_round(pipeline, changes, left, outcomes)
        return [outcome for outcome in outcomes if outcome is not None]

    async def _update_round(self, pipeline: Pipeline, changes: list[Change], left: list[int],
                            outcomes: list[Entry | BaseException | None]) -> None:
        """One try of the keys in `left`: read them all, then write them all. A lost race stays None."""
        reads = await pipeline.ask_all([self._read_request(*changes[index][:2]) for index in left])
        writes: list[tuple[int, Any, Request]] = []
        for index, reply in zip(left, reads, strict=True):
            bucket, key, change = changes[index]
            try:
                raw, revision = stored_message(reply)
                current = Entry(None if raw is None else _decode(bucket, key, raw), revision)
                new_value = change(None if is_expired(current.value) else current.value)
            except NatsUnavailable:
                raise
            except Exception as exc:  # noqa: BLE001  (an unreadable value or an aborting change: this key's outcome)
                outcomes[index] = exc
                continue
            writes.append((index, new_value, self._write_request(bucket, key, new_value, current.revision)))
        answers = await pipeline.ask_all([request for _index, _value, request in writes])
        for (index, new_value, _request), answer in zip(writes, answers, strict=True):
            revision = written_revision(answer)
            if revision is not None:
                outcomes[index] = Entry(new_value, revision)

    def _read_request(self, bucket: str, key: str) -> Request:
        name = BUCKETS[bucket]
        return (f"{JS_API}.STREAM.MSG.GET.KV_{name}",
                encode_value({"last_by_subj": f"$KV.{name}.{self._prefix}{key}"}), None)

    def _write_request(self, bucket: str, key: str, value: Any, revision: int) -> Request:
        return (f"$KV.{BUCKETS[bucket]}.{self._prefix}{key}", encode_value(value),
                {EXPECTED_LAST_SUBJECT_SEQUENCE: str(revision)})


def _decode(bucket: str, key: str, raw: bytes | None) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        log.error("value of %s in bucket %s is not JSON", key, bucket)
        raise ServiceError("internal", "A stored value could not be read.") from None
