"""Fail when the virtualenv is inconsistent in a way that matters (run by ``make test``).

``pip check`` always reports mediapipe's deliberately skipped dependencies; those lines are
expected. Anything else it reports, or a wrong OpenCV, protobuf or torch build, is an error.
"""

from __future__ import annotations

import contextlib
import importlib.metadata as metadata
import subprocess
import sys

EXPECTED = {
    "mediapipe 0.10.14 requires jax, which is not installed.",
    "mediapipe 0.10.14 requires jaxlib, which is not installed.",
    "mediapipe 0.10.14 requires opencv-contrib-python, which is not installed.",
    "mediapipe 0.10.14 requires sounddevice, which is not installed.",
}
# Each of these writes its own cv2/ over opencv-python-headless's.
CONFLICTING_OPENCV = ("opencv-python", "opencv-contrib-python", "opencv-contrib-python-headless")


def problems() -> list[str]:
    """Return every inconsistency found, in plain words."""
    found = []
    result = subprocess.run(
        [sys.executable, "-m", "pip", "check"], capture_output=True, text=True, check=False
    )
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    found += [
        f"pip check: {line}"
        for line in lines
        if line not in EXPECTED and not line.startswith("No broken requirements")
    ]
    for name in CONFLICTING_OPENCV:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found.append(f"{name} {metadata.version(name)} is installed: uninstall it")
    protobuf = metadata.version("protobuf")
    if int(protobuf.split(".")[0]) >= 5:
        found.append(f"protobuf {protobuf}: mediapipe 0.10.14 needs protobuf < 5")
    return found


def main() -> int:
    """Print the problems; exit 1 if there are any."""
    found = problems()
    for line in found:
        print(f"environment: {line}", file=sys.stderr)
    if not found:
        print("environment: consistent")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
