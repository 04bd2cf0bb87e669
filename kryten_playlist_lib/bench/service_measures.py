"""Measurements that need the running service: queue apply against the stand-in, likes."""

from __future__ import annotations

import dataclasses
import statistics
import threading
import time

from kryten_playlist_lib.bench import Figure
from kryten_playlist_lib.bench.environment import BenchEnvironment
from kryten_playlist_lib.domain.rbac import User
from kryten_playlist_lib.queue.apply import QueueApplier

BENCH_ADMIN = User("bench", "admin")
APPLY_RUNS = 9
LIKE_RUNS = 3


def _playlist(env: BenchEnvironment, name: str, count: int) -> str:
    ids = [item["video_id"] for item in env.service.catalog.search(None, limit=count).items]
    return env.service.playlists.create({"name": name, "items": [{"video_id": i} for i in ids]}, "bench")


def _applier(env: BenchEnvironment, burst: int, rate: float) -> QueueApplier:
    service = env.service
    config = dataclasses.replace(service.config, queue_add_burst=burst, queue_add_rate_per_second=rate)
    return QueueApplier(config, service.kv, service.leases, service.robot, service.playlists, service.catalog)


def _apply_seconds(env: BenchEnvironment, applier: QueueApplier, playlist_id: str) -> float:
    started = time.perf_counter()
    answer = applier.run(applier.begin(playlist_id, "append", BENCH_ADMIN))
    if answer["status"] != "queued":
        raise RuntimeError(f"the benchmark apply did not queue everything: {answer['failed'][:3]}")
    return time.perf_counter() - started


def _stand_in_own_seconds(env: BenchEnvironment, count: int) -> float:
    """The stand-in's own time for `count` adds: the same adds sent back to back by a bare client."""
    urls = [item["manifest_url"] for item in env.service.catalog.search(None, limit=count).items]
    started = time.perf_counter()
    for url in urls:
        env.service.robot.command("addvideo", {"type": "cm", "id": url, "pos": "end", "temp": True})
    return time.perf_counter() - started


def _apply_over_own(env: BenchEnvironment, applier: QueueApplier, playlist_id: str, items: int) -> float:
    """One apply and then the same adds by a bare client, each starting from an empty queue: the robot's work per
    add grows with the queue."""
    applied = _apply_seconds(env, applier, playlist_id)
    env.service.robot.command("clear", {})
    own = _stand_in_own_seconds(env, items)
    env.service.robot.command("clear", {})
    return applied / own


def queue_apply(env: BenchEnvironment, items: int, limited_items: int) -> list[Figure]:
    env.robot.rate_limit_enabled = False
    playlist_id = _playlist(env, "bench apply", items)
    applier = _applier(env, 1000, 1000.0)
    # operations.md: a median of several runs, each a ratio taken in the same run (on a busy machine one pair
    # alone swings by tens of percent).
    ratio = statistics.median(_apply_over_own(env, applier, playlist_id, items) for _ in range(APPLY_RUNS))
    figures = [Figure(f"queue apply of {items} items, rate limit off, over the stand-in's own", ratio, "x",
                      "<= 1.10", ratio <= 1.10)]
    env.robot.rate_limit_enabled = True
    time.sleep(env.robot.add_burst / env.robot.add_rate_per_second + 0.5)  # let the robot's bucket fill again
    seconds = _apply_seconds(env, _applier(env, 10, 2.0), _playlist(env, "bench limited", limited_items))
    ideal = (limited_items - 10) / 2.0
    figures.append(Figure(f"queue apply of {limited_items} items, rate limit on (ideal {ideal:.0f} s)", seconds, "s",
                          f"within 5% of {ideal:.1f} s", abs(seconds - ideal) <= 0.05 * ideal))
    return figures


def likes(env: BenchEnvironment, total: int, threads: int) -> list[Figure]:
    """`total` likes of the playing item from `threads` threads, each like by a different user; median of runs."""
    video_id = _play_first(env)
    outcomes = [_like_run(env, video_id, total // threads, threads, run) for run in range(LIKE_RUNS)]
    exact = all(counted for counted, _rate in outcomes)
    rate = statistics.median(rate for _counted, rate in outcomes)
    likes_per_run = total // threads * threads
    return [Figure(f"{likes_per_run} likes from {threads} threads, all counted ({LIKE_RUNS} runs)", float(exact), "",
                   "1 (all counted)", exact),
            Figure(f"{likes_per_run} likes from {threads} threads, rate", rate, "likes/s", ">= 300", rate >= 300)]


def _play_first(env: BenchEnvironment) -> str:
    """Play the queue's first item; its video id once the service has it as now playing."""
    env.robot.play(env.robot.queue_items()[0]["uid"])
    deadline = time.monotonic() + 10
    while (video_id := (env.service.plays.current() or {}).get("video_id")) is None:
        if time.monotonic() > deadline:
            raise RuntimeError("the played item never became now playing")
        time.sleep(0.05)
    return str(video_id)


def _like_run(env: BenchEnvironment, video_id: str, per_thread: int, threads: int, run: int) -> tuple[bool, float]:
    """One run with users never seen before: whether every like counted exactly once, and likes per second."""
    before = env.service.likes.count(video_id)
    counts: list[int] = []

    def like_as(thread: int) -> None:
        for n in range(per_thread):
            counts.append(env.service.likes.like_current(f"r{run}u{thread}x{n}")["like_count"])

    workers = [threading.Thread(target=like_as, args=(t,)) for t in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    rate = per_thread * threads / (time.perf_counter() - started)
    # Each like produced its own count, and the stored count rose by exactly the number of likes.
    expected = list(range(before + 1, before + per_thread * threads + 1))
    return sorted(counts) == expected and env.service.likes.count(video_id) == expected[-1], rate
