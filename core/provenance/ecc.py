"""The watermark's error-correcting code: a rate-1/2 convolutional code with soft Viterbi decoding.

The watermark (step 6 of the pipeline, and verify) spreads the coded bits over many tiles and
sums soft decisions per coded bit; this module turns those sums back into the payload bits.

The code is the NASA/CCSDS standard one (constraint length 7, generators 133 and 171 octal,
free distance 10), terminated with six zero bits so the decoder ends in the zero state. Soft
Viterbi decoding over it gains about 5 dB over plain repetition of the same number of copies.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

# NOTE: CCSDS 131.0-B convolutional code: K = 7, G1 = 133 (octal), G2 = 171 (octal).
CONSTRAINT = 7
GENERATORS = (0o133, 0o171)
TAIL = CONSTRAINT - 1
_STATES = 1 << TAIL


def coded_length(data_bits: int) -> int:
    """Return how many coded bits ``data_bits`` payload bits become (tail included)."""
    return len(GENERATORS) * (data_bits + TAIL)


def _parity(x: NDArray[np.int64]) -> NDArray[np.int64]:
    """Return the parity (XOR of all bits) of each non-negative integer below 2**7."""
    x = x ^ (x >> 4)
    x = x ^ (x >> 2)
    x = x ^ (x >> 1)
    return x & 1


@functools.cache
def _trellis() -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Return each state's two predecessors and the bipolar outputs of those transitions.

    A state is the last six input bits, newest in the top bit. Entering state ``s`` means the
    new bit was ``s >> 5``; the predecessor was ``((s << 1) & 63) | k`` for ``k`` in 0, 1, and
    the 7-bit register (newest bit on top, as the generators are written) is ``new << 6 | prev``.
    """
    states = np.arange(_STATES)
    prev = np.stack([((states << 1) & (_STATES - 1)) | k for k in (0, 1)], axis=1)
    register = ((states >> (TAIL - 1)) << TAIL)[:, None] | prev
    outs = np.stack([_parity(register & g) for g in GENERATORS], axis=-1)
    return prev.astype(np.int64), (1.0 - 2.0 * outs).astype(np.float64)  # bit 0 -> +1, 1 -> -1


def encode(bits: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Return the coded bits (0/1) of ``bits``, terminated with six zeros."""
    register = 0
    coded: list[int] = []
    for bit in [*bits.tolist(), *([0] * TAIL)]:
        register = (register >> 1) | (int(bit) << TAIL)
        coded.extend(bin(register & g).count("1") & 1 for g in GENERATORS)
    return np.array(coded, dtype=np.uint8)


def decode(soft: NDArray[np.floating]) -> tuple[NDArray[np.uint8], float]:
    """Return the most likely payload bits for ``soft`` and how well their codeword fits.

    Args:
        soft: one value per coded bit, positive for 0 and negative for 1, larger when surer.

    Returns:
        The payload bits (tail removed) and the normalised correlation of the re-encoded
        codeword with ``soft``: 1.0 when every coded bit agrees, near 0.3 for pure noise.
    """
    prev, outs = _trellis()
    steps = soft.reshape(-1, len(GENERATORS)).astype(np.float64)
    metric = np.full(_STATES, -np.inf)
    metric[0] = 0.0
    choices = np.empty((len(steps), _STATES), dtype=np.int8)
    for i, pair in enumerate(steps):
        branch = metric[prev] + outs @ pair  # (states, 2)
        choices[i] = np.argmax(branch, axis=1)
        metric = branch[np.arange(_STATES), choices[i]]
    state, bits = 0, np.empty(len(steps), dtype=np.uint8)
    for i in range(len(steps) - 1, -1, -1):
        bits[i] = state >> (TAIL - 1)
        state = int(prev[state, choices[i, state]])
    fit = float(metric[0] / max(np.abs(steps).sum(), 1e-12))
    return bits[: len(steps) - TAIL], fit
