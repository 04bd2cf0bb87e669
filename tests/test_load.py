"""Load: many signed-in clients searching, reading, editing and liking at once against one service.

Modest numbers so CI can run it (KRYTEN_PLAYLIST_LOAD_SECONDS raises the duration):
no 5xx, no lost edit, like counts exact.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest

from kryten_playlist_lib.config import Config
from kryten_playlist_lib.standin.robot import RobotStandIn
from tests.conftest import start_service
from tests.helpers import wait_for
from tests.robot_fixtures import robot  # noqa: F401  (the fixture)
from tests.test_auth import Client, sign_in, users
from tests.test_catalog_refresh import write_jsonl

CLIENTS = 32
SECONDS = float(os.environ.get("KRYTEN_PLAYLIST_LOAD_SECONDS", "30"))
WORDS = ["title", "LOAD", "1", "2 3", "load title 7", "zz"]


class Worker:
    """One person: searches, reads, edits their own playlist, likes what plays."""

    def __init__(self, client: Client, playlist_id: str, seed: int) -> None:
        self.client = client
        self.playlist_id = playlist_id
        self.rng = random.Random(seed)
        self.statuses: Counter[int] = Counter()
        self.last_saved: list[str] | None = None
        self.likes_ok = 0

    def step(self) -> None:
        action = self.rng.choice(["search", "search", "list", "read", "edit", "like"])
        if action == "search":
            status, _ = self.client.call("GET", f"/api/v1/catalog/search?q={quote(self.rng.choice(WORDS))}&limit=20")
        elif action == "list":
            status, _ = self.client.call("GET", "/api/v1/playlists")
        elif action == "read":
            status, _ = self.client.call("GET", f"/api/v1/playlists/{self.playlist_id}")
        elif action == "edit":
            ids = [f"LOAD{self.rng.randrange(200):05d}" for _ in range(self.rng.randrange(1, 8))]
            body = {"name": f"mine {self.playlist_id[:6]}", "items": [{"video_id": i} for i in ids]}
            status, _ = self.client.call("PUT", f"/api/v1/playlists/{self.playlist_id}", body)
            if status == 200:
                self.last_saved = ids
        else:
            status, answer = self.client.call("POST", "/api/v1/likes/current", {})
            self.likes_ok += status == 200 and answer["status"] == "ok"
        self.statuses[status] += 1


@pytest.mark.load
def test_many_clients_at_once_lose_nothing(make_config: Callable[..., Config], config: Config,
                                           robot: RobotStandIn, tmp_path: Path) -> None:  # noqa: F811
    names = [f"load{n}" for n in range(CLIENTS)]
    robot.set_users(users(*names))
    service = start_service(make_config(
        namespace=config.namespace, blessed_users=names, otp_request_per_ip=1000, otp_verify_per_ip=1000,
        like_per_user=100_000, like_dedupe_window_seconds=0, http_threads=32))
    try:
        wait_for(lambda: service.ready)
        service.refresh.run(service.refresh.begin("jsonl", str(write_jsonl(tmp_path / "c.jsonl", 200, "LOAD"))))
        uid = robot.enqueue(service.config.manifest_url_template.format(video_id="LOAD00001"))
        robot.play(uid)
        wait_for(lambda: (service.plays.current() or {}).get("video_id") == "LOAD00001", what="now playing")
        workers = []
        for n, name in enumerate(names):
            client = sign_in(service, robot, name)
            status, created = client.call("POST", "/api/v1/playlists", {"name": f"seed {n}", "items": []})
            assert status == 201
            workers.append(Worker(client, created["playlist_id"], seed=n))
        deadline = time.monotonic() + SECONDS

        def run(worker: Worker) -> None:
            while time.monotonic() < deadline:
                worker.step()

        threads = [threading.Thread(target=run, args=(worker,)) for worker in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(SECONDS + 60)
        statuses = sum((worker.statuses for worker in workers), Counter())
        assert not [status for status in statuses if status >= 500], statuses
        assert sum(statuses.values()) > CLIENTS * 10, "the load was too light to mean anything"
        for worker in workers:
            if worker.last_saved is not None:
                stored = service.playlists.get(worker.playlist_id)[0]
                assert [item["video_id"] for item in stored["items"]] == worker.last_saved
        assert service.likes.count("LOAD00001") == sum(worker.likes_ok for worker in workers)
    finally:
        service.stop()
