"""The ``alive`` command: the composition root of every process (serve, animate, verify, ...).

Settings are loaded here once and passed down; nothing else reads the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import AnimateError, ConfigError
from core.settings import Settings, load_settings
from core.types import Camera, ClipSpec, JobRequest, Photo

if TYPE_CHECKING:
    from core.ports import PhotoCheck, PromptCheck
    from core.service import AliveService
    from core.services import Decoder

log = logging.getLogger("alive")

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REJECTED = 0, 1, 2, 3


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``alive`` command line; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        settings = choose_backend(load_settings(), args)
        _setup_logging(settings, args.verbose or args.command in ("serve", "worker"))
        return int(args.run(args, settings))
    except ConfigError as exc:
        print(f"alive: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except AnimateError as exc:
        print(f"alive: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_ERROR


def _setup_logging(settings: Settings, verbose: bool) -> None:
    from bots.logs import configure_logging

    secrets = [t.get_secret_value() for t in (settings.telegram_token, settings.discord_token) if t]
    configure_logging(logging.INFO if verbose else logging.WARNING, secrets)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alive", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the web page and every adapter whose token is set")
    serve.add_argument(
        "--with-worker",
        action="store_true",
        help="with ALIVE_REDIS_URL: also take jobs from the queue in this process",
    )
    serve.set_defaults(run=cmd_serve)

    worker = sub.add_parser("worker", help="take jobs from the Redis queue (ALIVE_REDIS_URL)")
    worker.set_defaults(run=cmd_worker)
    worker.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        help="serve this worker's Prometheus metrics (step timings, rejections) on this port",
    )
    _backend_arguments(worker)

    animate = sub.add_parser("animate", help="run the whole pipeline on one photo, offline")
    animate.add_argument("photo", type=Path)
    animate.add_argument("-p", "--prompt", default="")
    animate.add_argument("-o", "--output", type=Path, help="clip path (default: PHOTO.alive.mp4)")
    animate.add_argument("--seconds", type=float)
    animate.add_argument("--size", type=int, help="long edge of the clip in pixels")
    animate.add_argument("--motion", type=int, choices=range(5))
    animate.add_argument("--camera", choices=[c.value for c in Camera], default="auto")
    animate.add_argument("--seed", type=int, default=0)
    animate.add_argument("--json", action="store_true", help="print one JSON object")
    _backend_arguments(animate)
    animate.set_defaults(run=cmd_animate)

    verify = sub.add_parser("verify", help="report on the provenance of any image or video")
    verify.add_argument("file", type=Path)
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(run=cmd_verify)

    moderate = sub.add_parser("moderate", help="run only the moderation checks")
    moderate.add_argument("--photo", type=Path)
    group = moderate.add_mutually_exclusive_group()
    group.add_argument("--prompt")
    group.add_argument("--prompts-file", type=Path, help="one prompt per line")
    moderate.add_argument("--json", action="store_true", help="one JSON object per line")
    moderate.set_defaults(run=cmd_moderate)

    keys = sub.add_parser("keys", help="the signing identity")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    init = keys_sub.add_parser("init", help="create a development CA and signing certificate")
    init.add_argument("--force", action="store_true", help="replace an existing one")
    init.set_defaults(run=cmd_keys_init)
    show = keys_sub.add_parser("show", help="print the identity in use")
    show.set_defaults(run=cmd_keys_show)

    bench = sub.add_parser("bench", help="time every pipeline step (bench/pipeline.py)")
    bench.add_argument("--quick", action="store_true", help="one small run (a smoke test)")
    bench.set_defaults(run=cmd_bench)
    return parser


def _backend_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend", choices=["procedural", "diffusers"], help="animator (default: the setting)"
    )
    parser.add_argument(
        "--model", help="diffusers model: a save_pretrained directory or a cached model id"
    )


def choose_backend(settings: Settings, args: argparse.Namespace) -> Settings:
    """Return settings with the animator chosen on the command line; ``--model`` means diffusers."""
    backend, model = getattr(args, "backend", None), getattr(args, "model", None)
    if model and backend == "procedural":
        raise ConfigError("--model is for --backend diffusers")
    update: dict[str, object] = {}
    if backend or model:
        animation = settings.animation.model_copy(update={"backend": backend or "diffusers"})
        update["animation"] = animation
    if model:
        update["diffusers"] = settings.diffusers.model_copy(update={"model": model})
    return settings.model_copy(update=update) if update else settings


def _clip_spec(args: argparse.Namespace, settings: Settings) -> ClipSpec:
    clip = settings.clip
    seconds = args.seconds if args.seconds is not None else clip.seconds
    size = args.size if args.size is not None else clip.size
    if not 0 < seconds <= clip.max_seconds:
        raise ConfigError(f"--seconds must be above 0 and at most {clip.max_seconds}")
    if not 64 <= size <= clip.max_size:
        raise ConfigError(f"--size must be between 64 and {clip.max_size}")
    return ClipSpec(
        prompt=args.prompt,
        seconds=seconds,
        fps=clip.fps,
        size=size,
        motion=args.motion if args.motion is not None else clip.motion,
        camera=Camera(args.camera),
        seed=args.seed,
    )


def cmd_animate(args: argparse.Namespace, settings: Settings) -> int:
    """``alive animate``: photo in, signed clip out, provenance note printed."""
    from bots.render import outcome_message
    from core import pipeline
    from core.services import build_services

    spec = _clip_spec(args, settings)
    data = _read_input(args.photo, settings.limits.max_bytes)
    services = build_services(settings)
    try:
        request = JobRequest(Photo(data, args.photo.name), spec)
        outcome = pipeline.run(request, services)
    finally:
        services.close()
    output = args.output or args.photo.with_suffix(".alive.mp4")
    if outcome.clip:
        output.write_bytes(outcome.clip.data)
    if args.json:
        print(
            json.dumps(
                {
                    "status": outcome.status,
                    "reason": None if outcome.ok else outcome.verdict.code,
                    "stage": None if outcome.ok else str(outcome.verdict.stage),
                    "message": outcome_message(outcome),
                    "ledger_id": outcome.clip.ledger_id if outcome.clip else None,
                    "output": str(output) if outcome.clip else None,
                    "timings": {k: round(v, 4) for k, v in outcome.timings.items()},
                }
            )
        )
    elif outcome.clip:
        print(outcome.note)
        print(f"Saved {output}")
    else:
        print(f"Rejected ({outcome.verdict.code}): {outcome_message(outcome)}")
    return EXIT_OK if outcome.ok else EXIT_REJECTED


def _read_input(path: Path, max_bytes: int) -> bytes:
    """Read a file, refusing to slurp something far larger than any accepted upload."""
    try:
        size = path.stat().st_size
        if size > max_bytes * 4:
            raise ConfigError(f"{path} is {size} bytes, far over the {max_bytes}-byte limit")
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    """``alive verify``: what every provenance layer says about a file."""
    from bots.render import public_report, verify_lines
    from core.provenance.verify import verify
    from core.services import build_services

    data = _read_input(args.file, settings.limits.max_bytes)
    services = build_services(settings)
    try:
        report = verify(data, services)
    finally:
        services.close()
    if args.json:
        print(json.dumps(public_report(report)))
    else:
        print("\n".join(verify_lines(report)))
    return EXIT_OK


@dataclasses.dataclass(frozen=True)
class _InputChecks:
    """The input checks alone (``core.service.InputChecks``), for ``alive moderate``."""

    settings: Settings
    decode: Decoder
    prompt_checks: Sequence[PromptCheck]
    photo_checks: Sequence[PhotoCheck]


def cmd_moderate(args: argparse.Namespace, settings: Settings) -> int:
    """``alive moderate``: only the checks, one verdict per input."""
    from core.moderation.limits import decode_photo
    from core.service import moderate
    from core.services import moderation_checks

    if not (args.photo or args.prompt is not None or args.prompts_file):
        raise ConfigError("give --photo, --prompt or --prompts-file")
    prompts: list[str | None] = [args.prompt] if args.prompt is not None else []
    if args.prompts_file:
        text = args.prompts_file.read_text(encoding="utf-8")
        prompts = [line for line in text.splitlines() if line.strip()]
    photo = Photo(_read_input(args.photo, settings.limits.max_bytes)) if args.photo else None
    # Only the checks: no signing identity, animator or database is needed to moderate.
    prompt_checks, photo_checks, _ = moderation_checks(settings)
    checks = _InputChecks(settings, decode_photo, prompt_checks, photo_checks)
    rejected = False
    for prompt in prompts or [None]:
        verdicts = moderate(checks, photo, prompt)
        first = next((v for v in verdicts if not v.allowed), None)
        rejected |= first is not None
        record = {
            "input": {"photo": str(args.photo) if args.photo else None, "prompt": prompt},
            "allowed": first is None,
            "reason": first.code if first else None,
            "stage": str(first.stage) if first else None,
            "scores": {v.check: dict(v.scores) for v in verdicts},
        }
        if args.json:
            print(json.dumps(record, ensure_ascii=False))
        else:
            verdict = "allowed" if first is None else f"rejected ({first.code})"
            subject = repr(prompt) if prompt is not None else str(args.photo)
            print(f"{subject}: {verdict}")
    return EXIT_REJECTED if rejected else EXIT_OK


def cmd_keys_init(args: argparse.Namespace, settings: Settings) -> int:
    """``alive keys init``: a development CA and signing certificate under the data dir."""
    from core.provenance.keys import init_dev_identity

    if settings.signing_cert or settings.signing_key:
        print("A production identity is configured (ALIVE_SIGNING_CERT/KEY); nothing to do.")
        return EXIT_OK
    keys_dir = settings.data_dir / "keys"
    existed = (keys_dir / "cert.pem").exists() and not args.force
    init_dev_identity(keys_dir, force=args.force)
    state = "already present" if existed else "created"
    print(f"Development signing identity {state} in {keys_dir}.")
    print("WARNING: a development identity is for trying alive out, not for production:")
    print("point ALIVE_SIGNING_CERT, ALIVE_SIGNING_KEY and ALIVE_TRUST_ANCHORS at your own.")
    return EXIT_OK


def cmd_keys_show(args: argparse.Namespace, settings: Settings) -> int:
    """``alive keys show``: the identity in use."""
    from core.provenance.keys import describe_identity, load_identity

    identity = load_identity(
        settings.signing_cert,
        settings.signing_key,
        settings.trust_anchors,
        keys_dir=settings.data_dir / "keys",
    )
    for key, value in describe_identity(identity).items():
        print(f"{key}: {value}")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    """``alive bench``: run bench/pipeline.py from the source tree."""
    import runpy

    script = Path(__file__).resolve().parent.parent / "bench" / "pipeline.py"
    if not script.exists():
        raise ConfigError("bench/pipeline.py is only in a source checkout")
    sys.argv = [str(script), *(["--quick"] if args.quick else [])]
    runpy.run_path(str(script), run_name="__main__")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """``alive serve``: the web page, the chat adapters with a token, and the job worker."""
    asyncio.run(serve(settings, with_worker=args.with_worker))
    return EXIT_OK


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """``alive worker``: run jobs from the Redis queue until SIGINT/SIGTERM."""
    if not settings.redis_url:
        raise ConfigError("alive worker needs ALIVE_REDIS_URL (the queue it takes jobs from)")
    if args.metrics_port:
        from prometheus_client import start_http_server

        # A daemon thread serving /metrics; the worker has no web page of its own.
        start_http_server(args.metrics_port)
    asyncio.run(work(settings))
    return EXIT_OK


async def work(settings: Settings) -> None:
    """Take jobs until a signal; a running job goes back to the queue for another worker."""
    from core.worker import run_worker

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_worker(settings, stop)
    log.info("worker stopped")


async def serve(settings: Settings, *, with_worker: bool = False) -> None:
    """Open the service, run every adapter until SIGINT/SIGTERM, then close in order."""
    from aiohttp import web

    from bots.web.app import make_app
    from core.service import open_service

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with open_service(settings, with_worker=with_worker) as service:
        runner = web.AppRunner(make_app(service), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, settings.web_host, settings.web_port).start()
            log.info("web page on http://%s:%d", settings.web_host, settings.web_port)
            adapters = [stop.wait(), *_chat_adapters(service, settings, stop)]
            await asyncio.gather(*adapters)
        finally:
            await runner.cleanup()
    log.info("stopped")


def _chat_adapters(
    service: AliveService, settings: Settings, stop: asyncio.Event
) -> list[Coroutine[Any, Any, None]]:
    """Return the coroutines of the chat adapters whose token is set."""
    adapters: list[Coroutine[Any, Any, None]] = []
    if settings.telegram_token:
        from bots.telegram_bot import run_telegram

        adapters.append(run_telegram(service, settings, stop))
    if settings.discord_token:
        from bots.discord_bot import run_discord

        adapters.append(run_discord(service, settings, stop))
    return adapters


if __name__ == "__main__":
    sys.exit(main())
