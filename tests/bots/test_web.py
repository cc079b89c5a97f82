"""The web page's API through aiohttp's test client, on the real service, runner and pipeline."""

from __future__ import annotations

import asyncio
import io
import logging
import re
from pathlib import Path
from typing import Any

import av
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from bots.render import reason_message
from bots.web.app import RateLimiter
from core.settings import Web
from core.testing import RejectAll
from core.types import Camera, Stage

STATIC = Path(__file__).resolve().parents[2] / "bots" / "web" / "static"


def photo_form(photo: bytes, token: str = "", **fields: str) -> FormData:
    form = FormData()
    form.add_field("photo", photo, filename="photo.jpg", content_type="image/jpeg")
    for name, value in fields.items():
        form.add_field(name, value)
    if token:
        form.add_field("token", token)
    return form


def file_form(data: bytes, name: str = "file", filename: str = "clip.mp4") -> FormData:
    form = FormData()
    form.add_field(name, data, filename=filename, content_type="application/octet-stream")
    return form


async def wait_done(client: TestClient[Any, Any], job_id: str) -> Any:
    """Poll a job as the page does until it ends; return its last status JSON."""
    async with asyncio.timeout(30):
        while True:
            response = await client.get(f"/api/jobs/{job_id}")
            assert response.status == 200, await response.text()
            status = await response.json()
            if status["state"] in ("done", "failed"):
                return status
            await asyncio.sleep(0.05)


async def animate(client: TestClient[Any, Any], photo: bytes, **fields: str) -> Any:
    response = await client.post("/api/animate", data=photo_form(photo, **fields))
    assert response.status == 202, await response.text()
    job_id = (await response.json())["job_id"]
    assert response.headers["Location"] == f"/api/jobs/{job_id}"
    return await wait_done(client, job_id)


async def test_page_is_self_contained_and_says_clips_are_labelled(web_client: Any) -> None:
    client, _ = await web_client()
    response = await client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    page = await response.text()
    assert "labelled AI-generated" in page
    assert "signed" in page
    assert 'aria-live="polite"' in page
    assert re.findall(r'<option value="(\w+)"', page) == [c.value for c in Camera]
    for name in ("index.html", "app.js", "style.css"):
        text = (STATIC / name).read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text), name
    css = await client.get("/static/style.css")
    assert css.status == 200
    assert css.content_type == "text/css"
    assert (await client.get("/healthz")).status == 200


async def test_security_headers_on_pages_api_and_errors(web_client: Any) -> None:
    client, _ = await web_client()
    for path in ("/", "/healthz", "/api/jobs/0123456789abcdef", "/nowhere"):
        response = await client.get(path)
        assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"


async def test_upload_poll_and_the_clip_plays_as_mp4(web_client: Any, photo_jpeg: bytes) -> None:
    client, _ = await web_client()
    status = await animate(
        client, photo_jpeg, prompt="clouds drifting", motion="3", camera="zoom_in"
    )
    assert status["state"] == "done"
    assert status["error"] is None
    assert status["message"] == "Done… 100%"
    result = status["result"]
    assert result["status"] == "ok"
    assert result["code"] == "ok"
    assert "AI-generated" in result["note"]
    assert result["ledger_id"] in result["note"]
    assert result["clip_url"] == f"/clips/{result['ledger_id']}.mp4"

    response = await client.get(result["clip_url"])
    assert response.status == 200
    assert response.headers["Content-Type"] == "video/mp4"
    body = await response.read()
    assert int(response.headers["Content-Length"]) == len(body)
    assert body[4:8] == b"ftyp"
    with av.open(io.BytesIO(body)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert len(list(container.decode(stream))) == 12  # test.toml: 1 s at 12 fps


async def test_range_request_on_a_clip_is_partial(web_client: Any, photo_jpeg: bytes) -> None:
    client, _ = await web_client()
    status = await animate(client, photo_jpeg)
    url = status["result"]["clip_url"]
    whole = await (await client.get(url)).read()
    response = await client.get(url, headers={"Range": "bytes=100-199"})
    assert response.status == 206
    assert response.headers["Content-Range"] == f"bytes 100-199/{len(whole)}"
    assert await response.read() == whole[100:200]


async def test_a_double_click_animates_once(web_client: Any, photo_jpeg: bytes) -> None:
    client, service = await web_client()
    ids = []
    for _ in range(2):
        response = await client.post("/api/animate", data=photo_form(photo_jpeg, token="a" * 32))
        assert response.status == 202
        ids.append((await response.json())["job_id"])
    assert ids[0] == ids[1]
    await wait_done(client, ids[0])
    assert service.services.db.query("SELECT COUNT(*) AS n FROM jobs")[0]["n"] == 1


async def test_rejected_prompt_is_shown_plainly(web_client: Any, photo_jpeg: bytes) -> None:
    client, _ = await web_client(prompt_checks=[RejectAll("prompt_violence", Stage.PROMPT)])
    status = await animate(client, photo_jpeg, prompt="anything")
    assert status["state"] == "done"
    result = status["result"]
    assert result["status"] == "rejected"
    assert result["code"] == "prompt_violence"
    assert result["message"] == reason_message("prompt_violence")
    assert result["clip_url"] is None
    assert result["ledger_id"] is None


async def test_non_image_upload_is_rejected_plainly(web_client: Any) -> None:
    client, _ = await web_client()
    status = await animate(client, b"%PDF-1.4\n" + b"not a photo " * 100)
    assert status["result"]["status"] == "rejected"
    assert status["result"]["code"] == "not_an_image"
    assert status["result"]["message"] == reason_message("not_an_image")


async def test_oversized_body_is_refused_with_413(web_client: Any) -> None:
    client, service = await web_client(web=Web(max_upload_bytes=50_000, requests_per_minute=100))
    big = b"\xff\xd8" + bytes(100_000)
    response = await client.post("/api/animate", data=photo_form(big))
    assert response.status == 413
    assert await response.json() == {"error": reason_message("too_large")}

    async def chunks() -> Any:  # no Content-Length: the body cap itself must stop it
        yield b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n'
        for _ in range(10):
            yield bytes(10_000)
        yield b"\r\n--xyz--\r\n"

    response = await client.post(
        "/api/verify",
        data=chunks(),
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert response.status == 413
    assert await response.json() == {"error": reason_message("too_large")}
    assert service.services.db.query("SELECT COUNT(*) AS n FROM jobs")[0]["n"] == 0


async def test_rate_limit_answers_429_with_retry_after(web_client: Any) -> None:
    client, _ = await web_client(web=Web(requests_per_minute=2))
    answers = [await client.post("/api/verify", data=file_form(b"x")) for _ in range(3)]
    assert [a.status for a in answers] == [200, 200, 429]
    assert 1 <= int(answers[2].headers["Retry-After"]) <= 30
    assert "Too many requests" in (await answers[2].json())["error"]
    assert (await client.get("/healthz")).status == 200  # reading is never limited


def test_token_bucket_refills_evenly_and_forgets_idle_clients() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=6, clock=lambda: now[0], max_clients=2)
    assert [limiter.take("a") for _ in range(6)] == [0.0] * 6
    assert limiter.take("a") == pytest.approx(10.0)
    now[0] = 10.0
    assert limiter.take("a") == 0.0
    assert limiter.take("b") == 0.0
    now[0] = 100.0
    assert limiter.take("c") == 0.0  # a third client: the full buckets of a and b are dropped
    assert limiter.take("a") == 0.0


async def test_a_url_is_never_fetched(web_client: Any, photo_jpeg: bytes) -> None:
    client, service = await web_client()
    form = photo_form(photo_jpeg, url="http://127.0.0.1:9/secret.jpg")
    response = await client.post("/api/animate", data=form)
    assert response.status == 400
    assert "Links are not fetched" in (await response.json())["error"]
    form = FormData({"url": "http://127.0.0.1:9/photo.jpg"})
    assert (await client.post("/api/animate", data=form)).status == 400
    assert service.services.db.query("SELECT COUNT(*) AS n FROM jobs")[0]["n"] == 0


async def test_bad_form_fields_get_plain_errors(web_client: Any, photo_jpeg: bytes) -> None:
    client, _ = await web_client()
    cases = [
        ({}, "Please choose a photo"),
        ({"motion": "9"}, "Motion must be"),
        ({"camera": "dolly"}, "camera move"),
        ({"seconds": "600"}, "clip length"),
        ({"token": "../../etc"}, "reload the page"),
    ]
    for fields, expected in cases:
        form = photo_form(photo_jpeg, **fields) if fields else FormData({"prompt": "hi"})
        response = await client.post("/api/animate", data=form)
        assert response.status == 400
        assert expected in (await response.json())["error"]


async def test_verify_a_clip_the_page_made_says_it_is_ours(
    web_client: Any, photo_jpeg: bytes
) -> None:
    client, _ = await web_client()
    status = await animate(client, photo_jpeg)
    ledger_id = status["result"]["ledger_id"]
    clip = await (await client.get(status["result"]["clip_url"])).read()
    response = await client.post("/api/verify", data=file_form(clip))
    assert response.status == 200
    body = await response.json()
    assert body["lines"][0].startswith("AI-generated: made by this service")
    assert ledger_id in body["lines"][0]
    assert body["report"]["ours"] is True
    assert body["report"]["credentials"]["state"] == "trusted"
    assert body["report"]["ledger"]["id"] == ledger_id
    assert "chat" not in body["report"]["ledger"]  # who asked for it stays private


async def test_verify_garbage_gets_a_plain_answer(web_client: Any) -> None:
    client, _ = await web_client()
    response = await client.post("/api/verify", data=file_form(b"\x00garbage" * 50))
    assert response.status == 200
    body = await response.json()
    assert body["report"]["ours"] is False
    assert "Not a clip this service made, as far as we can tell." in body["lines"]
    empty = await client.post("/api/verify", data=file_form(b""))
    assert empty.status == 400
    assert await empty.json() == {"error": reason_message("empty")}


async def test_a_malformed_form_is_a_plain_400(web_client: Any) -> None:
    client, _ = await web_client()
    response = await client.post(
        "/api/verify", data=b"junk", headers={"Content-Type": "multipart/form-data; boundary=q"}
    )
    assert response.status == 400
    assert set(await response.json()) == {"error"}


async def test_unknown_job_and_clip_are_404(web_client: Any) -> None:
    client, _ = await web_client()
    for path in ("/api/jobs/0123456789abcdef", "/clips/0123456789ab.mp4", "/nowhere"):
        response = await client.get(path)
        assert response.status == 404
        assert set(await response.json()) == {"error"}
    assert (await client.get("/clips/../../etc/passwd")).status == 404


async def test_a_taken_down_clip_is_gone(web_client: Any, photo_jpeg: bytes) -> None:
    client, service = await web_client()
    status = await animate(client, photo_jpeg)
    url, ledger_id = status["result"]["clip_url"], status["result"]["ledger_id"]
    assert (await client.get(url)).status == 200
    assert await service.take_down(ledger_id, "reported", None)
    response = await client.get(url)
    assert response.status == 404
    assert "taken down" in (await response.json())["error"]


async def test_events_stream_ends_with_the_result(web_client: Any, photo_jpeg: bytes) -> None:
    client, _ = await web_client()
    response = await client.post("/api/animate", data=photo_form(photo_jpeg))
    job_id = (await response.json())["job_id"]
    events = await client.get(f"/api/jobs/{job_id}/events")
    assert events.headers["Content-Type"] == "text/event-stream"
    text = await events.text()
    assert "event: end" in text
    assert text.rstrip().endswith("}")
    assert '"clip_url": "/clips/' in text.split("event: end")[1]


class BrokenReader:
    """A credential reader that fails unexpectedly, as a bug would."""

    def read(self, data: bytes) -> Any:
        raise RuntimeError("boom at /srv/alive/secret/path.py")


async def test_an_unexpected_error_is_logged_but_never_leaked(
    web_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = await web_client(credential_reader=BrokenReader())
    with caplog.at_level(logging.ERROR, logger="bots.web.app"):
        response = await client.post("/api/verify", data=file_form(b"abc"))
    assert response.status == 500
    text = await response.text()
    assert "boom" not in text
    assert "/srv" not in text
    assert "Traceback" not in text
    assert set(await response.json()) == {"error"}
    (record,) = [r for r in caplog.records if r.name == "bots.web.app"]
    assert record.exc_info is not None
