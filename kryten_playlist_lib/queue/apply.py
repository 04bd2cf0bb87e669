"""Queue apply, in the order of behaviour.md section 5.

role → lease `queue_apply/{channel}` → ask the robot for the queue (nothing
changes if it does not answer) → resolve items against the snapshot → store
the apply record with the queue as it was → remove by mode, confirmed from
`state.playlist` → add in playlist order, paced to CyTube's rate limit →
statistics → release the lease.

Adds go one at a time: the robot handles one command at a time anyway, and
CyTube rate-limits adds, so parallel sends would only collect refusals.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from kryten_playlist_lib.activity.stats import GLOBAL_KEY, GLOBAL_ZERO, item_zero
from kryten_playlist_lib.bus.keys import encode_segment
from kryten_playlist_lib.bus.kv import Change, KvStore
from kryten_playlist_lib.bus.leases import Lease, LeaseKeeper, Leases
from kryten_playlist_lib.bus.robot import RobotClient
from kryten_playlist_lib.catalog.search import CatalogReader
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.domain.pacing import AddPacer
from kryten_playlist_lib.domain.rbac import User, can, required_role
from kryten_playlist_lib.errors import NatsUnavailable, ServiceError, ValidationError
from kryten_playlist_lib.playlists.store import PlaylistStore
from kryten_playlist_lib.timeutil import iso, iso_in, utcnow

log = logging.getLogger("kryten_playlist.queue")

MODES = ("preserve_current", "append", "hard_replace")
RECORDS = "playlists"
LEASE_TTL_SECONDS = 30.0
LEASE_RENEW_SECONDS = 10.0
RECORD_KEEP_SECONDS = 30 * 86400
ADD_REPLY_SECONDS = 10.0  # nats.md: wait at least 10 s for an addvideo reply
CONFIRM_SECONDS = 10.0
PROGRESS_EVERY_SECONDS = 0.5  # the record's `done` is written at most this often while adding
TOO_QUICKLY = "too quickly"
TOO_QUICKLY_RETRIES = 8
TOO_QUICKLY_PAUSE_MAX_SECONDS = 2.0


@dataclass
class PlannedItem:
    video_id: str
    manifest_url: str
    duration_seconds: int | None


@dataclass
class ApplyJob:
    apply_id: str
    playlist_id: str
    playlist_name: str
    mode: str
    requested_by: str
    lease: Lease
    queue_before: list[dict[str, Any]]
    planned: list[PlannedItem]
    failed: list[dict[str, str]]
    total: int
    started_at: str = field(default_factory=lambda: iso(utcnow()))
    status: str = "running"
    done: int = 0
    enqueued: int = 0
    removed: int = 0
    enqueued_items: list[PlannedItem] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return {"apply_id": self.apply_id, "requested_by": self.requested_by, "started_at": self.started_at,
                "finished_at": None if self.status == "running" else iso(utcnow()),
                "playlist_id": self.playlist_id, "playlist_name": self.playlist_name, "mode": self.mode,
                "status": self.status, "done": self.done, "total": self.total, "enqueued_count": self.enqueued,
                "removed_count": self.removed, "failed": self.failed,
                "queue_before": [{"uid": item.get("uid"), "media_id": (item.get("media") or {}).get("id")}
                                 for item in self.queue_before],
                "expires_at": iso_in(RECORD_KEEP_SECONDS), "schema_version": 1}

    def answer(self) -> dict[str, Any]:
        return {"status": self.status, "apply_id": self.apply_id, "enqueued_count": self.enqueued,
                "failed": self.failed, "removed_count": self.removed}


def _item_counts(items: list[PlannedItem], now: str) -> list[Change]:
    """One change per distinct video id (a playlist may hold an item twice): `queue_count` + its adds."""
    durations = {item.video_id: item.duration_seconds for item in items}

    def count(video_id: str, times: int) -> Change:
        return "analytics", f"items/{encode_segment(video_id)}", lambda old: {
            **item_zero(video_id), **(old or {}), "queue_count": (old or {}).get("queue_count", 0) + times,
            "last_queued_at": now, "duration_seconds": durations[video_id]}

    return [count(video_id, times) for video_id, times in Counter(item.video_id for item in items).items()]


def _totals(job: ApplyJob, now: str) -> list[Change]:
    """The global queued counts and the playlist's apply count, for one apply."""
    items = job.enqueued_items
    seconds = sum(item.duration_seconds or 0 for item in items)
    return [("analytics", GLOBAL_KEY, lambda old: {
                **GLOBAL_ZERO, **(old or {}), "updated_at": now,
                "items_queued": (old or {}).get("items_queued", 0) + len(items),
                "duration_queued_seconds": (old or {}).get("duration_queued_seconds", 0) + seconds}),
            ("analytics", f"playlists/{job.playlist_id}", lambda old: {
                "playlist_id": job.playlist_id, "apply_count": (old or {}).get("apply_count", 0) + 1,
                "last_applied_at": now, "schema_version": 1})]


class QueueApplier:
    def __init__(self, config: Config, kv: KvStore, leases: Leases, robot: RobotClient, playlists: PlaylistStore,
                 catalog: CatalogReader) -> None:
        self._config = config
        self._kv = kv
        self._leases = leases
        self._robot = robot
        self._playlists = playlists
        self._catalog = catalog

    # ---- entry points --------------------------------------------------------------

    def begin(self, playlist_id: str, mode: Any, user: User) -> ApplyJob:
        """Steps 1-4: everything that can refuse before the queue is touched."""
        if mode not in MODES:
            raise ValidationError({"mode": f"must be one of {', '.join(MODES)}"})
        action = "queue.hard_replace" if mode == "hard_replace" else "queue.apply"
        allowed_for_blessed = self._config.allow_hard_replace_for_blessed
        if not can(user.role, action, allowed_for_blessed):
            needed = required_role(action, allowed_for_blessed)
            raise ServiceError("forbidden", f"Applying with {mode} needs the {needed} role.", {"required_role": needed})
        document, _revision = self._playlists.get(playlist_id)
        lease = self._leases.acquire(f"queue_apply/{encode_segment(self._config.cytube_channel)}", LEASE_TTL_SECONDS)
        if lease is None:
            raise ServiceError("apply_in_progress", "Another queue apply is running for this channel.")
        try:
            queue = self._robot.state_playlist()
            job = self._plan(document, mode, user, lease, queue)
            self._save(job)
        except BaseException:
            self._release(lease)
            raise
        return job

    def run(self, job: ApplyJob) -> dict[str, Any]:
        """Steps 5-8; always ends with the record written (if NATS allows) and the lease released."""
        keeper = LeaseKeeper(self._leases, job.lease, LEASE_TTL_SECONDS, LEASE_RENEW_SECONDS)
        try:
            job.removed, queue_now = self._remove(job)
            self._add_all(job, Counter((item.get("media") or {}).get("id") for item in queue_now))
        except (NatsUnavailable, ServiceError) as exc:
            self._abort_rest(job, exc)
        finally:
            keeper.stop()
            job.status = _final_status(job)
            self._count_statistics(job)
            self._save(job)
            self._release(job.lease)
        return job.answer()

    def run_in_background(self, job: ApplyJob) -> None:
        threading.Thread(target=self.run, args=(job,), name=f"apply-{job.apply_id[:8]}", daemon=True).start()

    def status(self, apply_id: str) -> dict[str, Any]:
        entry = self._kv.get(RECORDS, f"applies/{apply_id}") if len(apply_id) == 32 and apply_id.isalnum() else None
        if entry is None:
            raise ServiceError("not_found", "No queue apply with this id.")
        record = entry.value
        return {key: record[key] for key in ("status", "done", "total", "enqueued_count", "failed", "removed_count")}

    # ---- steps --------------------------------------------------------------------------

    def _plan(self, document: dict[str, Any], mode: str, user: User, lease: Lease,
              queue: list[dict[str, Any]]) -> ApplyJob:
        ids = [item["video_id"] for item in document["items"]]
        live = self._catalog.items_if_built(ids)
        planned, failed = [], []
        for video_id in ids:
            item = live.get(video_id)
            if item is None:
                failed.append({"video_id": video_id, "reason": "not_in_catalog"})
            else:
                planned.append(PlannedItem(video_id, item["manifest_url"], item["duration_seconds"]))
        return ApplyJob(uuid.uuid4().hex, document["playlist_id"], document["name"], mode, user.username, lease,
                        queue, planned, failed, total=len(ids))

    def _remove(self, job: ApplyJob) -> tuple[int, list[dict[str, Any]]]:
        """Remove by mode; the count the robot's true queue confirms, and that queue."""
        uids = [item.get("uid") for item in job.queue_before]
        if job.mode == "append" or not uids:
            return 0, job.queue_before
        if job.mode == "hard_replace":
            targets = uids
            self._robot.command("clear", {})
        else:
            current = self._current_uid()
            targets = uids[uids.index(current) + 1:] if current in uids else uids
            for uid in targets:
                self._robot.command("rmvideo", {"uid": uid})
        queue = self._wait_until_gone(set(targets))
        return len(set(targets) - {item.get("uid") for item in queue}), queue

    def _wait_until_gone(self, uids: set[Any]) -> list[dict[str, Any]]:
        """The robot's true queue once it no longer holds `uids` (or when waiting is over)."""
        deadline = time.monotonic() + CONFIRM_SECONDS
        while True:
            queue = self._robot.state_playlist()
            if not uids & {item.get("uid") for item in queue} or time.monotonic() > deadline:
                return queue
            time.sleep(0.2)

    def _current_uid(self) -> Any:
        state = self._robot.queue_from_kv()
        current = state[1] if state else None
        return current.get("uid") if isinstance(current, dict) else None

    def _add_all(self, job: ApplyJob, in_queue: Counter[Any]) -> None:
        """`in_queue` counts each manifest URL in the queue, to tell an add that CyTube did not confirm."""
        pacer = AddPacer(self._config.queue_add_burst, self._config.queue_add_rate_per_second, time.monotonic())
        last_saved = time.monotonic()
        for item in job.planned:
            reason = self._add_one(item, pacer, in_queue)
            job.done += 1
            if reason is None:
                job.enqueued += 1
                job.enqueued_items.append(item)
            else:
                job.failed.append({"video_id": item.video_id, "reason": reason})
            if time.monotonic() - last_saved >= PROGRESS_EVERY_SECONDS:
                self._save(job)
                last_saved = time.monotonic()

    def _add_one(self, item: PlannedItem, pacer: AddPacer, in_queue: Counter[Any]) -> str | None:
        """Add one item; None when it is in the queue, else the failure reason. NATS loss propagates."""
        for attempt in range(TOO_QUICKLY_RETRIES):
            wait = pacer.wait_seconds(time.monotonic())
            if wait > 0:
                time.sleep(wait)
            pacer.spend(time.monotonic())
            try:
                data = self._robot.command("addvideo", {"type": "cm", "id": item.manifest_url, "pos": "end",
                                                        "temp": self._config.queue_temp},
                                           timeout=max(ADD_REPLY_SECONDS, self._config.robot_timeout_seconds))
            except ServiceError as exc:
                if exc.code != "robot_unavailable":
                    raise
                if exc.details.get("robot_error"):
                    return f"robot_error: {exc.details['robot_error']}"
                return self._reconcile(item, in_queue)
            if data.get("success") is True:
                if data.get("uid") is not None:
                    in_queue[item.manifest_url] += 1
                    return None
                # CyTube said nothing: the queue decides between added and timeout (nats.md).
                return self._reconcile(item, in_queue)
            error = str(data.get("error") or "refused")
            if TOO_QUICKLY not in error.lower():
                return f"rejected: {error}"
            # CyTube's bucket is emptier than ours thought: back off, doubling, before trying again.
            time.sleep(min(TOO_QUICKLY_PAUSE_MAX_SECONDS, 2 ** attempt / self._config.queue_add_rate_per_second))
        return "rejected: You are adding videos too quickly"

    def _reconcile(self, item: PlannedItem, in_queue: Counter[Any]) -> str | None:
        """An add without a uid: it counts as added when the queue holds one more of its URL than before."""
        now = sum((entry.get("media") or {}).get("id") == item.manifest_url for entry in self._robot.state_playlist())
        if now > in_queue[item.manifest_url]:
            in_queue[item.manifest_url] = now
            return None
        return "timeout"

    def _abort_rest(self, job: ApplyJob, exc: ServiceError) -> None:
        reason = f"aborted: {exc.code}" if exc.code in ("nats_unavailable", "robot_unavailable") \
            else f"robot_error: {exc.message}"
        log.warning("queue apply %s stopped after %d of %d items: %s", job.apply_id, job.done, len(job.planned),
                    exc.message)
        for item in job.planned[job.done:]:
            job.failed.append({"video_id": item.video_id, "reason": reason})
        job.done = len(job.planned)

    # ---- bookkeeping ------------------------------------------------------------------------

    def _save(self, job: ApplyJob) -> None:
        try:
            self._kv.put(RECORDS, f"applies/{job.apply_id}", job.record())
        except ServiceError as exc:
            log.warning("apply record %s not written: %s", job.apply_id, exc.message)

    def _release(self, lease: Lease) -> None:
        try:
            self._leases.release(lease)
        except ServiceError as exc:
            log.warning("queue lease not released (it expires by itself): %s", exc.message)

    def _count_statistics(self, job: ApplyJob) -> None:
        """Step 7: every count with compare-and-set, all keys at once (`update_many`); logged when NATS is gone."""
        if not job.enqueued_items:
            return
        now = iso(utcnow())
        changes = [*_item_counts(job.enqueued_items, now), *_totals(job, now)]
        try:
            self._kv.update_many(changes)
        except ServiceError as exc:
            log.warning("queue statistics of apply %s not counted: %s", job.apply_id, exc.message)


def _final_status(job: ApplyJob) -> str:
    if not job.failed:
        return "queued"
    return "partial" if job.enqueued else "failed"
