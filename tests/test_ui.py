"""The web pages of ui.md end to end: a real headless Chromium (Debian's, through Playwright) against the
real service, a real nats-server and the robot stand-in. Few tests, each walking a whole task."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kryten_playlist_lib.config import Config
from kryten_playlist_lib.service import PlaylistService
from kryten_playlist_lib.standin.robot import RobotStandIn
from tests.conftest import start_service
from tests.helpers import http_json, wait_for
from tests.robot_fixtures import robot  # noqa: F401  (the fixture)
from tests.test_auth import code_sent_to, users
from tests.test_catalog_api import refresh_now

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the test extra's playwright is not installed")
expect = sync_api.expect

LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 10_000
CATALOG = [
    ("show01", "Moon Patrol S01E01 Pilot", ["TV"], 1200),
    ("show02", "Moon Patrol S01E02 Orbit", ["TV"], 1300),
    ("show03", "Moon Patrol S01E03 Landing", ["TV"], 1400),
    ("film01", "Alpha Film", ["Movies"], 5400),
    ("film02", "Beta Film", ["Movies"], 6000),
    ("film03", "Gamma Film", ["Movies"], 4800),
]


def write_catalog(path: Path) -> Path:
    with path.open("w") as out:
        for video_id, title, categories, seconds in CATALOG:
            out.write(json.dumps({"video_id": video_id, "title": title, "categories": categories,
                                  "duration_seconds": seconds, "thumbnail_url": None}) + "\n")
    return path


@pytest.fixture
def ui_service(make_config: Callable[..., Config], robot: RobotStandIn, config: Config,  # noqa: F811
               tmp_path: Path) -> Iterator[PlaylistService]:
    robot.set_users(users("Boss", "viewer1"))
    robot.silent_timeout_seconds = 0.2
    robot.rate_limit_enabled = False
    running = start_service(make_config(namespace=config.namespace, cytube_channel=config.cytube_channel,
                                        initial_admins=["Boss"], robot_timeout_seconds=2,
                                        queue_add_rate_per_second=50))
    wait_for(lambda: running.ready)
    refresh_now(running, write_catalog(tmp_path / "catalog.jsonl"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda exc: problems.append(str(exc)))
    failed_before = request.session.testsfailed
    yield opened
    # The call phase's failure is counted before teardown runs.
    if request.session.testsfailed > failed_before:
        opened.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        (tmp_path / "page-errors.txt").write_text("\n".join(problems))
    context.close()
    assert not problems, f"JavaScript errors on the page: {problems}"


def base(service: PlaylistService) -> str:
    return f"http://127.0.0.1:{service.http.port}"


def sign_in(page: Any, service: PlaylistService, robot: RobotStandIn, username: str,  # noqa: F811
            wrong_first: bool = False) -> None:
    already = len(robot.pms_to(username))
    page.goto(base(service) + "/login")
    page.get_by_label("CyTube username").fill(username)
    page.get_by_role("button", name="Send code").click()
    expect(page.get_by_test_id("countdown")).to_contain_text("The code expires in")
    if wrong_first:
        page.get_by_label("Code from the PM").fill("WRONGWR1")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text("That code is wrong. 2 attempts left.")).to_be_visible()
    page.get_by_label("Code from the PM").fill(code_sent_to(robot, username, already))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("user")).to_have_text(username)
    page.wait_for_url(base(service) + "/")


def api(page: Any, service: PlaylistService, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """The API as the page's signed-in user sees it (the browser's session cookie)."""
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    status, _headers, answer = http_json(method, base(service) + path, body,
                                         {"Cookie": f"kryten_playlist_session={cookies['kryten_playlist_session']}"})
    return status, answer


def rows(page: Any, scope: str) -> Any:
    return page.locator(f"{scope} li.row")


def test_an_admin_builds_edits_combines_applies_and_likes(page: Any, ui_service: PlaylistService,
                                                          robot: RobotStandIn) -> None:  # noqa: F811
    sign_in(page, ui_service, robot, "Boss")
    expect(page.get_by_test_id("role")).to_have_text("admin")

    # B: search as you type, add three, drag the third to the top, save.
    page.get_by_label("Search titles").fill("moon patrol")
    expect(page.get_by_test_id("search-status")).to_have_text("Showing 1–3 of 3")
    for title in ("Moon Patrol S01E01 Pilot", "Moon Patrol S01E02 Orbit", "Moon Patrol S01E03 Landing"):
        page.get_by_role("button", name=f"Add {title}").click()
    working = rows(page, ".working")
    expect(working).to_have_count(3)
    expect(page.get_by_test_id("working-runtime")).to_have_text("3 items, total runtime 1:05:00")
    working.nth(2).drag_to(working.nth(0))
    expect(working.nth(0)).to_have_attribute("data-video-id", "show03")
    page.get_by_role("button", name="Move Moon Patrol S01E01 Pilot down").click()
    page.reload()  # the working playlist survives a reload
    expect(working).to_have_count(3)
    page.get_by_label("Playlist name").fill("Moon night")
    page.get_by_role("button", name="Save as…").click()
    expect(page.get_by_test_id("save-status")).to_contain_text("Saved as “Moon night”")
    status, listing = api(page, ui_service, "GET", "/api/v1/playlists")
    assert status == 200 and [p["name"] for p in listing["playlists"]] == ["Moon night"]
    moon_id = listing["playlists"][0]["playlist_id"]
    saved = api(page, ui_service, "GET", f"/api/v1/playlists/{moon_id}")[1]
    assert [item["video_id"] for item in saved["items"]] == ["show03", "show02", "show01"]
    page.get_by_role("button", name="Save as…").click()  # the same name again: the server's words, work kept
    expect(page.get_by_test_id("save-status")).to_contain_text("already")
    expect(working).to_have_count(3)

    # C: the list, then the editor: rename, reorder with the keyboard buttons, save; a stale save conflicts.
    page.get_by_role("link", name="Playlists").click()
    page.get_by_role("link", name="Moon night").click()
    editor = rows(page, "main")
    expect(editor).to_have_count(3)
    page.get_by_label("Playlist name").fill("Moon marathon")
    page.get_by_role("button", name="Move Moon Patrol S01E01 Pilot up").click()
    page.get_by_role("button", name="Remove Moon Patrol S01E03 Landing").click()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_test_id("save-status")).to_contain_text("Saved (revision")
    saved = api(page, ui_service, "GET", f"/api/v1/playlists/{moon_id}")[1]
    assert saved["name"] == "Moon marathon" and [i["video_id"] for i in saved["items"]] == ["show01", "show02"]
    assert api(page, ui_service, "PUT", f"/api/v1/playlists/{moon_id}",
               {"name": "Moon marathon", "items": saved["items"]})[0] == 200  # someone else saves meanwhile
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_test_id("save-status")).to_contain_text("Someone else changed this playlist")
    expect(page.get_by_role("button", name="Reload their version")).to_be_visible()

    # D: interleave two playlists; a bad pattern shows the server's words, then preview, reorder, save.
    assert api(page, ui_service, "POST", "/api/v1/playlists",
               {"name": "Films", "items": [{"video_id": "film01"}, {"video_id": "film02"}]})[0] == 201
    page.get_by_role("link", name="Marathon").click()
    picker = page.get_by_label("Playlist", exact=True)
    picker.select_option(label="Moon marathon (2 items)")
    page.get_by_role("button", name="Add source").click()
    picker.select_option(label="Films (2 items)")
    page.get_by_role("button", name="Add source").click()
    expect(page.get_by_test_id("sources")).to_contain_text("AMoon marathon")
    expect(page.get_by_label("Interleave pattern")).to_be_disabled()
    page.get_by_label("Method").select_option("interleave")
    page.get_by_label("Interleave pattern").fill("A0")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_test_id("preview-status")).to_have_class("status error")
    expect(page.get_by_test_id("pattern-examples")).to_contain_text("Examples:")
    page.get_by_label("Interleave pattern").fill("A1 B1")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_test_id("preview-status")).to_have_text("Preview ready: 4 items.")
    preview = rows(page, "[aria-label=Preview]")
    expect(preview).to_have_count(4)
    preview.nth(3).drag_to(preview.nth(0))
    shown = preview.evaluate_all("rows => rows.map(r => r.dataset.videoId)")
    assert shown == ["film02", "show01", "film01", "show02"]
    page.get_by_label("New playlist name").fill("Marathon")
    page.get_by_role("button", name="Save as playlist").click()
    expect(page.get_by_test_id("marathon-save-status")).to_contain_text("Saved as “Marathon”")
    listing = api(page, ui_service, "GET", "/api/v1/playlists")[1]["playlists"]
    marathon_id = next(p["playlist_id"] for p in listing if p["name"] == "Marathon")
    assert [i["video_id"] for i in api(page, ui_service, "GET", f"/api/v1/playlists/{marathon_id}")[1]["items"]] \
        == shown

    # E: apply it; the progress ends in the result.
    page.get_by_role("link", name="Apply").click()
    page.get_by_label("Playlist", exact=True).select_option(marathon_id)
    page.get_by_label("Append").check()
    expect(page.get_by_label("Hard replace")).to_be_visible()  # an admin may
    page.get_by_role("button", name="Apply", exact=True).click()
    expect(page.get_by_test_id("apply-status")).to_have_text("Done: every item was queued.")
    expect(page.get_by_test_id("apply-counts")).to_have_text("4 queued, 0 removed from the queue, 0 failed.")
    assert len(robot.queue_items()) == 4

    # F: something plays; the bar shows it and takes a like, then a duplicate.
    robot.play(robot.queue_items()[0]["uid"])
    wait_for(lambda: api(page, ui_service, "GET", "/api/v1/nowplaying")[1]["video_id"] == "film02",
             what="the service to see the play")
    page.reload()
    expect(page.get_by_test_id("np-count")).to_have_text("♥ 0")
    page.get_by_role("button", name="Like what is playing").click()
    expect(page.get_by_test_id("np-count")).to_have_text("♥ 1")
    page.get_by_role("button", name="Like what is playing").click()
    expect(page.locator(".nowplaying .status")).to_have_text("You already liked this.")
    page.get_by_role("link", name="Stats").click()
    expect(page.get_by_role("heading", name="Top played")).to_be_visible()


def test_a_viewer_sees_no_edit_controls(page: Any, ui_service: PlaylistService,
                                        robot: RobotStandIn) -> None:  # noqa: F811
    sign_in(page, ui_service, robot, "viewer1", wrong_first=True)
    expect(page.get_by_test_id("role")).to_have_text("viewer")
    page.get_by_label("Search titles").fill("film")
    expect(page.get_by_test_id("search-status")).to_have_text("Showing 1–3 of 3")
    expect(page.get_by_role("button", name="Add Alpha Film")).to_have_count(0)
    expect(page.get_by_role("button", name="Save as…")).to_have_count(0)
    expect(page.get_by_role("link", name="Apply")).to_have_count(0)
    expect(page.get_by_role("link", name="Stats")).to_have_count(0)
    playlist_id = ui_service.playlists.create({"name": "Theirs", "items": [{"video_id": "film01"},
                                                                            {"video_id": "gone01"}]}, "Boss")
    page.goto(f"{base(ui_service)}/playlists/{playlist_id}")
    expect(rows(page, "main")).to_have_count(2)
    expect(rows(page, "main").nth(1)).to_contain_text("unavailable: not in the current catalog")
    expect(page.get_by_text("Read only: your role cannot change playlists.")).to_be_visible()
    for name in ("Save", "Delete…", "Move Alpha Film down", "Remove Alpha Film"):
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
    page.goto(base(ui_service) + "/apply")
    expect(page.get_by_text("Your role cannot change the channel's queue.")).to_be_visible()
    page.set_viewport_size({"width": 390, "height": 800})  # a phone: nothing wider than the screen
    for path in ("/", f"/playlists/{playlist_id}", "/marathon"):
        page.goto(base(ui_service) + path)
        expect(page.get_by_test_id("user")).to_have_text("viewer1")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
    status, headers, _body = http_json("GET", base(ui_service) + "/static/common.js")
    assert status == 200 and "max-age=300" in headers["Cache-Control"] and headers["Last-Modified"]
    assert "javascript" in headers["Content-Type"]
    status, headers, _body = http_json("GET", base(ui_service) + "/marathon")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and headers["Cache-Control"] == "no-cache"
    assert http_json("GET", base(ui_service) + "/static/nope.js")[0] == 404


def test_apply_is_disabled_with_the_reason_while_nats_is_down(page: Any, make_config: Callable[..., Config]) -> None:
    service = start_service(make_config(nats_url="nats://127.0.0.1:1", disable_auth=True))
    try:
        page.goto(base(service) + "/apply")
        expect(page.get_by_test_id("role")).to_have_text("admin")
        expect(page.get_by_test_id("apply-disabled-reason")).to_have_text(
            "The service has lost its NATS connection, so the queue cannot be changed.")
        expect(page.get_by_role("button", name="Apply", exact=True)).to_be_disabled()
    finally:
        service.stop()
