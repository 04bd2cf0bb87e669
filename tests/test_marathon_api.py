"""POST /api/v1/marathons/preview against the real service: sources, methods, errors, saving the result."""

from __future__ import annotations

from typing import Any

from kryten_playlist_lib.service import PlaylistService
from tests.test_playlists import Api, api, service_with_catalog  # noqa: F401  (fixtures)


def preview(api: Api, **body: Any) -> tuple[int, Any]:  # noqa: F811
    return api("POST", "/marathons/preview", body)


def test_interleave_a_playlist_with_a_category_and_save_it(api: Api) -> None:  # noqa: F811
    playlist_id = api.create("Shows", ["vid01", "gone7"])
    status, result = preview(api, sources=[{"type": "playlist", "playlist_id": playlist_id},
                                           {"type": "category", "category": "Movies"}],
                             method="interleave", interleave_pattern="a1 b2")
    assert status == 200, result
    assert [(i["video_id"], i["source"]) for i in result["items"]] == [
        ("vid01", "A"), ("vid03", "B"), ("vid02", "B"), ("gone7", "A")]
    assert result["items"][0]["season"] == 2 and result["items"][0]["episode"] == 6
    assert result["seed"] is None and result["total_duration_seconds"] == 300
    assert any("not in the current catalog" in warning for warning in result["warnings"])
    saved = api.create("Shows marathon", [item["video_id"] for item in result["items"]])
    assert api("GET", f"/playlists/{saved}")[1]["name"] == "Shows marathon"


def test_shuffle_echoes_or_makes_a_seed_and_repeats_with_it(api: Api) -> None:  # noqa: F811
    sources = [{"type": "category", "category": "Movies"}, {"type": "category", "category": "TV"}]
    first = preview(api, sources=sources, method="shuffle")[1]
    assert len(first["seed"]) == 16
    again = preview(api, sources=sources, method="shuffle", shuffle_seed=first["seed"])[1]
    assert again["items"] == first["items"]
    assert preview(api, sources=sources, method="shuffle", shuffle_seed=42)[1]["seed"] == "42"


def test_a_bad_pattern_says_where_and_shows_examples(api: Api) -> None:  # noqa: F811
    status, answer = preview(api, sources=[{"type": "category", "category": "TV"}], method="interleave",
                             interleave_pattern="A2 C1")
    assert status == 422 and answer["error"]["code"] == "invalid_pattern"
    assert answer["error"]["details"]["position"] == 3 and answer["error"]["details"]["examples"]


def test_bad_sources_and_unknown_playlists(api: Api, service_with_catalog: PlaylistService) -> None:  # noqa: F811
    assert preview(api, sources=[])[0] == 422
    assert preview(api, sources=[{"type": "category"}] * 27)[0] == 422
    status, answer = preview(api, sources=[{"type": "album"}])
    assert status == 422 and "sources.0.type" in answer["error"]["details"]["fields"]
    assert preview(api, sources=[{"type": "playlist", "playlist_id": "f" * 32}])[0] == 404
    assert preview(api, sources=[{"type": "category", "category": "TV"}], method="zigzag")[0] == 422


def test_a_time_budget_cuts_the_order(api: Api) -> None:  # noqa: F811
    status, result = preview(api, sources=[{"type": "category", "category": "Movies"}], max_duration_seconds=150)
    assert status == 200 and len(result["items"]) == 1
    assert any("left out to fit" in warning for warning in result["warnings"])
