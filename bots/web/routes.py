"""The web handlers: a form becomes a job request, a job becomes JSON, a clip becomes a file.

Every user-facing sentence comes from ``bots.render``, so the page says what the chats say.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bots.render import (
    failure_message,
    outcome_message,
    progress_message,
    public_report,
    reason_message,
)
from bots.web.keys import SERVICE
from core.metrics import CONTENT_TYPE, generate, set_queue_depth
from core.service import AliveService
from core.settings import ClipDefaults
from core.types import (
    Camera,
    ChatRef,
    ClipSpec,
    JobRequest,
    JobState,
    JobStatus,
    Outcome,
    Photo,
    Progress,
)

log = logging.getLogger(__name__)

Form = MultiDictProxy[str | bytes | bytearray | web.FileField]

STATIC_DIR = Path(__file__).resolve().parent / "static"
MIN_SECONDS = 0.5  # NOTE: below half a second a loop is a flicker, not a clip.
EVENTS_MAX_S = 600.0  # NOTE: an event stream outliving any sane job is closed; polling still works.
WEB_CHAT = ChatRef(platform="web", chat_id="page")  # no addresses or ids of visitors are kept

NO_LINKS = "Links are not fetched. Please upload the file itself."
NO_PHOTO = "Please choose a photo to upload."
NO_FILE = "Please choose a file to check."
NO_JOB = "No such job. It may have expired; please send the photo again."
NO_CLIP = "That clip is not available: it is unknown, expired or was taken down."


class AnimateForm(BaseModel):
    """The optional text fields of the upload form (pydantic only at the edge)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, frozen=True)

    # NOTE: a generous cap that only bounds memory; the prompt checks judge the real length.
    prompt: str = Field("", max_length=4000)
    seconds: float | None = Field(None, ge=MIN_SECONDS)
    motion: int | None = Field(None, ge=0, le=4)
    camera: Camera = Camera.AUTO
    token: str = Field("", pattern=r"^[A-Za-z0-9_-]{0,64}$")


FIELD_ERRORS = {
    "prompt": reason_message("prompt_too_long"),
    "seconds": "The clip length is out of range.",
    "motion": "Motion must be a whole number from 0 to 4.",
    "camera": "That camera move is not one of the choices.",
    "token": "The form has expired. Please reload the page.",
}


def setup_routes(app: web.Application) -> None:
    """Register the page, the API, the clips and the health check."""
    app.router.add_get("/", index)
    app.router.add_post("/api/animate", animate)
    app.router.add_get("/api/jobs/{job_id:[A-Za-z0-9_-]{1,64}}", job_status)
    app.router.add_get("/api/jobs/{job_id:[A-Za-z0-9_-]{1,64}}/events", job_events)
    app.router.add_get("/clips/{ledger_id:[0-9a-f]{12}}.mp4", clip)
    app.router.add_post("/api/verify", verify)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_text)
    app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)


def json_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """Return the one error shape of the API: ``{"error": "<plain sentence>"}``."""
    return web.json_response({"error": message}, status=status, headers=headers)


async def read_form(
    request: web.Request,
) -> MultiDictProxy[str | bytes | bytearray | web.FileField]:
    """Read a form within the body cap; a malformed body is the client's error (400)."""
    try:
        return await request.post()
    except ValueError:
        raise web.HTTPBadRequest() from None


async def index(request: web.Request) -> web.StreamResponse:
    """Serve the page."""
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


async def healthz(request: web.Request) -> web.Response:
    """Say the process is up."""
    return web.Response(text="ok")


async def readyz(request: web.Request) -> web.Response:
    """Say whether jobs can be taken: shared state (Redis in distributed mode) answers.

    The signer is loaded before the service opens, so a running process has one.
    """
    service = request.app[SERVICE]
    if not await asyncio.to_thread(service.services.store.ping):
        return web.Response(status=503, text="shared state unreachable")
    return web.Response(text="ready")


async def metrics_text(request: web.Request) -> web.Response:
    """Serve this process's Prometheus metrics, with the queue depth read now."""
    service = request.app[SERVICE]
    set_queue_depth(await service.queue_depth())
    body = await asyncio.to_thread(generate)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE  # with its version parameter, verbatim
    return response


async def animate(request: web.Request) -> web.Response:
    """Accept a photo and answer 202 with the job id at once; the page then polls."""
    service = request.app[SERVICE]
    form = await read_form(request)
    if "url" in form:
        return json_error(400, NO_LINKS)
    upload = form.get("photo")
    if not isinstance(upload, web.FileField):
        return json_error(400, NO_PHOTO)
    try:
        fields = AnimateForm.model_validate(
            {k: v for k, v in form.items() if isinstance(v, str) and v.strip()}
        )
    except ValidationError as exc:
        return json_error(400, _form_error(exc))
    spec = _spec(fields, service.settings.clip)
    if spec.seconds > service.settings.clip.max_seconds:
        return json_error(400, FIELD_ERRORS["seconds"])
    data = await asyncio.to_thread(upload.file.read)
    # A double click sends the same form token twice: the runner returns the first job.
    key = f"web:{fields.token}" if fields.token else ""
    # The file name is left out: names of personal photos can say who is in them.
    handle = await service.submit(JobRequest(Photo(data), spec, WEB_CHAT, key))
    return web.json_response(
        {"job_id": handle.id}, status=202, headers={"Location": f"/api/jobs/{handle.id}"}
    )


def _spec(fields: AnimateForm, clip: ClipDefaults) -> ClipSpec:
    """Fill what the form left out from the configured clip defaults."""
    return ClipSpec(
        prompt=fields.prompt,
        seconds=clip.seconds if fields.seconds is None else fields.seconds,
        fps=clip.fps,
        size=clip.size,
        motion=clip.motion if fields.motion is None else fields.motion,
        camera=fields.camera,
    )


def _form_error(exc: ValidationError) -> str:
    """Name the first bad field in plain words (never echo the value back)."""
    loc = exc.errors()[0]["loc"]
    return FIELD_ERRORS.get(str(loc[0]) if loc else "", "That form could not be read.")


async def job_status(request: web.Request) -> web.Response:
    """Return a job's state, progress text and, once done, its result or failure."""
    service = request.app[SERVICE]
    handle = await service.job(request.match_info["job_id"])
    if handle is None:
        return json_error(404, NO_JOB)
    return web.json_response(status_json(handle.status()), headers={"Cache-Control": "no-store"})


async def job_events(request: web.Request) -> web.StreamResponse:
    """Stream a job's status as server-sent events until it ends (``event: end``)."""
    handle = await request.app[SERVICE].job(request.match_info["job_id"])
    if handle is None:
        return json_error(404, NO_JOB)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    await response.prepare(request)
    try:
        async with asyncio.timeout(EVENTS_MAX_S):
            async for _ in handle.events():
                await response.write(_sse("status", status_json(handle.status())))
        await response.write(_sse("end", status_json(handle.status())))
    except (TimeoutError, ConnectionResetError):
        log.info("event stream of job %s closed early", handle.id)
    return response


def _sse(event: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def status_json(status: JobStatus) -> dict[str, Any]:
    """Return the polling shape of a job status, its texts rendered for people."""
    finished = status.state in (JobState.DONE, JobState.FAILED)
    progress = status.progress or Progress("done" if finished else "queued", 1.0 * finished)
    return {
        "state": str(status.state),
        "step": progress.step,
        "fraction": progress.fraction,
        "position": progress.queue_position,
        "message": progress_message(progress),
        "result": result_json(status.outcome) if status.outcome else None,
        "error": failure_message(status.error_code) if status.state is JobState.FAILED else None,
    }


def result_json(outcome: Outcome) -> dict[str, Any]:
    """Return a finished job's result: the clip's address and note, or the rejection."""
    clip = outcome.clip
    return {
        "status": outcome.status,
        "code": outcome.verdict.code,
        "message": outcome_message(outcome),
        "note": outcome.note,
        "clip_url": f"/clips/{clip.ledger_id}.mp4" if clip else None,
        "ledger_id": clip.ledger_id if clip else None,
    }


async def clip(request: web.Request) -> web.StreamResponse:
    """Stream a stored clip with Range support (browsers seek with it); 404 once taken down."""
    service = request.app[SERVICE]
    ledger_id = request.match_info["ledger_id"]
    path = await asyncio.to_thread(_servable_clip, service, ledger_id)
    if path is None:
        return json_error(404, NO_CLIP)
    return web.FileResponse(
        path,
        headers={
            "Content-Type": "video/mp4",
            "Content-Disposition": f'inline; filename="alive-{ledger_id}.mp4"',
            "Cache-Control": "private, no-cache",
        },
    )


def _servable_clip(service: AliveService, ledger_id: str) -> Path | None:
    """Return the clip's file when it exists and no moderator took it down."""
    try:
        path = service.clips.path(ledger_id)
    except ValueError:
        return None
    entry = service.services.ledger.get(ledger_id)
    if entry is None or entry.revoked or not path.is_file():
        return None
    return path


async def verify(request: web.Request) -> web.Response:
    """Check any uploaded file's provenance and answer with plain lines and the report."""
    form = await read_form(request)
    if "url" in form:
        return json_error(400, NO_LINKS)
    upload = form.get("file")
    if not isinstance(upload, web.FileField):
        return json_error(400, NO_FILE)
    data = await asyncio.to_thread(upload.file.read)
    if not data:
        return json_error(400, reason_message("empty"))
    report = await request.app[SERVICE].verify(data)
    public = public_report(report)
    # The page reads "lines" at the top; "report" is the public shape alive verify --json prints.
    return web.json_response({"lines": public["lines"], "report": public})
