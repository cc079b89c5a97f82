"""Exceptions raised by core; a moderation rejection is a value (`Verdict`), never one of these.

```
AnimateError                 base of everything core raises on purpose
├── InputError               the photo or file cannot be used (carries a reason code)
├── BackendError             an animator failed while running
│   └── BackendUnavailable   an animator cannot be loaded or is not installed
├── ProvenanceError          signing, keys or reading credentials failed: never send the clip
├── QueueError               a job could not be queued, found or run by a runner
│   ├── JobFailed            a job ended without an outcome (carries the failure's code)
│   └── JobCancelled         raised inside a running job that was cancelled, between steps
└── ConfigError              a setting is missing or invalid at start-up
```
"""

from __future__ import annotations


class AnimateError(Exception):
    """Base class of every error core raises on purpose."""


class InputError(AnimateError):
    """Raised by validation when the input cannot be used.

    Attributes:
        code: a stable reason code the adapters render (``"not_an_image"``, ``"too_large"``, ...).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class BackendError(AnimateError):
    """Raised when an animator fails while producing frames."""


class BackendUnavailable(BackendError):
    """Raised when an animator cannot be loaded (missing extra, missing model files)."""


class ProvenanceError(AnimateError):
    """Raised when signing, key handling or credential reading fails; the clip is never sent."""


class QueueError(AnimateError):
    """Raised when a runner cannot accept, find or finish a job."""


class JobFailed(QueueError):
    """Raised by a job handle's ``result()`` when the job failed; nothing was sent.

    Attributes:
        code: what stopped it (``"provenance"``, ``"backend"``, ``"internal"``, ``"lost_input"``).
    """

    def __init__(self, code: str) -> None:
        super().__init__(f"the job failed ({code})")
        self.code = code


class JobCancelled(QueueError):
    """Raised from a job's progress callback when someone cancelled it; its outcome is dropped."""


class ConfigError(AnimateError):
    """Raised at start-up when a setting is missing or invalid."""
