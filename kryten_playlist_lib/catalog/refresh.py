"""The catalog refresh of behaviour.md section 7, as one job with a fixed order of steps.

lease → read → clean → build file → shrink guard → upload → KV `snapshots/{id}`
→ swap the `sqlite_path` link → CAS `current` → prune old snapshots.

Until `current` has moved, any failure undoes what was done (a moved link is
moved back, the new file, object and document are removed), so readers and
other replicas keep the old snapshot. One refresh runs at a time per
namespace: the `catalog_refresh` lease, renewed while the job runs.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kryten_playlist_lib.bus.kv import KvStore
from kryten_playlist_lib.bus.leases import Lease, LeaseKeeper, Leases
from kryten_playlist_lib.bus.objects import SnapshotObjects
from kryten_playlist_lib.catalog.child_build import BuildOutcome, BuildRequest, build_snapshot_file, child_command
from kryten_playlist_lib.catalog.store import prune_snapshot_files, replace_link, snapshot_path
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.errors import ServiceError
from kryten_playlist_lib.timeutil import iso, iso_in, utcnow

log = logging.getLogger("kryten_playlist.refresh")

BUCKET = "snapshot"
LEASE_NAME = "catalog_refresh"
LEASE_TTL_SECONDS = 60.0
LEASE_RENEW_SECONDS = 20.0
JOB_KEEP_SECONDS = 7 * 86400
JOB_PROGRESS_EVERY_SECONDS = 2.0

Progress = Callable[[int], None]


class RefreshFailed(Exception):
    """The refresh did not complete; the message says why, and nothing was changed."""


def new_snapshot_id() -> str:
    return utcnow().strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)


@dataclass
class RefreshJob:
    job_id: str
    connector: str
    source: str | None
    force: bool
    lease: Lease
    started_at: str = field(default_factory=lambda: iso(utcnow()))
    items_seen: int = 0
    snapshot_id: str | None = None

    def document(self, status: str, error: str | None = None) -> dict[str, Any]:
        finished = None if status == "running" else iso(utcnow())
        return {"job_id": self.job_id, "status": status, "items_seen": self.items_seen,
                "snapshot_id": self.snapshot_id if status == "ok" else None, "error": error,
                "started_at": self.started_at, "finished_at": finished,
                "expires_at": iso_in(JOB_KEEP_SECONDS), "schema_version": 1}


@dataclass
class RefreshResult:
    job_id: str
    snapshot_id: str
    item_count: int
    skipped: dict[str, int]


class CatalogRefresh:
    def __init__(self, config: Config, kv: KvStore, leases: Leases, objects: SnapshotObjects) -> None:
        self._config = config
        self._kv = kv
        self._leases = leases
        self._objects = objects
        self._running = threading.Event()

    @property
    def in_progress(self) -> bool:
        """A refresh of this process is between its start and its end (the follower then keeps off the link)."""
        return self._running.is_set()

    # ---- entry points --------------------------------------------------------

    def begin(self, connector: str | None = None, source: str | None = None, force: bool = False) -> RefreshJob:
        """Take the lease and record the job; 409 `refresh_in_progress` while another runs."""
        lease = self._leases.acquire(LEASE_NAME, LEASE_TTL_SECONDS)
        if lease is None:
            raise ServiceError("refresh_in_progress", "A catalog refresh is already running.")
        job = RefreshJob(uuid.uuid4().hex, connector or self._config.catalog_connector, source, force, lease)
        self._kv.put(BUCKET, f"refresh_jobs/{job.job_id}", job.document("running"))
        return job

    def run(self, job: RefreshJob, on_progress: Progress | None = None) -> RefreshResult:
        """Do the job to the end; raises RefreshFailed (or NatsUnavailable) with nothing changed."""
        keeper = LeaseKeeper(self._leases, job.lease, LEASE_TTL_SECONDS, LEASE_RENEW_SECONDS)
        self._running.set()  # one refresh per namespace (the lease), so a flag is enough
        try:
            result = self._run_steps(job, keeper, on_progress)
        except Exception as exc:
            message = str(exc) if isinstance(exc, RefreshFailed) else _describe(exc)
            log.error("catalog refresh %s failed: %s", job.job_id, message)
            self._record(job, "error", message)
            raise RefreshFailed(message) from exc
        finally:
            self._running.clear()
            keeper.stop()
            self._release(job.lease)
        self._record(job, "ok")
        return result

    def start_in_background(self, connector: str | None = None, source: str | None = None,
                            force: bool = False) -> str:
        """`begin` here (so a 409 is immediate), the rest on a thread of its own; the job id."""
        job = self.begin(connector, source, force)

        def work() -> None:
            try:
                self.run(job)
            except (RefreshFailed, ServiceError):
                pass  # recorded in the job document by run()

        threading.Thread(target=work, name=f"refresh-{job.job_id[:8]}", daemon=True).start()
        return job.job_id

    def job_status(self, job_id: str) -> dict[str, Any]:
        entry = self._kv.get(BUCKET, f"refresh_jobs/{job_id}") if re.fullmatch(r"[0-9a-f]{32}", job_id) else None
        if entry is None:
            raise ServiceError("not_found", "No refresh job with this id.")
        doc = entry.value
        return {key: doc.get(key) for key in ("job_id", "status", "items_seen", "snapshot_id", "error",
                                               "started_at", "finished_at")}

    # ---- the steps -------------------------------------------------------------

    def _run_steps(self, job: RefreshJob, keeper: LeaseKeeper, on_progress: Progress | None) -> RefreshResult:
        current = self._kv.get(BUCKET, "current")
        job.snapshot_id = new_snapshot_id()
        path = snapshot_path(self._config.sqlite_path, job.snapshot_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        built = self._build(job, path, self._progress(job, on_progress))
        count = built.item_count
        try:
            self._check_shrink(count, current.value if current else None, job.force)
            document = {"snapshot_id": job.snapshot_id, "source": job.connector, "created_at": iso(utcnow()),
                        "item_count": count, "notes": _notes(built.skipped), "schema_version": 1}
            self._publish(job.snapshot_id, path, document)
            if keeper.lost:
                raise RefreshFailed("the refresh lease was lost to another replica; nothing was changed")
            self._go_live(path, document, current.revision if current else 0)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        self._prune(job.snapshot_id)
        return RefreshResult(job.job_id, job.snapshot_id, count, built.skipped)

    def _build(self, job: RefreshJob, path: Path, progress: Progress) -> BuildOutcome:
        """Read, clean and write the snapshot file, in a child process so searches keep their speed."""
        assert job.snapshot_id is not None
        request = BuildRequest(
            path=str(path), snapshot_id=job.snapshot_id, created_at=iso(utcnow()), connector=job.connector,
            connector_source=job.source, manifest_url_template=self._config.manifest_url_template,
            mediacms_base_url=self._config.mediacms_base_url, mediacms_token=self._config.mediacms_token)
        return build_snapshot_file(request, progress, self.build_command())

    def build_command(self) -> list[str] | None:
        """The child process that builds the file; None builds in this process (a method, for tests)."""
        return child_command()

    def _progress(self, job: RefreshJob, on_progress: Progress | None) -> Progress:
        last_write = time.monotonic()

        def report(items_seen: int) -> None:
            nonlocal last_write
            job.items_seen = items_seen
            if on_progress is not None:
                on_progress(items_seen)
            if time.monotonic() - last_write >= JOB_PROGRESS_EVERY_SECONDS:
                last_write = time.monotonic()
                self._record(job, "running")

        return report

    def _check_shrink(self, count: int, current: dict[str, Any] | None, force: bool) -> None:
        """A broken source must not wipe the catalog: refuse an empty or much smaller one."""
        if force:
            return
        if count == 0:
            raise RefreshFailed("the source yielded no usable items; nothing was changed (use --force to allow)")
        previous = int(current.get("item_count") or 0) if current else 0
        if count < self._config.refresh_min_ratio * previous:
            raise RefreshFailed(f"the source yielded {count} items, fewer than {self._config.refresh_min_ratio:g}"
                                f" of the current {previous}; nothing was changed (use --force to allow)")

    def _publish(self, snapshot_id: str, path: Path, document: dict[str, Any]) -> None:
        """Upload the file and write `snapshots/{id}`; undone if either fails."""
        try:
            self._objects.upload(snapshot_id, path)
            self._kv.put(BUCKET, f"snapshots/{snapshot_id}", document)
        except BaseException:
            self._forget(snapshot_id)
            raise

    def _go_live(self, path: Path, document: dict[str, Any], current_revision: int) -> None:
        """Swap the link, then move `current`; if `current` cannot move, the link goes back."""
        link = Path(self._config.sqlite_path)
        previous = os.readlink(link) if link.is_symlink() else None
        try:
            self.swap_link(link, path.name)
            if self._kv.compare_and_set(BUCKET, "current", document, current_revision) is None:
                raise RefreshFailed("the current snapshot moved while this refresh ran; nothing was changed")
        except BaseException:
            if previous is not None:
                self.swap_link(link, previous)
            else:
                link.unlink(missing_ok=True)
            self._forget(document["snapshot_id"])
            raise

    @staticmethod
    def swap_link(link: Path, target: str) -> None:
        """Point `link` at `target` atomically (a method, so tests can make the swap fail)."""
        replace_link(link, target)

    def _forget(self, snapshot_id: str) -> None:
        """Best-effort removal of a snapshot's object and document (the undo of `_publish`)."""
        for undo in (lambda: self._objects.delete(snapshot_id),
                     lambda: self._kv.delete(BUCKET, f"snapshots/{snapshot_id}")):
            try:
                undo()
            except Exception as exc:
                log.warning("could not remove the leftovers of snapshot %s: %s", snapshot_id, _describe(exc))

    def _prune(self, live_id: str) -> None:
        """Keep the newest `keep_snapshots` snapshots (the live one always): files, objects, documents.

        Newest by the documents' `created_at`: ids only have whole seconds, and
        their random tail would misorder two refreshes within one second.
        """
        try:
            documents = [entry.value for key in self._kv.keys(BUCKET, "snapshots/")
                         if (entry := self._kv.get(BUCKET, key)) is not None]
            newest = sorted(documents, key=lambda doc: str(doc.get("created_at")))[-self._config.keep_snapshots:]
            keep = {str(doc.get("snapshot_id")) for doc in newest} | {live_id}
            for snapshot_id in {str(doc.get("snapshot_id")) for doc in documents} - keep:
                self._forget(snapshot_id)
            for snapshot_id in set(self._objects.snapshot_ids()) - keep:
                self._objects.delete(snapshot_id)
        except Exception as exc:
            log.warning("old snapshots were not pruned: %s", _describe(exc))
            return
        prune_snapshot_files(Path(self._config.sqlite_path).parent, keep)

    # ---- bookkeeping -------------------------------------------------------------

    def _record(self, job: RefreshJob, status: str, error: str | None = None) -> None:
        try:
            self._kv.put(BUCKET, f"refresh_jobs/{job.job_id}", job.document(status, error))
        except Exception as exc:
            log.warning("refresh job %s status not recorded: %s", job.job_id, _describe(exc))

    def _release(self, lease: Lease) -> None:
        try:
            self._leases.release(lease)
        except Exception as exc:
            log.warning("refresh lease not released (it expires by itself): %s", _describe(exc))


def _describe(exc: BaseException) -> str:
    return exc.message if isinstance(exc, ServiceError) else (str(exc) or type(exc).__name__)


def _notes(skipped: dict[str, int]) -> str:
    parts = [f"{count} {reason.replace('_', ' ')}" for reason, count in skipped.items() if count]
    return "skipped: " + ", ".join(parts) if parts else ""
