"""The screenshots of docs/console.md, taken by Playwright from a fresh local stack:

python -m tests.console.screenshots [--out docs/console]
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import aiohttp
from playwright.async_api import Page, async_playwright

from bench.console import call
from bench.report import local_stack
from loupe import synth
from tests.console.seed import PREDICTIONS, seed_project, sign_in
from tests.console.test_console import CHROMIUM, VIEWPORT
from tests.helpers import TINY_DETECTOR


async def finished(api: aiohttp.ClientSession, path: str) -> None:
    for _ in range(3000):
        if (await call(api, "GET", path))["state"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return
        await asyncio.sleep(0.1)


async def inference_project(api: aiohttp.ClientSession, gateway_url: str, key: str) -> str:
    """Synthetic shapes with a detector trained in seconds, which has auto-labelled them."""
    loaded = await synth.load(synth.generate(40, size=32, seed=5), gateway_url, key, name="shapes", progress=False)
    base = f"/v1/projects/{loaded.project_id}"
    for _ in range(2):
        run = await call(api, "POST", f"{base}/training/runs", {"family": "detection", "model": "tiny", "config": TINY_DETECTOR})
        await finished(api, f"{base}/training/runs/{run['id']}")
    job = await call(api, "POST", f"{base}/inference/jobs", {"kind": "autolabel", "model": {"family": "detection"}})
    await finished(api, f"{base}/inference/jobs/{job['id']}")
    return loaded.project_id


async def shoot(gateway_url: str, key: str, out: Path) -> None:
    async with aiohttp.ClientSession(gateway_url, headers={"Authorization": f"Bearer {key}"}) as api:
        project = await seed_project(api, "dashcam")
        release = await call(api, "POST", f"{project.base}/releases", {"name": "2024-05"})
        for _ in range(300):
            if (await call(api, "GET", f"{project.base}/releases/{release['id']}"))["state"] == "SUCCEEDED":
                break
            await asyncio.sleep(0.1)
        await call(api, "POST", f"{project.base}/releases/{release['id']}/exports", {"format": "coco"})
        await call(api, "POST", f"{project.base}/qa-runs", {"predictions": PREDICTIONS})
        shapes = await inference_project(api, gateway_url, key)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = await browser.new_page(viewport=VIEWPORT)

        async def snap(name: str, path: str, ready: str, then: str | None = None) -> Page:
            await sign_in(page, gateway_url, key, path)
            await page.wait_for_selector(ready)
            if then:
                await page.evaluate(then)
            await page.wait_for_timeout(600)
            await page.screenshot(path=str(out / f"{name}.png"))
            return page

        await page.goto(gateway_url + "/")
        await page.wait_for_selector("form.signin")
        await page.screenshot(path=str(out / "sign-in.png"))
        await snap("overview", f"/p/{project.id}", "#status-counts")
        rain = '{"metadata":{"weather":"rain"}}'
        await snap("grid", f"/p/{project.id}/samples?f={rain}", "a.cell img")
        await snap("sample", f"/p/{project.id}/s/{project.samples[0]}", "#objects g.mask")
        await page.select_option("select#show", "both")
        await page.click("#object-list li:nth-child(1)")
        await page.check("#attributes input[name=attr-occluded]")
        await page.wait_for_timeout(300)
        await page.screenshot(path=str(out / "labeling.png"))
        await page.click("#nav a:text('Review next')")
        await page.wait_for_selector("#review-comment")
        await page.fill("#review-comment", "the left car is cut off")
        await page.wait_for_timeout(600)
        await page.screenshot(path=str(out / "review.png"))
        await snap("releases", f"/p/{project.id}/releases", "section.release a.download")
        await snap("schema", f"/p/{project.id}/schema", "#classes")
        await sign_in(page, gateway_url, key, f"/p/{project.id}/jobs")
        await page.click("#qa li:has-text('SUCCEEDED') button:text('Findings')")
        await page.wait_for_selector("#qa .findings tr")
        await page.screenshot(path=str(out / "jobs.png"))
        await sign_in(page, gateway_url, key, f"/p/{shapes}/inference")
        await page.click("#inference-jobs tr button.results")
        await page.wait_for_selector("#job-results tr")
        await page.wait_for_timeout(600)
        await page.screenshot(path=str(out / "inference.png"))
        await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/console"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with local_stack("gateway", "catalog", "annotation", "ingest", "training", "inference", triton=True) as stack:
        asyncio.run(shoot(stack.gateway_url, stack.admin_key, args.out))


if __name__ == "__main__":
    main()
