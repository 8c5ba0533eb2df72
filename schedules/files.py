"""Reading the operator's files safely: regular files only, bounded in size, never blocking."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def read_regular_file(path: str | Path, max_bytes: int, *, follow_symlinks: bool = True) -> bytes:
    """The bytes of the regular file at ``path``, at most ``max_bytes`` of them.

    Raises ``OSError``: ``FileNotFoundError``, ``PermissionError``, ``IsADirectoryError``,
    or a plain ``OSError`` whose ``strerror`` says "not a regular file" (a FIFO, a device,
    a file under /proc) or "larger than N bytes". Opened without blocking, so a FIFO
    cannot stall the caller.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    descriptor = os.open(path, flags)
    try:
        info = os.fstat(descriptor)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(21, "is a folder, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise OSError(0, "not a regular file")
        if info.st_size > max_bytes:
            raise OSError(0, f"larger than {max_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        while size <= max_bytes:
            chunk = os.read(descriptor, max_bytes + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > max_bytes:
            raise OSError(0, f"larger than {max_bytes} bytes")
        return b"".join(chunks)
    finally:
        os.close(descriptor)
