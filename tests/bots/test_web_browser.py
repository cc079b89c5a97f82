"""The page in a real browser: Debian's Chromium uploads a photo and plays the signed clip."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web

from bots.web.app import make_app

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]
SCREENSHOT = Path("/tmp/alive-web.png")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PLAYING = """() => {
  const v = document.getElementById('clip');
  return v && !v.closest('[hidden]') && v.readyState >= 2 && v.currentTime > 0;
}"""
VIDEO_STATE = """() => {
  const v = document.getElementById('clip');
  return {t: v.currentTime, ready: v.readyState, width: v.videoWidth,
          error: v.error && v.error.code};
}"""


@pytest.fixture
async def web_server(web_open: Any) -> Any:
    """The real app on a free loopback port, served by aiohttp's own runner."""
    service = await web_open()
    runner = web.AppRunner(make_app(service), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


@pytest.fixture
async def web_browser() -> Any:
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield browser
        await browser.close()


@pytest.mark.timeout(90)
async def test_upload_then_the_clip_plays_in_chromium(
    web_server: str, web_browser: Any, photo_jpeg: bytes
) -> None:
    page = await web_browser.new_page(viewport={"width": 720, "height": 900})
    outside: list[str] = []  # anything not from this server, the photo preview's blob: aside
    page.on(
        "request",
        lambda r: None if r.url.startswith((web_server, "blob:")) else outside.append(r.url),
    )
    await page.goto(web_server + "/")
    photo = {"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": photo_jpeg}
    await page.set_input_files("#photo", files=[photo])
    await page.fill("#prompt", "clouds drifting")

    started = time.perf_counter()
    await page.click("#animate-button")
    await page.wait_for_function(PLAYING, timeout=60_000)
    elapsed = time.perf_counter() - started
    print(f"upload to playable clip in the browser: {elapsed:.2f} s")

    first = await page.evaluate(VIDEO_STATE)
    await page.wait_for_timeout(300)
    second = await page.evaluate(VIDEO_STATE)
    assert first["error"] is None, "Chromium could not decode the H.264 clip"
    assert second["ready"] >= 2
    assert first["width"] > 0
    assert second["t"] != first["t"]  # advancing (a 1 s loop may have wrapped)
    assert "AI-generated" in await page.text_content("#note")
    href = await page.get_attribute("#download", "href")
    assert href is not None
    assert href.startswith("/clips/")

    async with ClientSession() as http, http.get(web_server + href) as response:
        clip = await response.read()
    await page.set_input_files(
        "#verify-file", files=[{"name": "clip.mp4", "mimeType": "video/mp4", "buffer": clip}]
    )
    await page.click("#verify-button")
    await page.wait_for_selector("#verify-lines.ours li")
    lines = await page.locator("#verify-lines li").all_text_contents()
    assert lines[0].startswith("AI-generated: made by this service")

    await page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert outside == []


@pytest.mark.timeout(60)
async def test_a_rejection_is_shown_plainly_in_chromium(web_server: str, web_browser: Any) -> None:
    page = await web_browser.new_page()
    await page.goto(web_server + "/")
    junk = {"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"%PDF-1.4 not a photo"}
    await page.set_input_files("#photo", files=[junk])
    await page.click("#animate-button")
    notice = page.locator("#notice")
    await notice.wait_for(state="visible", timeout=30_000)
    assert "not a photo I can read" in (await notice.text_content() or "")
    assert await page.is_hidden("#result")
