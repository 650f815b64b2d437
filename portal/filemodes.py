"""Files of the portal are the portal's alone: directories 0700, files 0600.

The data directory holds the database (personal-link hashes, messages, the outbox), the
generated secret key, attachments and the development mailbox. Other local users have no
business reading any of it, whatever umask the service manager or a shell handed down.

The umask is set by the process entry points (``sinetti`` in :mod:`portal.cli`,
:mod:`portal.asgi` for other ASGI servers) before anything is created: it is a property of
the whole process, and SQLite creates its ``-wal``/``-shm`` files and the database itself
with ``0644 & ~umask``, beyond the reach of any ``mode`` argument of ours. Not in
``create_app``: that is a factory that tests and plugin authors call inside their own
processes, which must not have their umask changed behind their back — and by the time it
runs, loading the settings may already have created the data directory. Code that creates
files itself (local storage, the development mailbox, the secret key) also passes 0600/0700
explicitly, so those hold under any umask.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077


def keep_files_private() -> None:
    """From now on this process (and its workers) creates files 0600 and directories 0700."""
    os.umask(PRIVATE_UMASK)


def tighten_data_dir(data_dir: Path) -> None:
    """Make an existing data directory of ours 0700 (one made before this rule was 0755).

    Closing the directory is enough to shut others out of everything below it. A directory
    owned by another user (a mount prepared by an administrator) is left alone.
    """
    try:
        info = data_dir.stat()
    except FileNotFoundError:
        return
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077 and info.st_uid == os.geteuid():
        data_dir.chmod(mode & 0o700)
        log.warning(
            "data directory %s was readable by other users (%o); it is now %o",
            data_dir,
            mode,
            mode & 0o700,
        )
