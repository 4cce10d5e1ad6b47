"""The run lock: `gift_run.lock` in a directory names the one process writing there (pid, host, start).

Created with O_EXCL, so of two runs started together exactly one gets it. A lock whose owner is gone
(same host, pid no longer alive) is taken over with a warning; another host's lock never is.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from pathlib import Path

from stages.runs.folder import LOCK_NAME, RunDirError

logger = logging.getLogger(__name__)


_HELD: set[Path] = set()  # lock files this process holds now (a lock of our own pid not in here is stale)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _is_stale(owner: dict, lock: Path) -> bool:
    """A lock whose owner is gone: same host and a dead pid (or our own pid, from an earlier call)."""
    pid, host = owner.get("pid"), owner.get("host")
    if not owner:
        return True
    if host != socket.gethostname() or not isinstance(pid, int):
        return False  # another host's process cannot be checked from here
    return not _pid_alive(pid) or (pid == os.getpid() and lock.resolve() not in _HELD)


def _in_use(out: Path, owner: dict, lock: Path) -> RunDirError:
    return RunDirError(
        f"{out} is in use by another run (pid {owner.get('pid')} on {owner.get('host')}, since "
        f"{owner.get('started')}); wait for it to finish or choose another --output_dir (if that "
        f"process is gone, delete {lock})"
    )


def check_not_locked(out: Path) -> None:
    """Refuse a directory another live run holds, without writing anything (before any other check)."""
    lock = out / LOCK_NAME
    try:
        owner = json.loads(lock.read_text())
    except (OSError, ValueError):
        return  # no lock, or one being written: acquire_lock decides
    if isinstance(owner, dict) and not _is_stale(owner, lock):
        raise _in_use(out, owner, lock)


def acquire_lock(out: Path) -> Path:
    """Create `out/gift_run.lock` exclusively (O_EXCL); refuse a live owner, take over a dead one's lock."""
    lock = out / LOCK_NAME
    me = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(sys.argv)[:500],
    }
    for _ in range(5):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = json.loads(lock.read_text())
            except FileNotFoundError:
                continue  # released meanwhile: try again
            except ValueError:  # being written this instant, or garbage left long ago
                if time.time() - lock.stat().st_mtime < 30:
                    raise RunDirError(
                        f"{out} is in use by another run (its lock {lock} is being written); "
                        "wait for it to finish or choose another --output_dir"
                    ) from None
                owner = {}
            pid, host = owner.get("pid"), owner.get("host")
            if not _is_stale(owner, lock):
                raise _in_use(out, owner, lock) from None
            # Rename first: of two processes taking over the same stale lock, only one rename succeeds.
            try:
                os.rename(lock, lock.with_name(f"{LOCK_NAME}.stale-{os.getpid()}"))
            except FileNotFoundError:
                continue
            lock.with_name(f"{LOCK_NAME}.stale-{os.getpid()}").unlink(missing_ok=True)
            logger.warning("%s: took over a stale lock of pid %s on %s (that process is gone)", out, pid, host)
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(me))
        _HELD.add(lock.resolve())
        return lock
    raise RunDirError(f"{out}: could not take the run lock {lock}; retry")


def release_lock(lock: Path) -> None:
    """Remove the lock if this process still owns it."""
    _HELD.discard(lock.resolve())
    try:
        if json.loads(lock.read_text()).get("pid") == os.getpid():
            lock.unlink()
    except (OSError, ValueError):
        pass


def release_held_locks() -> None:
    """Release every lock this process holds (a process ending at once, on a signal, without unwinding)."""
    for lock in list(_HELD):
        release_lock(lock)
