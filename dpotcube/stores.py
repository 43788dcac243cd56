"""Published cubes on any fsspec filesystem: a copy that never leaves a half-written store in place."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import fsspec

from .errors import BuildError


def is_url(location: str | Path) -> bool:
    """True for `protocol://...` locations (s3://, gs://, memory://, file://), False for plain paths."""
    return "://" in str(location)


def join(folder_url: str, name: str) -> str:
    return f"{folder_url.rstrip('/')}/{name}"


def copy_to_url(local: Path, url: str) -> None:
    """Copy the directory `local` (a Zarr store, or a file) to `url`, replacing what is there.

    The copy goes to a sibling `.partial` name first and is moved into place when complete; on
    object stores the move is a copy and delete, so readers may see the old store until it ends.
    """
    fs, target = fsspec.core.url_to_fs(url)
    if Path(local).is_file():
        fs.put_file(str(local), target)
        return
    staging = f"{target}.{uuid.uuid4().hex[:8]}.partial"
    fs.put(str(local), staging, recursive=True)
    if fs.exists(target):
        fs.rm(target, recursive=True)
    fs.mv(staging, target, recursive=True)


def store_exists(url: str) -> bool:
    fs, target = fsspec.core.url_to_fs(url)
    return fs.exists(f"{target.rstrip('/')}/zarr.json")


def check_url(url: str, key: str) -> None:
    """Refuse, before any work, a URL whose protocol fsspec does not know or cannot load."""
    protocol = url.split("://", 1)[0]
    try:
        fsspec.get_filesystem_class(protocol)
    except (ValueError, ImportError) as exc:
        raise BuildError(
            f"`{key}` is {url}, but fsspec cannot write `{protocol}://` ({exc}). Install the filesystem's package "
            "(e.g. s3fs, gcsfs, adlfs) or fix the URL."
        ) from None


def replace_directory(new: Path, target: Path) -> None:
    """Move directory `new` to `target`, replacing any old one with two renames."""
    if target.exists():
        old = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.old")
        target.rename(old)
        new.rename(target)
        shutil.rmtree(old)
    else:
        new.rename(target)
