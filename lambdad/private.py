"""What lambdad writes in the state folder is the owner's alone, whatever the umask: the store and
running.yaml hold the manifest's environment values, the logs what handlers print."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def make_private_folder(folder: Path) -> None:
    """Create `folder` (and its parents) if needed, and make it the owner's alone."""
    folder.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
    with contextlib.suppress(OSError):  # (a folder of another user's: left as it is)
        os.chmod(folder, FOLDER_MODE)
