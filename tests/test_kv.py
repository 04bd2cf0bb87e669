"""The KV layer against a real nats-server: bootstrap, namespacing, CAS, leases, janitor."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator

import nats
import pytest
from nats.js.api import KeyValueConfig

from kryten_playlist_lib.bus.bridge import NatsBridge
from kryten_playlist_lib.bus.janitor import Janitor
from kryten_playlist_lib.bus.keys import encode_segment
from kryten_playlist_lib.bus.kv import BUCKETS, KvStore
from kryten_playlist_lib.bus.kv_combined import CombinedUpdates
from kryten_playlist_lib.bus.leases import Leases
from kryten_playlist_lib.bus.natsserver import NatsServerProcess
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.errors import ServiceError
from kryten_playlist_lib.timeutil import iso_in
from tests.helpers import wait_for


def ready_store(bridge: NatsBridge, namespace: str) -> KvStore:
    store = KvStore(bridge, namespace)
    bridge.run(store.bootstrap)
    return store


@pytest.fixture
def kv(bridge: NatsBridge, config: Config) -> KvStore:
    return ready_store(bridge, config.namespace)


def bucket_info(url: str, bucket: str) -> dict[str, object]:
    async def read() -> dict[str, object]:
        nc = await nats.connect(url)
        try:
            info = await nc.jetstream().stream_info(f"KV_{bucket}")
            return {"history": info.config.max_msgs_per_subject, "max_value": info.config.max_msg_size,
                    "storage": str(getattr(info.config.storage, "value", info.config.storage))}
        finally:
            await nc.close()

    return asyncio.run(read())


def test_bootstrap_creates_every_bucket_as_storage_md_says(kv: KvStore, nats_server: NatsServerProcess) -> None:
    assert kv.ready
    for bucket in BUCKETS.values():
        assert bucket_info(nats_server.url, bucket) == {"history": 5, "max_value": 1024 * 1024, "storage": "file"}


def test_bootstrap_never_reconfigures_an_existing_bucket(own_nats_server: NatsServerProcess,
                                                         make_config: Callable[..., Config]) -> None:
    async def make_small_bucket() -> None:
        nc = await nats.connect(own_nats_server.url)
        await nc.jetstream().create_key_value(KeyValueConfig(bucket="kryten_playlist_acl", history=2))
        await nc.close()

    asyncio.run(make_small_bucket())
    bridge = NatsBridge(make_config(nats_url=own_nats_server.url))
    bridge.start()
    try:
        wait_for(lambda: bridge.connected)
        store = ready_store(bridge, "default")
        store.put("acl", "admins", ["alice"])
        assert bucket_info(own_nats_server.url, "kryten_playlist_acl")["history"] == 2
        assert store.get("acl", "admins").value == ["alice"]
    finally:
        bridge.stop()


def test_values_round_trip_as_json_with_revisions(kv: KvStore) -> None:
    first = kv.put("acl", "blessed", ["bob", "Ünïcødé"])
    entry = kv.get("acl", "blessed")
    assert entry is not None and entry.value == ["bob", "Ünïcødé"] and entry.revision == first
    assert kv.put("acl", "blessed", []) > first
    assert kv.get("acl", "missing") is None


def test_namespaces_do_not_see_each_other(bridge: NatsBridge) -> None:
    ours, theirs = ready_store(bridge, "nsa"), ready_store(bridge, "nsb")
    ours.put("auth", "session/x", {"username": "alice"})
    assert theirs.get("auth", "session/x") is None
    assert "session/x" in ours.keys("auth")
    assert "session/x" not in theirs.keys("auth")


def test_keys_filters_by_prefix_and_handles_encoded_segments(kv: KvStore) -> None:
    for ip in ["127.0.0.1", "::1"]:
        kv.put("auth", f"ipblock/{encode_segment(ip)}", {"reason": "admin_action"})
    kv.put("auth", "session/abc", {})
    assert sorted(kv.keys("auth", "ipblock/")) == ["ipblock/127.0.0.1", "ipblock/=Ojox"]
    assert kv.keys("likes") == []


def test_keys_lists_every_held_key_at_once_and_none_deleted(kv: KvStore) -> None:
    for n in range(300):
        kv.put("analytics", f"items/v{n:03d}", {"n": n})
    for n in range(0, 300, 3):
        kv.delete("analytics", f"items/v{n:03d}")
    expected = [f"items/v{n:03d}" for n in range(300) if n % 3]
    for _ in range(5):  # a listing that starts while writes are still landing must not come back short
        assert kv.keys("analytics", "items/") == expected


def test_create_lets_exactly_one_creator_win(kv: KvStore) -> None:
    assert kv.create("locks", "thing", {"owner": "a"}) is not None
    assert kv.create("locks", "thing", {"owner": "b"}) is None
    assert kv.get("locks", "thing").value == {"owner": "a"}


def test_create_takes_over_an_expired_value_and_a_deleted_key(kv: KvStore) -> None:
    kv.put("auth", "gone", {"expires_at": iso_in(-1)})
    assert kv.get("auth", "gone") is None
    assert kv.get_raw("auth", "gone") is not None
    assert kv.create("auth", "gone", {"fresh": True}) is not None
    kv.delete("auth", "gone")
    assert kv.create("auth", "gone", {"again": True}) is not None
    assert kv.get("auth", "gone").value == {"again": True}


def test_compare_and_set_and_checked_delete_refuse_a_stale_revision(kv: KvStore) -> None:
    first = kv.put("playlists", "doc", {"v": 1})
    second = kv.compare_and_set("playlists", "doc", {"v": 2}, first)
    assert second is not None
    assert kv.compare_and_set("playlists", "doc", {"v": 3}, first) is None
    assert kv.delete("playlists", "doc", revision=first) is False
    assert kv.get("playlists", "doc").value == {"v": 2}
    assert kv.delete("playlists", "doc", revision=second) is True
    assert kv.get("playlists", "doc") is None


def test_update_sees_expired_values_as_absent(kv: KvStore) -> None:
    kv.put("auth", "ratelimit/x/y", {"count": 9, "expires_at": iso_in(-5)})
    entry = kv.update("auth", "ratelimit/x/y", lambda old: {"count": (old or {}).get("count", 0) + 1})
    assert entry.value == {"count": 1}


def test_update_can_be_aborted_by_raising(kv: KvStore) -> None:
    kv.put("analytics", "counters/global", {"n": 1})

    def refuse(_old: object) -> object:
        raise ServiceError("conflict", "no")

    with pytest.raises(ServiceError):
        kv.update("analytics", "counters/global", refuse)
    assert kv.get("analytics", "counters/global").value == {"n": 1}


def test_fifty_threads_of_twenty_cas_increments_count_exactly_1000(kv: KvStore) -> None:
    failures: list[BaseException] = []
    start = threading.Barrier(50)

    def increment_twenty() -> None:
        start.wait()
        for _ in range(20):
            try:
                kv.update("analytics", "counters/contended", lambda old: {"n": (old or {"n": 0})["n"] + 1})
            except BaseException as exc:  # noqa: BLE001  (every failure must be seen by the test)
                failures.append(exc)

    threads = [threading.Thread(target=increment_twenty) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []
    assert kv.get("analytics", "counters/contended").value == {"n": 1000}


def plus_one(old: object) -> dict[str, int]:
    return {"n": (old if isinstance(old, dict) else {"n": 0})["n"] + 1}


def run_together(targets: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)


def test_update_many_treats_absent_expired_and_deleted_keys_alike(kv: KvStore) -> None:
    kv.put("analytics", "items/kept", {"n": 4})
    kv.put("analytics", "items/expired", {"n": 9, "expires_at": iso_in(-5)})
    kv.put("analytics", "items/deleted", {"n": 7})
    kv.delete("analytics", "items/deleted")
    keys = ["items/kept", "items/expired", "items/deleted", "items/new"]
    entries = kv.update_many([("analytics", key, plus_one) for key in keys])
    assert [entry.value for entry in entries] == [{"n": 5}, {"n": 1}, {"n": 1}, {"n": 1}]
    assert [kv.get_raw("analytics", key).revision for key in keys] == [entry.revision for entry in entries]


def test_update_many_writes_every_other_key_before_raising_the_first_error(kv: KvStore) -> None:
    kv.put("analytics", "items/a", {"n": 1})

    def refuse(_old: object) -> object:
        raise ServiceError("conflict", "no")

    with pytest.raises(ServiceError) as raised:
        kv.update_many([("analytics", "items/a", refuse), ("analytics", "items/b", plus_one)])
    assert raised.value.code == "conflict"
    assert kv.get("analytics", "items/a").value == {"n": 1}
    assert kv.get("analytics", "items/b").value == {"n": 1}


def test_update_many_racing_fifty_writers_loses_no_increment(kv: KvStore) -> None:
    keys = [f"items/race{n}" for n in range(20)]
    start = threading.Barrier(50)

    def one_update_per_key() -> None:
        start.wait()
        for key in keys:
            kv.update("analytics", key, plus_one)

    def five_batches() -> None:
        start.wait()
        for _ in range(5):
            kv.update_many([("analytics", key, plus_one) for key in keys])

    run_together([one_update_per_key] * 40 + [five_batches] * 10)
    assert [kv.get("analytics", key).value for key in keys] == [{"n": 40 + 50}] * len(keys)


def test_combined_updates_give_each_caller_its_own_count_and_lose_nothing(kv: KvStore) -> None:
    combined = CombinedUpdates(kv)
    counts: list[int] = []
    start = threading.Barrier(60)

    def twenty_combined() -> None:
        start.wait()
        for _ in range(20):
            counts.append(combined.update("likes", "items/hot/likes", plus_one).value["n"])

    def twenty_alone() -> None:  # another replica's writes: plain compare-and-set on the same key
        start.wait()
        for _ in range(20):
            kv.update("likes", "items/hot/likes", plus_one)

    run_together([twenty_combined] * 50 + [twenty_alone] * 10)
    assert kv.get("likes", "items/hot/likes").value == {"n": 1200}
    assert len(counts) == len(set(counts)) == 1000


def test_a_combined_change_that_raises_fails_alone(kv: KvStore) -> None:
    combined = CombinedUpdates(kv)
    outcomes: list[str] = []
    start = threading.Barrier(20)

    def refuse(_old: object) -> object:
        raise ServiceError("conflict", "no")

    def caller(refuses: bool) -> Callable[[], None]:
        def call() -> None:
            start.wait()
            try:
                combined.update("likes", "items/some/likes", refuse if refuses else plus_one)
                outcomes.append("counted")
            except ServiceError as exc:
                outcomes.append(exc.code)
        return call

    run_together([caller(n % 4 == 0) for n in range(20)])
    assert sorted(outcomes) == ["conflict"] * 5 + ["counted"] * 15
    assert kv.get("likes", "items/some/likes").value == {"n": 15}


@pytest.fixture
def two_replicas(bridge: NatsBridge, config: Config) -> Iterator[tuple[Leases, Leases]]:
    store = ready_store(bridge, config.namespace)
    yield Leases(store, "replica-1"), Leases(store, "replica-2")


def test_a_lease_has_one_holder_until_it_is_released(two_replicas: tuple[Leases, Leases]) -> None:
    first, second = two_replicas
    lease = first.acquire("queue_apply/lounge", 30)
    assert lease is not None and lease.owner == "replica-1"
    assert second.acquire("queue_apply/lounge", 30) is None
    assert first.renew(lease, 30)
    assert first.release(lease)
    assert second.acquire("queue_apply/lounge", 30) is not None


def test_an_expired_lease_is_taken_over_and_its_old_holder_cannot_renew(two_replicas: tuple[Leases, Leases]) -> None:
    first, second = two_replicas
    stale = first.acquire("catalog_refresh", 0.05)
    assert stale is not None
    taken = wait_for(lambda: second.acquire("catalog_refresh", 30), what="takeover after expiry")
    assert taken.owner == "replica-2"
    assert first.renew(stale, 30) is False
    assert first.release(stale) is False
    assert second.acquire("catalog_refresh", 30) is None


def test_the_janitor_deletes_expired_values_once_per_interval(bridge: NatsBridge, config: Config) -> None:
    store = ready_store(bridge, config.namespace)
    store.put("auth", "session/old", {"expires_at": iso_in(-1)})
    store.put("auth", "session/live", {"expires_at": iso_in(3600)})
    store.put("acl", "admins", ["alice"])
    first = Janitor(store, Leases(store, "replica-1"), interval_seconds=60)
    second = Janitor(store, Leases(store, "replica-2"), interval_seconds=60)
    assert first.sweep() == 1
    assert second.sweep() is None
    assert store.get_raw("auth", "session/old") is None
    assert store.get("auth", "session/live") is not None
    assert store.get("acl", "admins").value == ["alice"]
