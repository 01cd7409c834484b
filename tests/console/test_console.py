"""The web console in a real headless Chromium (Debian's `chromium`) against the local stack: what a person
does in the browser, checked in the page's DOM and read back through the REST API."""

from __future__ import annotations

import json
import re
import shutil
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from playwright.async_api import Browser, Page, Route, async_playwright, expect

from bench.console import bulk_load, call, make_pictures, upload
from loupe import synth
from loupe.stack import Stack
from tests.console.seed import PREDICTIONS, Seeded, box, seed_project, sign_in
from tests.helpers import eventually, train

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 860}


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"the browser tests need Debian's chromium at {CHROMIUM}: `make browser` installs it")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        await launched.close()


@pytest.fixture(scope="session")
async def project(api: aiohttp.ClientSession) -> Seeded:
    return await seed_project(api, f"console {uuid.uuid4().hex[:8]}")


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    opened = await context.new_page()
    opened.set_default_timeout(20_000)
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    await context.close()
    assert not errors, errors


async def open_signed_in(page: Page, stack: Stack, path: str) -> None:
    await sign_in(page, stack.gateway_url, stack.admin_key, path)


async def label(api: aiohttp.ClientSession, project: Seeded, sample: int) -> dict:
    return await call(api, "GET", f"{project.base}/samples/{project.samples[sample]}/labels/ground-truth")


async def test_the_page_and_its_modules_need_no_key(stack: Stack, anonymous: aiohttp.ClientSession) -> None:
    for path in ("/", "/console/app.js", "/console/style.css"):
        async with anonymous.get(path) as response:
            assert response.status == 200, path
            assert response.headers["Cache-Control"] == "no-cache"  # a new version is picked up at once
    async with anonymous.get("/v1/projects") as response:
        assert response.status == 401  # the API itself still needs the key


async def test_sign_in_and_open_a_project(page: Page, stack: Stack, project: Seeded) -> None:
    await page.goto(stack.gateway_url + "/")
    await page.fill("input[name=api-key]", "lp_not-a-real-key")
    await page.click("form.signin button[type=submit]")
    await expect(page.locator("#message")).to_contain_text("not accepted")

    await page.fill("input[name=api-key]", stack.admin_key)
    await page.click("form.signin button[type=submit]")
    await page.click(f"a.project-link[href='#/p/{project.id}']")
    await expect(page.locator("#total")).to_have_text("6")
    await expect(page.locator("#status-counts tr", has_text="NEW")).to_contain_text("6")
    await expect(page.locator("#dataset-counts tr", has_text="train")).to_contain_text("6")
    histogram = page.locator(f".bar-row[data-class-id='{project.classes['car']}']")
    await expect(histogram.locator(".value")).to_have_text("3")  # samples 0, 1 and 2 have cars


async def test_filter_the_grid_by_metadata_and_class(
    page: Page, stack: Stack, project: Seeded, api: aiohttp.ClientSession
) -> None:
    await open_signed_in(page, stack, f"/p/{project.id}/samples")
    await expect(page.locator("#count")).to_have_text("6")
    await page.fill("input[name=meta-key]", "weather")
    await page.fill("input[name=meta-value]", "rain")
    await page.select_option("select[name=class]", project.classes["car"])
    await page.click("button[name=apply]")
    # Rainy samples are 0, 2 and 4; of those 0 and 2 have a car.
    await expect(page.locator("#count")).to_have_text("2")
    await expect(page.locator("a.cell")).to_have_count(2)
    shown = set(await page.locator("a.cell").evaluate_all("cells => cells.map(c => c.dataset.sampleId)"))
    assert shown == {project.samples[0], project.samples[2]}
    expected = {
        "metadata": {"weather": "rain"},
        "labels": {"classes": [{"class_id": project.classes["car"], "min": 1}]},
    }
    assert (await call(api, "POST", f"{project.base}/samples/count", expected))["count"] == 2

    await page.select_option("select[name=class-mode]", "absent")
    await page.click("button[name=apply]")
    await expect(page.locator("#count")).to_have_text("1")  # sample 4


async def test_several_metadata_and_class_conditions(page: Page, stack: Stack, project: Seeded) -> None:
    await open_signed_in(page, stack, f"/p/{project.id}/samples")
    await page.fill("input[name=meta-key]", "weather")
    await page.fill("input[name=meta-value]", '["rain", "fog"]')  # alternatives, as JSON
    await page.click("button:text('+ metadata')")
    await page.locator("input[name=meta-key]").nth(1).fill("camera")
    await page.locator("input[name=meta-value]").nth(1).fill("front")
    await page.click("button[name=apply]")
    await expect(page.locator("#count")).to_have_text("0")  # no sample has a camera
    await page.locator(".row", has=page.locator("input[name=meta-key]")).nth(1).locator("button.remove").click()
    await page.click("button[name=apply]")
    await expect(page.locator("#count")).to_have_text("4")  # rain or fog: 0, 2, 4 and 5

    await page.select_option("select[name=class]", project.classes["car"])
    await page.click("button:text('+ class')")
    await page.locator("select[name=class]").nth(1).select_option(project.classes["person"])
    await page.locator("select[name=class-mode]").nth(1).select_option("absent")
    await page.click("button[name=apply]")
    await expect(page.locator("#count")).to_have_text("1")  # 0 and 2 have a car, 0 a person too
    await expect(page.locator("a.cell")).to_have_attribute("data-sample-id", project.samples[2])
    address = await page.evaluate("location.hash")
    assert json.loads(urllib.parse.unquote(address.split("f=")[1])) == {
        "metadata": {"weather": ["rain", "fog"]},
        "labels": {"classes": [{"class_id": project.classes["car"], "min": 1},
                               {"class_id": project.classes["person"], "max": 0}]},
    }
    await page.reload()  # the rows come back from the address
    await expect(page.locator("select[name=class]")).to_have_count(2)
    await expect(page.locator("input[name=meta-value]")).to_have_value('["rain","fog"]')


async def test_bulk_status_and_add_to_view(
    page: Page, stack: Stack, project: Seeded, api: aiohttp.ClientSession
) -> None:
    await open_signed_in(page, stack, f"/p/{project.id}/samples")
    picked = [project.samples[3], project.samples[4]]
    for sample_id in picked:
        await page.click(f"a.cell[data-sample-id='{sample_id}']", modifiers=["Control"])
    await expect(page.locator(".bulk")).to_contain_text("2 selected")
    await page.select_option("select[name=bulk-status]", "SKIPPED")
    await page.click(".bulk button:text('Set status')")
    await expect(page.locator("#message")).to_contain_text("Set 2 samples to SKIPPED")
    for sample_id in picked:
        assert (await call(api, "GET", f"{project.base}/samples/{sample_id}"))["status"] == "SKIPPED"

    page.once("dialog", lambda dialog: dialog.accept("picked"))
    for sample_id in picked:
        await page.click(f"a.cell[data-sample-id='{sample_id}']", modifiers=["Control"])
    await page.click(".bulk button:text('Add to view')")
    await expect(page.locator("#message")).to_contain_text("Added 2 samples")
    views = (await call(api, "GET", f"{project.base}/views"))["items"]
    assert [(v["name"], v["item_count"]) for v in views if v["kind"] == "items"] == [("picked", 2)]


async def test_a_sample_shows_every_label_shape(page: Page, stack: Stack, project: Seeded) -> None:
    await open_signed_in(page, stack, f"/p/{project.id}/s/{project.samples[0]}")
    objects = page.locator("#objects g.object:not(.prediction)")
    await expect(objects).to_have_count(7)
    types = await objects.evaluate_all("groups => groups.map(g => g.dataset.type)")
    assert sorted(types) == ["bbox", "bbox", "keypoints", "mask", "point", "polygon", "polyline"]
    car = page.locator("#objects g.object.bbox").first
    assert await car.get_attribute("stroke") == "#e6194b"  # the class colour of the schema
    rect = car.locator("rect")
    assert [await rect.get_attribute(a) for a in ("x", "y", "width", "height")] == ["5", "5", "35", "25"]
    polygon = await page.locator("#objects g.polygon path").get_attribute("d")
    assert polygon is not None and polygon.count("M") == 2  # the outer ring and its hole
    await expect(page.locator("#objects g.keypoints line.bone")).to_have_count(2)  # the schema's skeleton
    await expect(page.locator("#objects g.mask image")).to_have_count(1)
    await expect(page.locator("#object-list li")).to_have_count(7)

    await page.select_option("select#show", "both")
    await expect(page.locator("#objects g.object.prediction")).to_have_count(1)
    await page.select_option("select#show", "predictions")
    await expect(page.locator("#objects g.object")).to_have_count(1)
    assert PREDICTIONS in await page.locator("select#show").inner_text()


async def test_set_object_and_image_attributes(
    page: Page, stack: Stack, project: Seeded, api: aiohttp.ClientSession
) -> None:
    await open_signed_in(page, stack, f"/p/{project.id}/s/{project.samples[0]}")
    await expect(page.locator("#attributes input[name=attr-occluded]")).to_have_count(0)  # nothing selected
    await page.click("#object-list li >> nth=0")  # a car: `occluded` applies to cars only
    await page.check("#attributes input[name=attr-occluded]")
    dusk = next(v["id"] for v in project.attributes["light"]["values"] if v["value"] == "dusk")
    await page.select_option("#attributes select[name=attr-light]", dusk)
    await page.click("#save")
    await expect(page.locator("#message")).to_contain_text("Saved")

    saved = await label(api, project, 0)
    assert saved["attributes"] == {project.attributes["light"]["id"]: dusk}
    cars = [o for o in saved["objects"] if o["class_id"] == project.classes["car"]]
    assert [car["attributes"] for car in cars] == [{project.attributes["occluded"]["id"]: True}, {}]


async def drag(page: Page, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A mouse drag between two points given as fractions of the canvas."""
    frame = await page.locator("#photo").bounding_box()
    assert frame is not None
    at = [(frame["x"] + frame["width"] * fx, frame["y"] + frame["height"] * fy) for fx, fy in (start, end)]
    await page.mouse.move(*at[0])
    await page.mouse.down()
    await page.mouse.move(*at[1], steps=5)
    await page.mouse.up()


async def test_draw_a_box_and_save_it(page: Page, stack: Stack, project: Seeded, api: aiohttp.ClientSession) -> None:
    await open_signed_in(page, stack, f"/p/{project.id}/s/{project.samples[5]}")
    await expect(page.locator("#label-status")).to_have_text("UNLABELED")
    await page.keyboard.press("b")
    await page.keyboard.press("2")  # the second class: person
    await drag(page, (0.25, 0.25), (0.75, 0.5))
    await expect(page.locator("#objects g.object.bbox")).to_have_count(1)
    await page.keyboard.press("Control+z")
    await expect(page.locator("#objects g.object")).to_have_count(0)
    await drag(page, (0.25, 0.25), (0.75, 0.5))
    await page.click("#save")
    await expect(page.locator("#message")).to_contain_text("Saved")

    saved = await label(api, project, 5)
    assert saved["status"] == "LABELED" and len(saved["objects"]) == 1
    drawn = saved["objects"][0]
    assert drawn["class_id"] == project.classes["person"]
    x1, y1, x2, y2 = drawn["shape"]["box"]
    assert (x1, y1, x2, y2) == pytest.approx((24, 24, 72, 48), abs=2)  # a quarter to three quarters of 96 px


async def test_draw_a_polygon_with_a_hole_zoom_and_step_to_the_next_sample(
    page: Page, stack: Stack, project: Seeded, api: aiohttp.ClientSession
) -> None:
    await open_signed_in(page, stack, f"/p/{project.id}/s/{project.samples[3]}?i=3")
    await expect(page.locator("#objects g.object")).to_have_count(1)
    await page.keyboard.press("g")
    await page.keyboard.press("3")  # road
    frame = await page.locator("#photo").bounding_box()
    assert frame is not None
    for fx, fy in ((0.2, 0.2), (0.6, 0.2), (0.4, 0.6)):
        await page.mouse.click(frame["x"] + frame["width"] * fx, frame["y"] + frame["height"] * fy)
    await page.keyboard.press("Enter")
    await expect(page.locator("#objects g.polygon")).to_have_count(1)
    await page.keyboard.press("h")  # a hole in the polygon just drawn (still selected)
    for fx, fy in ((0.35, 0.3), (0.45, 0.3), (0.4, 0.4)):
        await page.mouse.click(frame["x"] + frame["width"] * fx, frame["y"] + frame["height"] * fy)
    await page.keyboard.press("Enter")
    await page.click("#save")
    await expect(page.locator("#message")).to_contain_text("Saved")
    shapes = [o["shape"] for o in (await label(api, project, 3))["objects"]]
    polygon = next(shape for shape in shapes if shape["type"] == "polygon")
    assert polygon["points"] == [pytest.approx([x, y], abs=1.5) for x, y in ((19.2, 19.2), (57.6, 19.2), (38.4, 57.6))]
    assert polygon["holes"] == [[pytest.approx([x, y], abs=1.5) for x, y in ((33.6, 28.8), (43.2, 28.8), (38.4, 38.4))]]

    whole = await page.locator("#canvas").get_attribute("viewBox")
    await page.mouse.move(frame["x"] + frame["width"] / 2, frame["y"] + frame["height"] / 2)
    await page.mouse.wheel(0, -300)
    zoomed = await page.locator("#canvas").get_attribute("viewBox")
    assert zoomed is not None and float(zoomed.split()[2]) < 96  # zoomed in: less of the image in view
    await page.click("button:text('Fit')")
    assert await page.locator("#canvas").get_attribute("viewBox") == whole

    # `n` opens the next sample of the grid's order (by priority, then id), as the search API pages it. Other
    # tests of the shared project change priorities, so the order is read now and the walk starts in it.
    order = await call(api, "POST", f"{project.base}/samples/search", {"limit": 10})
    await open_signed_in(page, stack, f"/p/{project.id}/s/{order['items'][3]['id']}?i=3")
    await expect(page.locator("h1")).to_have_text(order["items"][3]["name"])
    for key, index in (("n", 4), ("p", 3)):
        await page.keyboard.press(key)
        await expect(page).to_have_url(re.compile(f"/s/{order['items'][index]['id']}"))
        await expect(page.locator("h1")).to_have_text(order["items"][index]["name"])  # loaded, keys bound


async def test_move_resize_and_delete(page: Page, stack: Stack, project: Seeded, api: aiohttp.ClientSession) -> None:
    await open_signed_in(page, stack, f"/p/{project.id}/s/{project.samples[2]}")
    await expect(page.locator("#objects g.bbox")).to_have_count(1)
    # The car at (20, 20)–(60, 50) of 96 px: drag it by its middle 10 px to the right.
    await drag(page, (40 / 96, 35 / 96), (50 / 96, 35 / 96))
    await page.locator("#overlay rect.handle[data-corner=se]").wait_for()
    await drag(page, (70 / 96, 50 / 96), (80 / 96, 60 / 96))
    await page.click("#save")
    await expect(page.locator("#message")).to_contain_text("Saved")
    assert (await label(api, project, 2))["objects"][0]["shape"]["box"] == pytest.approx([30, 20, 80, 60], abs=1.5)

    version = await page.locator("#label-version").inner_text()
    await page.click("#object-list li")
    await page.keyboard.press("Delete")
    await page.click("#save")
    await expect(page.locator("#label-version")).not_to_have_text(version)
    assert (await label(api, project, 2))["objects"] == []


async def test_drag_the_points_of_polylines_points_and_keypoints(
    page: Page, stack: Stack, api: aiohttp.ClientSession
) -> None:
    own = await seed_project(api, f"console points {uuid.uuid4().hex[:8]}")  # its sample 0 has every shape
    await open_signed_in(page, stack, f"/p/{own.id}/s/{own.samples[0]}")
    at = lambda x, y: (x / 96, y / 96)  # noqa: E731
    # Objects 4, 5 and 6 of the list: the polyline, the point and the keypoints.
    for row, start, end in ((4, (48, 70), (48, 50)), (5, (70, 20), (80, 30)), (6, (55, 25), (50, 35))):
        await page.click(f"#object-list li:nth-child({row})")
        await page.locator("#overlay circle.handle").first.wait_for()
        await drag(page, at(*start), at(*end))
    await page.click("#save")
    await expect(page.locator("#message")).to_contain_text("Saved")
    shapes = {o["shape"]["type"]: o["shape"] for o in (await label(api, own, 0))["objects"]}
    flat = lambda points: [v for point in points for v in point]  # noqa: E731
    assert flat(shapes["polyline"]["points"]) == pytest.approx([0, 95, 48, 50, 95, 95], abs=1.5)
    assert shapes["point"]["point"] == pytest.approx([80, 30], abs=1.5)
    # The moved keypoint keeps its visibility.
    assert flat(shapes["keypoints"]["keypoints"]) == pytest.approx([60, 10, 2, 50, 35, 2, 75, 25, 1], abs=1.5)


async def test_a_stale_save_says_so_and_offers_a_reload(
    page: Page, stack: Stack, project: Seeded, api: aiohttp.ClientSession
) -> None:
    await open_signed_in(page, stack, f"/p/{project.id}/s/{project.samples[1]}")
    await expect(page.locator("#objects g.bbox")).to_have_count(1)
    # Someone else saves the label meanwhile.
    objects = [box(project, "car", 10, 10, 30, 30), box(project, "car", 50, 50, 70, 70)]
    await call(api, "PUT", f"{project.base}/samples/{project.samples[1]}/labels/ground-truth", {"objects": objects})

    await page.click("#object-list li")
    await page.keyboard.press("Delete")
    await page.click("#save")
    await expect(page.locator("#message")).to_contain_text("someone else saved this label")
    assert len((await label(api, project, 1))["objects"]) == 2  # nothing was overwritten
    await page.click("#message button#reload")
    await expect(page.locator("#objects g.bbox")).to_have_count(2)


async def test_review_the_next_sample_and_reject_it_with_a_comment(
    page: Page, stack: Stack, project: Seeded, api: aiohttp.ClientSession
) -> None:
    await open_signed_in(page, stack, f"/p/{project.id}")
    await page.click("#nav a:text('Review next')")
    await page.wait_for_url(re.compile(r"review=1"))
    sample_id = re.search(r"/s/([0-9a-f-]+)", page.url).group(1)  # type: ignore[union-attr]
    await expect(page.locator("#label-status")).to_have_text("REVIEWING_IN_PROGRESS")
    await page.fill("#review-comment", "the left car is cut off")
    await page.click("#reject")
    await expect(page.locator("#message")).to_contain_text("Rejected")

    reviewed = await call(api, "GET", f"{project.base}/samples/{sample_id}/labels/ground-truth")
    assert reviewed["status"] == "REJECTED"
    issues = await call(api, "GET", f"{project.base}/issues?sample_id={sample_id}")
    assert [issue["description"] for issue in issues["items"]] == ["the left car is cut off"]
    await expect(page.locator("#issues .issue")).to_have_count(1)


async def test_label_the_next_sample_of_the_label_queue(
    page: Page, stack: Stack, project: Seeded, api: aiohttp.ClientSession
) -> None:
    await open_signed_in(page, stack, f"/p/{project.id}")
    await page.click("#nav a:text('Label next')")
    await page.wait_for_url(re.compile(r"queue=label"))
    sample_id = re.search(r"/s/([0-9a-f-]+)", page.url).group(1)  # type: ignore[union-attr]
    await expect(page.locator("#label-status")).to_have_text("LABELING_IN_PROGRESS")
    await page.keyboard.press("b")
    await drag(page, (0.1, 0.1), (0.3, 0.3))
    await page.keyboard.press("Control+s")
    await expect(page.locator("#message button#label-next")).to_be_visible()
    labelled = await call(api, "GET", f"{project.base}/samples/{sample_id}/labels/ground-truth")
    assert labelled["status"] == "LABELED" and labelled["objects"][-1]["shape"]["type"] == "bbox"


async def test_cut_a_release_and_download_a_coco_export(page: Page, stack: Stack, project: Seeded) -> None:
    await open_signed_in(page, stack, f"/p/{project.id}/releases")
    await page.fill("input[name=release-name]", "v1")
    await page.click("button[name=cut]")
    release = page.locator("section.release", has_text="v1")
    await expect(release).to_have_attribute("data-state", "SUCCEEDED", timeout=60_000)
    await release.locator("select[name=format]").select_option("coco")
    await release.locator("button[name=export]").click()
    link = release.locator("a.download")
    await expect(link).to_be_visible(timeout=60_000)
    async with page.expect_download() as waiting:
        await link.click()
    download = await waiting.value
    assert download.suggested_filename.startswith("v1-")
    coco = json.loads((await download.path()).read_bytes())
    assert len(coco["images"]) == 6 and coco["annotations"]
    await expect(page.locator("#event-log li").first).to_be_visible()  # progress came on the event stream


async def test_jobs_show_imports_and_qa_findings(page: Page, stack: Stack, project: Seeded) -> None:
    await open_signed_in(page, stack, f"/p/{project.id}/jobs")
    await expect(page.locator("#imports tr")).to_have_count(1)
    await expect(page.locator("#imports tr")).to_contain_text("6 new")
    await page.select_option("select[name=qa-predictions]", PREDICTIONS)
    await page.click("#qa button[type=submit]")
    run = page.locator("#qa li", has_text="SUCCEEDED")
    await expect(run).to_have_count(1, timeout=60_000)
    await run.locator("button:text('Findings')").click()
    finding = page.locator("#qa .findings tr").first
    await expect(finding).to_contain_text("open")
    await finding.locator("button:text('Not an error')").click()
    await expect(page.locator("#qa .findings tr").first).to_contain_text("NOT_AN_ERROR")


async def test_add_a_class_and_an_attribute_in_the_schema_page(
    page: Page, stack: Stack, project: Seeded, api: aiohttp.ClientSession
) -> None:
    await open_signed_in(page, stack, f"/p/{project.id}/schema")
    await page.fill("input[name=new-class]", "bicycle")
    await page.click("button:text('Add class')")
    await expect(page.locator("#classes input[name=class-name]")).to_have_count(4)
    classes = (await call(api, "GET", f"{project.base}/label-classes"))["items"]
    assert "bicycle" in [c["name"] for c in classes]

    await page.fill("input[name=new-attribute]", "parked")
    await page.select_option("select[name=new-attribute-type]", "SELECTION")
    await page.fill("input[name=new-attribute-values]", "yes, no")
    await page.click("button:text('Add attribute')")
    await expect(page.locator("#attribute-list li", has_text="parked")).to_contain_text("(yes, no)")
    attributes = (await call(api, "GET", f"{project.base}/attributes"))["items"]
    parked = next(a for a in attributes if a["name"] == "parked")
    assert [v["value"] for v in parked["values"]] == ["yes", "no"] and parked["subject"] == "LABEL"


def answering(status: int) -> Callable[[Route], Awaitable[None]]:
    async def answer(route: Route) -> None:
        await route.fulfill(status=status, body="")

    return answer


async def test_api_errors_show_as_messages(page: Page, stack: Stack, project: Seeded) -> None:
    await open_signed_in(page, stack, f"/p/{uuid.uuid4()}")
    await expect(page.locator("#message")).to_contain_text("does not exist")
    # Statuses the stack will not give on demand, answered in the browser instead.
    for status, text in ((500, "The server failed (500)"), (413, "too large")):
        await page.route("**/v1/projects?limit=500", answering(status))
        await page.goto(f"{stack.gateway_url}/#/?{status}")
        await expect(page.locator("#message")).to_contain_text(text)
        await page.unroute("**/v1/projects?limit=500")
    await expect(page.locator("header#bar")).to_be_visible()  # never a blank page


GRID_SAMPLES = 5_000
JUMPS = 10
FLING = """async (viewport, [from, to]) => {
  const range = viewport.scrollHeight - viewport.clientHeight;
  for (let i = 1; i <= 20; i++) {
    viewport.scrollTop = (from + ((to - from) * i) / 20) * range;
    await new Promise(requestAnimationFrame);
  }
}"""


@pytest.mark.timeout(300)
async def test_the_grid_keeps_dom_and_requests_bounded(page: Page, stack: Stack, api: aiohttp.ClientSession) -> None:
    made = await call(api, "POST", "/v1/projects", {"name": f"console grid {uuid.uuid4().hex[:8]}"})
    base = f"/v1/projects/{made['id']}"
    dataset = await call(api, "POST", f"{base}/datasets", {"name": "uploaded"})
    pictures = make_pictures(100, "grid")
    await upload(api, base, dataset["id"], pictures)
    await bulk_load(api, base, pictures, GRID_SAMPLES - len(pictures))

    searches: list[str] = []
    calls: list[str] = []
    page.on("request", lambda request: "/v1/" in request.url and calls.append(request.url))
    page.on("request", lambda request: request.url.endswith("/samples/search") and searches.append(request.url))
    await open_signed_in(page, stack, f"/p/{made['id']}/samples")
    await expect(page.locator("#count")).to_have_text("5,000")
    viewport = page.locator(".grid-viewport")

    async def settled_nodes() -> int:
        await expect(page.locator(".cell.placeholder")).to_have_count(0)
        await page.wait_for_timeout(300)
        return await page.evaluate("document.getElementsByTagName('*').length")

    first_screen = await settled_nodes()
    calls.clear()
    searches.clear()
    most_nodes = first_screen
    for step in range(1, JUMPS + 1):
        # A fling: twenty scroll positions, one per animation frame, then a pause where the grid fills in.
        await viewport.evaluate(FLING, [(step - 1) / JUMPS, step / JUMPS])
        most_nodes = max(most_nodes, await settled_nodes())

    last = await page.locator("a.cell").evaluate_all("cells => Math.max(...cells.map(c => Number(c.dataset.index)))")
    assert last == GRID_SAMPLES - 1  # the bottom of the grid is the last sample
    assert most_nodes <= first_screen + 60  # what is out of sight leaves the DOM
    # At most the two pages of 100 under each stop are fetched, never what flew past, never all 5,000.
    assert len(searches) <= 2 * JUMPS
    # And besides them one request for the thumbnails' URLs per page fetched, at most: nothing else.
    assert len([url for url in calls if url.endswith("/samples/urls")]) <= len(searches)
    assert len(calls) <= 2 * len(searches)

    async def counted() -> bool:
        return (await call(api, "POST", f"{base}/samples/count", {}))["count"] == GRID_SAMPLES

    assert await eventually(counted)


async def test_a_job_without_a_model_is_refused_readably(page: Page, stack: Stack, project: Seeded) -> None:
    await open_signed_in(page, stack, f"/p/{project.id}/samples")
    await page.fill("input[name=meta-key]", "weather")
    await page.fill("input[name=meta-value]", "rain")
    await page.click("button[name=apply]")
    await expect(page.locator("#count")).to_have_text("3")
    await page.click("#infer-these")  # the grid's filter goes with it
    await expect(page.locator("select[name=selection]")).to_have_value("grid")
    await page.select_option("select[name=family]", "segmentation")
    await page.click("#new-job button[type=submit]")
    await expect(page.locator("#message")).to_contain_text("segmentation")
    await expect(page.locator("#inference-jobs")).to_contain_text("No inference jobs yet.")


async def copies_of_the_images(api: aiohttp.ClientSession, base: str, datasets: int) -> None:
    """The project's images registered again (by content hash) in `datasets` new datasets."""
    found = (await call(api, "POST", f"{base}/samples/search", {"limit": 500}))["items"]
    items = [{"content_hash": s["content_hash"], "name": s["name"], "width": s["width"], "height": s["height"]}
             for s in found]
    for number in range(datasets):
        dataset = await call(api, "POST", f"{base}/datasets", {"name": f"copy-{number}"})
        await call(api, "POST", f"{base}/datasets/{dataset['id']}/samples", {"items": items})


@pytest.mark.timeout(420)
async def test_start_follow_and_cancel_inference_jobs_and_activate_a_version(
    page: Page, stack: Stack, api: aiohttp.ClientSession
) -> None:
    loaded = await synth.load(synth.generate(40, size=32, seed=5), stack.gateway_url, stack.admin_key,
                              name=f"console inference {uuid.uuid4().hex[:8]}", progress=False)
    base = f"/v1/projects/{loaded.project_id}"
    for _ in range(2):  # two versions, so one can be activated
        await train(api, loaded.project_id)

    await open_signed_in(page, stack, f"/p/{loaded.project_id}/inference")
    versions = page.locator("#models [data-model=tiny] tr")
    await expect(versions).to_have_count(2)
    await expect(page.locator("#models [data-version='1']")).to_contain_text("active")
    await page.locator("#models [data-version='2'] button:text('Activate')").click()
    await expect(page.locator("#models [data-version='2']")).to_contain_text("active")
    assert (await call(api, "GET", f"{base}/models/tiny"))["active_version"] == 2

    await page.select_option("select[name=family]", "detection")
    await page.click("#new-job button[type=submit]")
    job = page.locator("#inference-jobs tr").first
    await expect(job).to_have_attribute("data-state", "SUCCEEDED", timeout=120_000)
    await expect(job).to_contain_text("tiny v2")
    await expect(job.locator("td.progress")).to_contain_text("40 of 40 done")
    await job.locator("button.results").click()
    await expect(page.locator("#job-results tr")).to_have_count(40)

    # Cancelling a job of 2,040 samples (the images again in 51 more datasets) as soon as it shows.
    await copies_of_the_images(api, base, 50)
    await page.select_option("select[name=kind]", "embeddings")
    await page.click("#new-job button[type=submit]")
    newest = page.locator("#inference-jobs tr").first
    await expect(newest).to_contain_text("embeddings")
    await newest.locator("button.cancel").click()
    await expect(newest).to_have_attribute("data-state", "CANCELLED", timeout=60_000)
    jobs = (await call(api, "GET", f"{base}/inference/jobs"))["items"]
    assert jobs[0]["kind"] == "embeddings" and jobs[0]["state"] == "CANCELLED" and jobs[0]["done"] < 2040

    # Predict now, on the sample open: the overlay has as many shapes as the API predicts for it.
    sample = jobs[1]  # the auto-label job went through every sample
    results = await call(api, "GET", f"{base}/inference/jobs/{sample['id']}/results?limit=1")
    sample_id = results["items"][0]["sample_id"]
    answer = await call(api, "POST", f"{base}/inference/predict",
                        {"model": {"family": "detection"}, "sample_id": sample_id, "thresholds": {"confidence": 0.01}})
    assert answer["objects"]  # at so low a threshold even this detector finds something
    await page.goto(f"{stack.gateway_url}/#/p/{loaded.project_id}/s/{sample_id}")
    await page.fill("input[name=predict-confidence]", "0.01")
    await page.click("#predict")
    await expect(page.locator("#message")).to_contain_text(f"tiny v2 predicts {len(answer['objects'])} objects")
    await expect(page.locator("#show")).to_have_value("both")
    await expect(page.locator("#objects g.prediction")).to_have_count(len(answer["objects"]))
