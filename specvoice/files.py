"""Files written so that no reader ever sees half of one: outputs and cache folders are built under a
temporary name beside their destination and renamed into place. Used by every pipeline and the bench."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from .errors import SpecvoiceError

# Room left in a file name for tempfile's random part and the suffix, under the usual 255-byte limit.
_NAME_ROOM = 200


def cache_dir() -> Path:
    """$SPECVOICE_CACHE, else $XDG_CACHE_HOME/specvoice, else ~/.cache/specvoice."""
    root = os.environ.get("SPECVOICE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "specvoice"
    )
    return Path(root)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _temporary_prefix(name: str) -> str:
    """A hidden prefix naming the destination, cut so the temporary name fits the file system's limit."""
    encoded = name.encode("utf-8")[:_NAME_ROOM].decode("utf-8", errors="ignore")
    return f".{encoded}."


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write a whole file or nothing (see fill_atomic)."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    fill_atomic(path, lambda temporary: temporary.write_bytes(data))


def fill_atomic(path: Path, fill: Callable[[Path], None]) -> None:
    """Write a whole file or nothing: `fill` writes a temporary file beside `path`, renamed over it once
    complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=_temporary_prefix(path.name), suffix=".partial")
    os.close(handle)
    try:
        fill(Path(temporary))
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def os_reason(exc: OSError) -> str:
    """What the operating system said, as a user reads it: "read-only file system", "file name too long"."""
    return (exc.strerror or str(exc)).lower()


def prepare_folder(folder: Path, destination: Path | None = None) -> None:
    """Create `folder` if needed and make sure a file can be written in it, before any slow work: by creating
    one, since permission bits cannot tell (root passes them, and then a read-only file system or /proc still
    refuses). Errors name `destination` (the file to be written there), else the folder."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise SpecvoiceError(f"{folder}: exists and is not a folder") from None
    except OSError as exc:
        raise SpecvoiceError(f"{folder}: cannot create the output folder ({os_reason(exc)})") from None
    try:
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".specvoice-probe.")
    except OSError as exc:
        raise SpecvoiceError(f"{destination or folder}: cannot write there ({os_reason(exc)})") from None
    os.close(handle)
    os.unlink(probe)


def publish_folder(destination: Path, fill: Callable[[Path], None]) -> None:
    """Build a folder in a staging folder beside it and rename it into place, so a reader never sees a
    half-written folder; when another process published it first, theirs is kept."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=destination.parent, prefix=_temporary_prefix(destination.name)))
    try:
        fill(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    try:
        staging.rename(destination)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not destination.exists():
            raise
