"""A SQLite store file deleted or replaced under a running engine.

Why: SQLite keeps writing to the file it opened; if someone deletes or
replaces it (a cleanup script, a restore from a backup), every later write
goes to a file nobody can open again, and no error ever comes. The engine
remembers the file's identity when it starts and compares it on its store
checks and at the stop.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL

from mmkit.store.private import make_private


class StoreFileWatch:
    """The identity (device, inode) of a SQLite store's file at start; nothing to watch for other databases."""

    def __init__(self, url: URL) -> None:
        self._database: str | None = None
        self._identity: tuple[int, int] | None = None
        if url.get_backend_name() == "sqlite" and url.database:
            self._database = url.database
            make_private(url.database)
            try:
                st = Path(url.database).stat()
            except OSError:
                return
            self._identity = (st.st_dev, st.st_ino)

    def problem(self) -> str | None:
        """Why writes to the store no longer reach the file it was (None: the same file, or not SQLite)."""
        if self._identity is None or self._database is None:
            return None
        try:
            st = Path(self._database).stat()
        except OSError:
            return f"store file {self._database} was deleted"
        if (st.st_dev, st.st_ino) != self._identity:
            return f"store file {self._database} was replaced"
        return None
