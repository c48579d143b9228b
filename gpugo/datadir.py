"""The server's own files: the data directory (0700), the embedded database (0600).

The data directory holds the license signing key and, by default, the SQLite database
with every account's password hash and every token's hash: nobody but the server's
user may list or read it, whatever the umask.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger("gpugo.datadir")

PRIVATE_DIRECTORY = 0o700
PRIVATE_FILE = 0o600
# Files the server writes into its data directory; one of them present means the directory
# is the server's, so an older, looser mode of it may be tightened.
SERVER_FILES = ("license_ed25519.pem", "gpugo.sqlite3")  # keys.py, settings.py
# SQLite's companions of a database file; it creates them with the database file's mode.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def _tighten(path: Path, mode: int) -> None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    current = stat.S_IMODE(info.st_mode)
    # Only what this user owns, and never a shared directory (sticky, like /tmp).
    if not current & ~mode or info.st_uid != os.getuid() or current & stat.S_ISVTX:
        return
    try:
        os.chmod(path, current & mode)
    except OSError:
        log.warning("cannot restrict %s to mode %o", path, mode)


def _create_private_directory(path: Path) -> bool:
    """Create ``path`` 0700 (its missing parents as the umask says); False if it existed."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=PRIVATE_DIRECTORY)
    except FileExistsError:
        return False  # another process (a second instance, `gpugo migrate`) made it first
    return True


def ensure_data_directory(data_dir: Path) -> None:
    """Create the data directory 0700; tighten it if it already holds the server's files
    (an older version created it with the umask's mode, usually 0755)."""
    created = _create_private_directory(data_dir)
    if not created and any((data_dir / name).exists() for name in SERVER_FILES):
        _tighten(data_dir, PRIVATE_DIRECTORY)


def sqlite_path(database_url: str) -> Path | None:
    """The file of a ``sqlite://`` URL; None for another database or an in-memory one."""
    if urlsplit(database_url).scheme != "sqlite":
        return None
    path = database_url.removeprefix("sqlite://")
    if not path or path == ":memory:":
        return None
    return Path(os.path.abspath(path))


def ensure_private_database(database_url: str, data_dir: Path) -> None:
    """Create an SQLite database file 0600 before SQLite does (it would use 0644, and its
    -wal and -shm files copy the database file's mode). A database in the server's data
    directory is tightened if an older version left it readable by others."""
    path = sqlite_path(database_url)
    if path is None:
        return
    # A directory named by GPUGO_DATABASE_URL is created private, never changed if it exists.
    _create_private_directory(path.parent)
    try:
        # An empty file is an empty SQLite database.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except FileExistsError:
        if path.parent.resolve() == data_dir.resolve():
            ensure_data_directory(data_dir)
            for name in ("", *SQLITE_COMPANIONS):
                _tighten(path.with_name(path.name + name), PRIVATE_FILE)
