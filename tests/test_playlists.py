"""Playlists over HTTP against the real service and nats-server: CRUD, unique names, revisions, repair."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from kryten_playlist_lib.config import Config
from kryten_playlist_lib.playlists.store import INDEX_KEY
from kryten_playlist_lib.service import PlaylistService
from tests.conftest import start_service
from tests.helpers import http_json, wait_for
from tests.test_catalog_api import refresh_now, small_catalog


@pytest.fixture
def service_with_catalog(make_config: Callable[..., Config], tmp_path: Path) -> Iterator[PlaylistService]:
    """`disable_auth` makes every request the admin `local`; roles are walked in test_auth.py."""
    running = start_service(make_config(disable_auth=True, max_playlist_items=5))
    wait_for(lambda: running.ready)
    refresh_now(running, small_catalog(tmp_path / "c.jsonl"))
    yield running
    running.stop()


class Api:
    def __init__(self, service: PlaylistService) -> None:
        self.base = f"http://127.0.0.1:{service.http.port}/api/v1"
        self.headers: Message = Message()

    def __call__(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
                 ) -> tuple[int, Any]:
        status, self.headers, answer = http_json(method, self.base + path, body, headers)
        return status, answer

    def create(self, name: str, ids: list[str]) -> str:
        status, answer = self("POST", "/playlists", {"name": name, "items": [{"video_id": i} for i in ids]})
        assert status == 201, answer
        return answer["playlist_id"]


@pytest.fixture
def api(service_with_catalog: PlaylistService) -> Api:
    return Api(service_with_catalog)


def test_create_read_list_replace_delete(api: Api) -> None:
    playlist_id = api.create("  Friday Night  ", ["vid02", "gone1", "vid02"])
    status, document = api("GET", f"/playlists/{playlist_id}")
    assert status == 200 and api.headers["ETag"] == f'"{document["revision"]}"'
    assert document["name"] == "Friday Night" and document["created_by"] == "local"
    assert [(i["video_id"], i["title"], i["available"]) for i in document["items"]] == [
        ("vid02", "The Silk Road (1987)", True), ("gone1", None, False), ("vid02", "The Silk Road (1987)", True)]
    assert document["items"][0]["categories"] == ["Movies"] and document["items"][0]["duration_seconds"] == 100
    api.create("apple pie", ["vid01"])
    status, listing = api("GET", "/playlists")
    assert [p["name"] for p in listing["playlists"]] == ["apple pie", "Friday Night"]
    assert listing["playlists"][1] | {"playlist_id": playlist_id} == listing["playlists"][1]
    assert (listing["playlists"][1]["item_count"], listing["playlists"][1]["duration_seconds"]) == (3, 200)
    status, replaced = api("PUT", f"/playlists/{playlist_id}", {"name": "Saturday", "items": [{"video_id": "vid03"}]})
    assert status == 200 and replaced["revision"] > document["revision"] and replaced["name"] == "Saturday"
    assert api("DELETE", f"/playlists/{playlist_id}")[0] == 204
    assert api("GET", f"/playlists/{playlist_id}")[0] == 404
    assert [p["name"] for p in api("GET", "/playlists")[1]["playlists"]] == ["apple pie"]


def test_two_creators_of_one_name_one_wins(api: Api) -> None:
    answers: list[tuple[int, Any]] = []
    start = threading.Barrier(2)

    def create(name: str) -> None:
        start.wait()
        answers.append(api("POST", "/playlists", {"name": name, "items": []}))

    threads = [threading.Thread(target=create, args=(name,)) for name in ("Mix Tape", "mix tape")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(status for status, _ in answers) == [201, 409]
    assert [a["error"]["code"] for s, a in answers if s == 409] == ["name_taken"]
    assert len(api("GET", "/playlists")[1]["playlists"]) == 1


def test_a_rename_onto_a_taken_name_is_refused(api: Api) -> None:
    first = api.create("First", [])
    api.create("Second", [])
    status, answer = api("PUT", f"/playlists/{first}", {"name": "SECOND", "items": []})
    assert status == 409 and answer["error"]["code"] == "name_taken"
    assert api("GET", f"/playlists/{first}")[1]["name"] == "First"
    assert api("PUT", f"/playlists/{first}", {"name": "FIRST", "items": []})[0] == 200


def test_a_stale_if_match_is_a_conflict(api: Api) -> None:
    playlist_id = api.create("Edited", ["vid01"])
    revision = api("GET", f"/playlists/{playlist_id}")[1]["revision"]
    body = {"name": "Edited", "items": [{"video_id": "vid02"}]}
    assert api("PUT", f"/playlists/{playlist_id}", body, {"If-Match": f'"{revision}"'})[0] == 200
    status, answer = api("PUT", f"/playlists/{playlist_id}", body, {"If-Match": f'"{revision}"'})
    assert status == 409 and answer["error"]["code"] == "conflict"
    assert answer["error"]["details"]["current_revision"] > revision
    assert api("PUT", f"/playlists/{playlist_id}", body, {"If-Match": "yesterday"})[0] == 422


def race_update_and_delete(api: Api, playlist_id: str, name: str) -> None:
    start = threading.Barrier(2)

    def update() -> None:
        start.wait()
        for n in range(5):
            api("PUT", f"/playlists/{playlist_id}", {"name": f"{name} v{n}", "items": []})

    def delete() -> None:
        start.wait()
        api("DELETE", f"/playlists/{playlist_id}")

    threads = [threading.Thread(target=update), threading.Thread(target=delete)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)


def test_a_delete_racing_updates_leaves_a_consistent_index(api: Api, service_with_catalog: PlaylistService) -> None:
    for round_number in range(5):
        race_update_and_delete(api, api.create(f"Race {round_number}", ["vid01"]), f"Race {round_number}")
    kv = service_with_catalog.kv
    indexed = set(kv.get("playlists", INDEX_KEY).value["playlists"])
    stored = {key.rsplit("/", 1)[1] for key in kv.keys("playlists", "playlists/") if key != INDEX_KEY}
    assert indexed == stored == set()


@pytest.mark.parametrize(("body", "fields"), [
    ({"name": "   ", "items": []}, {"name"}),
    ({"name": "x" * 101, "items": []}, {"name"}),
    ({"name": "tab\there", "items": []}, {"name"}),
    ({"name": 7, "items": "no"}, {"name", "items"}),
    ({"name": "ok", "items": [{"video_id": "bad id"}, {"nope": 1}, "x"]},
     {"items.0.video_id", "items.1.video_id", "items.2.video_id"}),
    ({"name": "ok", "items": [{"video_id": "vid01"}] * 6}, {"items"}),
])
def test_bad_playlists_get_field_errors_and_change_nothing(api: Api, body: dict[str, Any], fields: set[str]) -> None:
    status, answer = api("POST", "/playlists", body)
    assert status == 422 and set(answer["error"]["details"]["fields"]) == fields
    assert api("GET", "/playlists")[1]["playlists"] == []


def test_unknown_and_malformed_ids_are_404(api: Api) -> None:
    for playlist_id in ["0" * 32, "..%2F..%2Fetc", "ZZZ"]:
        assert api("GET", f"/playlists/{playlist_id}")[0] == 404
        assert api("DELETE", f"/playlists/{playlist_id}")[0] == 404
        assert api("PUT", f"/playlists/{playlist_id}", {"name": "n", "items": []})[0] == 404


def test_saved_titles_survive_when_an_item_leaves_the_catalog(api: Api, service_with_catalog: PlaylistService,
                                                              tmp_path: Path) -> None:
    playlist_id = api.create("Keeps titles", ["vid01", "vid04"])
    only_two = tmp_path / "two.jsonl"
    lines = (tmp_path / "c.jsonl").read_text().splitlines()
    only_two.write_text("".join(line + "\n" for line in lines if '"vid01"' in line or '"vid02"' in line))
    service_with_catalog.refresh.run(service_with_catalog.refresh.begin("jsonl", str(only_two), force=True))
    api("PUT", f"/playlists/{playlist_id}", {"name": "Keeps titles", "items": [{"video_id": "vid04"}]})
    item = api("GET", f"/playlists/{playlist_id}")[1]["items"][0]
    assert (item["title"], item["available"]) == ("école des fans", False)


def test_repair_reindexes_orphans_and_drops_dangling_entries(api: Api, service_with_catalog: PlaylistService) -> None:
    kept = api.create("Kept", ["vid01"])
    store, kv = service_with_catalog.playlists, service_with_catalog.kv
    orphan = dict(store.get(kept)[0], playlist_id="a" * 32, name="kept")
    kv.put("playlists", f"playlists/{'a' * 32}", orphan)
    kv.update("playlists", INDEX_KEY, lambda index: {**index, "playlists": {
        **index["playlists"], "b" * 32: {"name": "Ghost", "created_by": "x", "created_at": "", "updated_at": "",
                                         "item_count": 0, "duration_seconds": 0}}})
    assert store.repair() == {"reindexed": 1, "dropped": 1}
    names = sorted(p["name"] for p in api("GET", "/playlists")[1]["playlists"])
    assert names == ["Kept", "kept (2)"]
    assert api("GET", f"/playlists/{'a' * 32}")[1]["name"] == "kept (2)"
    assert store.repair() == {"reindexed": 0, "dropped": 0}
