"""One run per work dir: an advisory lock file naming its holder, cleanup of what a killed run left behind, the log.

The lock is ``fcntl.flock`` on ``WORK_DIR/.bnnas.lock``: the kernel drops it when the holder dies (even by kill -9),
so a lock that can be taken is never held by a live run. The file also records pid, host and start time, which
turn "busy" into a message naming the holder and let a run that finds a dead holder's record say that it takes over.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import socket
import sys
import time
from pathlib import Path

from bnnas.errors import BNNASError

log = logging.getLogger("bnnas")

LOCK_NAME = ".bnnas.lock"


def _describe(holder: dict) -> str:
    return (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, started {holder.get('started', '?')}"
            + (f" ({holder['command']})" if holder.get("command") else ""))


def _read_holder(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 65536)
    try:
        doc = json.loads(raw.decode() or "{}")
    except (UnicodeDecodeError, ValueError):
        return {"pid": "?", "host": "?", "started": "?"} if raw else {}
    return doc if isinstance(doc, dict) else {}


def ensure_dir(path: Path, what: str = "work dir") -> Path:
    """``mkdir -p`` with a one-line error when a parent is a file or the place is not writable."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise BNNASError(f"cannot create {what} {path}: a file of that name is in the way")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BNNASError(f"cannot create {what} {path}: {e.strerror or e}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise BNNASError(f"{what} {path} is not writable")
    return path


class WorkDirLock:
    """Exclusive use of a work dir by one process. ``acquire`` raises a one-line ``BNNASError`` if another holds it."""

    def __init__(self, work_dir: str | os.PathLike, command: str | None = None):
        self.work_dir = Path(work_dir)
        self.path = self.work_dir / LOCK_NAME
        self.command = command if command is not None else " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:300]
        self.fd: int | None = None
        self.acquired_at: float | None = None
        self.took_over: dict | None = None  # the dead holder's record, when a stale lock was taken over

    def acquire(self) -> "WorkDirLock":
        ensure_dir(self.work_dir)
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise BNNASError(f"cannot create the lock file {self.path}: {e.strerror or e}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise BNNASError(f"work dir {self.work_dir} is in use by another run ({_describe(holder)}); "
                                 "wait for it to finish or choose another --work-dir") from None
            # the releasing holder unlinks the file while still locked: if ours was unlinked meanwhile, start over
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = _read_holder(fd)
        if previous:
            self._check_stale(fd, previous)
        self.fd = fd
        self.acquired_at = time.time()
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(self.acquired_at)),
                  "command": self.command}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        os.fsync(fd)
        return self

    def _check_stale(self, fd: int, previous: dict) -> None:
        # the flock was free, so a same-host holder has exited, even if its pid now belongs to another process
        if previous.get("host") not in (None, socket.gethostname()):
            # flock may not reach across hosts on a network file system: do not guess that the other host's run died
            os.close(fd)
            raise BNNASError(f"work dir {self.work_dir} has a lock of another host ({_describe(previous)}); "
                             f"if that run is gone, delete {self.path} and start again")
        self.took_over = previous  # reported by claim_work_dir once logging goes to the work dir

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.unlink(self.path)  # while still locked, so no newcomer can lock the old inode after us
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> "WorkDirLock":
        return self.acquire() if self.fd is None else self

    def __exit__(self, *exc) -> None:
        self.release()


# tempfile.mkstemp(prefix=".NAME.", suffix=".tmp") as bnnas.outputs.checkpoint calls it: 8 random characters
_TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def remove_stale_temp_files(work_dir: Path, older_than: float, depth: int = 2) -> list[Path]:
    """Delete the ``.NAME.XXXXXXXX.tmp`` files of interrupted atomic writes (bnnas.outputs.checkpoint) older than
    ``older_than``, in ``work_dir`` and its subdirs down to ``depth`` (not hidden ones: a work dir may be anywhere)."""
    removed = []
    for entry in sorted(os.scandir(work_dir), key=lambda e: e.name):
        p = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                if depth > 1 and not entry.name.startswith("."):
                    removed += remove_stale_temp_files(p, older_than, depth - 1)
                continue
            st = entry.stat(follow_symlinks=False)
            if entry.is_file(follow_symlinks=False) and _TEMP_NAME.match(entry.name) and st.st_mtime < older_than:
                p.unlink()
                removed.append(p)
                log.warning("removed %s (%.1f MB), left by an interrupted write", p, st.st_size / 2**20)
        except FileNotFoundError:
            continue
    return removed


def setup_logging(work_dir: Path, main: bool = True) -> None:
    """The ``bnnas`` logger to stdout, and on the main process also to ``work_dir/log.txt``."""
    work_dir.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger("bnnas")
    root.setLevel(logging.INFO if main else logging.WARNING)
    root.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    for h in (logging.StreamHandler(sys.stdout), *([logging.FileHandler(work_dir / "log.txt")] if main else [])):
        h.setFormatter(fmt)
        root.addHandler(h)
    root.propagate = False


def claim_work_dir(work_dir: Path, is_main: bool = True, dist_enabled: bool = False) -> WorkDirLock | None:
    """Rank 0 locks ``work_dir``; then every rank sets up logging (log.txt on rank 0), and rank 0 reports a taken-over
    lock and removes the temp files of interrupted writes. Under torchrun every rank learns whether the lock worked."""
    lock, error = None, None
    if is_main:
        try:
            lock = WorkDirLock(work_dir).acquire()
        except BNNASError as e:
            error = str(e)
    if dist_enabled:
        import torch.distributed as tdist

        box = [error]
        tdist.broadcast_object_list(box, src=0)
        error = box[0]
    if error is not None:
        raise BNNASError(error if is_main else f"rank 0 could not start: {error}")
    try:
        setup_logging(Path(work_dir), is_main)  # after the lock: a refused run must not write into the holder's log
        if lock is not None:
            if lock.took_over:
                log.warning("work dir %s: the run that held it (%s) is gone; taking over its lock", work_dir,
                            _describe(lock.took_over))
            remove_stale_temp_files(work_dir, lock.acquired_at)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return lock


# -- directories a tool owns (make_coco_demo) --------------------------------------------------------------------------
def claim_output_dir(out: Path, marker: str, owned: tuple[str, ...]) -> Path:
    """Make ``out`` ready for a fresh write: refuse a non-empty dir without ``marker`` (not ours); in one with the
    marker, delete the ``owned`` entries so no stale file survives next to the new ones."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BNNASError(f"--out {out} is a file, not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not (out / marker).is_file():
            raise BNNASError(f"--out {out} is not empty and was not written by this tool; choose an empty or new dir")
        for name in owned:
            p = out / name
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.exists() or p.is_symlink():
                p.unlink()
    ensure_dir(out, "--out dir")
    (out / marker).write_text("written by bnnas; a re-run replaces this dir's generated files\n")
    return out


def hold_work_dir(stack: contextlib.ExitStack, work_dir: Path, is_main: bool = True,
                  dist_enabled: bool = False) -> None:
    """:func:`claim_work_dir`, with the lock released when ``stack`` closes (however the run ends)."""
    lock = claim_work_dir(work_dir, is_main, dist_enabled)
    if lock is not None:
        stack.callback(lock.release)
