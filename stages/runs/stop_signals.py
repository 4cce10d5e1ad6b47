"""Stopping a run by signal: one line, the lock released, and no worker process left behind.

- `raise_on_termination()`: SIGTERM and SIGHUP raise `Terminated` (a `KeyboardInterrupt`, so every `finally`
  and lock release runs as on Ctrl-C; a resume from the last checkpoint stays exact); a second one releases
  the locks and exits at once.
- `worker_init()`: run in each pipeline worker. The worker dies with the main process (Linux parent-death
  signal, and a parent check for the rest) and leaves Ctrl-C to the main process, which stops it.
- `stop_workers(pool)`: cancel queued jobs and end the running ones within seconds.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

GRACE_S = 2.0  # a worker's time to release its run lock before it is killed


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM or SIGHUP."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signal_name = signal.Signals(signum).name
        self.exit_code = 128 + signum


_received: list[int] = []


def _raise_terminated(signum, frame):
    _received.append(signum)
    if len(_received) > 1:  # a second signal (the first was swallowed, or unwinding hangs): end now
        _exit_now(signum, frame)
    raise Terminated(signum)


def _exit_now(signum, frame):
    """A worker's SIGTERM: release its run locks and exit, without unwinding (an exception raised from a
    signal handler can land in a destructor and be ignored; a worker must not train on)."""
    from stages.runs.lock import release_held_locks

    release_held_locks()
    os._exit(128 + signum)


def raise_on_termination() -> None:
    """SIGTERM / SIGHUP raise `Terminated` in the main thread (no-op off the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _raise_terminated)


def _die_with_parent(parent: int) -> None:
    """Parent death -> SIGTERM to this worker: prctl(PR_SET_PDEATHSIG) on Linux, else a polling thread."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(143)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(GRACE_S)
        os._exit(143)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def worker_init(parent: int) -> None:
    """Initializer of a pipeline worker process (`parent`: the main process's pid)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the main process decides
    signal.signal(signal.SIGTERM, _exit_now)
    _die_with_parent(parent)


def stop_workers(pool) -> None:
    """Cancel every queued job of a `ProcessPoolExecutor`, SIGTERM its workers (they release their run locks
    and exit at once), SIGKILL any still alive after `GRACE_S`."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # (shutdown forgets them)
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + GRACE_S
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(1.0)
