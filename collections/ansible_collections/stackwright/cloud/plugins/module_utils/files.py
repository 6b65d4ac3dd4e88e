# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""Small file and output helpers the host-side modules share."""

from __future__ import annotations

import os
import tempfile


def tail(text, lines=10):
    """The last `lines` lines of a command's output, for an error message."""
    return "\n".join((text or "").strip().splitlines()[-lines:])


def write_atomically(path, text, encoding="utf-8", prepare=None, move=os.replace):
    """Write `text` to `path` so that a reader sees the old file or the whole new one, never a part.

    The text goes to a temporary file in the same directory (same filesystem, so the rename is atomic), is flushed to
    disk, `prepare(tmp_path)` may set its owner and mode, and `move(tmp_path, path)` puts it in place (os.replace, or
    AnsibleModule.atomic_move to keep the old file's owner and mode). The temporary file never outlives the call."""
    directory, name = os.path.split(path)
    handle, tmp_path = tempfile.mkstemp(dir=directory or ".", prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding=encoding) as tmp:
            tmp.write(text)
            tmp.flush()
            os.fsync(tmp.fileno())
        if prepare is not None:
            prepare(tmp_path)
        move(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
