"""The disk spool: what could not be exported by the shutdown deadline survives a restart.

Off unless ``AGENTPORTAL_OTEL_SPOOL_DIR`` names a directory; ``AGENTPORTAL_OTEL_SPOOL_MAX_BYTES``
bounds it (default 512 MiB). Only the export side touches it, never a request:

* **Writing** happens at shutdown only, on the exporting thread: a batch that
  :class:`~agentportal_otel._retry.Delivery` could not send by the deadline is written as the
  encoded OTLP request it would have POSTed, atomically (write a dot-file, ``fsync``, rename,
  ``fsync`` the directory). A request that would push the directory over its bound is dropped
  and counted (``reason=spool_full``).
* **Layout**: every process writes into a subdirectory of its own, ``<host>-<pid>-<random>``,
  holding an exclusive ``flock`` on its ``.lock`` file for as long as it lives. The kernel
  releases that lock when the process dies, however it dies, so "the lock can be taken" means
  "its owner is gone". Files are ``<time_ns>-<seq>.<signal>.otlp``: a magic line, the body's
  length and CRC-32, then the body.
* **Replay**: at start (and every :data:`RESCAN_INTERVAL_S` after, so the spool of a worker that
  died beside us is picked up too), a daemon thread adopts every subdirectory whose lock it can
  take, sends the files oldest first through the same :class:`~agentportal_otel._retry.OTLPSender`
  as live data, with the same backoff, and deletes each after a 2xx. Live exports wait for the
  first pass, so spooled requests go out first; the proxy's start never waits. A corrupt or
  truncated file is moved to ``corrupt/`` with one warning. An emptied subdirectory is removed.
  Several processes (proxy workers, replicas on one host or volume) can share one directory:
  each subdirectory is adopted by exactly one of them. The directory must be on a file system
  with working ``flock`` (a local disk or a Docker volume, not every network file system).

Delivery is at least once: a request the collector took whose answer was lost (a timeout, or
death between the 2xx and the delete) is sent again.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from agentportal_otel._retry import ExportControl, OTLPSender, Outcome

_logger = logging.getLogger("agentportal_otel")

MAGIC: Final = b"APOTLP1\n"
_LENGTH_CRC: Final = struct.Struct(">II")
HEADER_SIZE: Final = len(MAGIC) + _LENGTH_CRC.size
SUFFIX: Final = ".otlp"
LOCK_NAME: Final = ".lock"
CORRUPT_DIR: Final = "corrupt"
SIGNALS: Final = ("traces", "metrics")
RESCAN_INTERVAL_S: Final = 30.0


def encode_file(body: bytes) -> bytes:
    return MAGIC + _LENGTH_CRC.pack(len(body), zlib.crc32(body)) + body


def decode_file(data: bytes) -> bytes:
    """The request body of a spool file; :class:`ValueError` saying why when it is damaged."""
    if len(data) < HEADER_SIZE or not data.startswith(MAGIC):
        raise ValueError("not a spool file (bad header)")
    length, crc = _LENGTH_CRC.unpack_from(data, len(MAGIC))
    body = data[HEADER_SIZE:]
    if len(body) != length:
        raise ValueError(f"truncated ({len(body)} of {length} bytes)")
    if zlib.crc32(body) != crc:
        raise ValueError("checksum mismatch")
    return body


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _try_lock(path: Path, create: bool) -> int | None:
    """An fd holding an exclusive lock on ``path``, or ``None`` if another process holds it."""
    try:
        fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


class Spool:
    """One process's view of a shared spool directory (see the module docstring)."""

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._own_dir: Path | None = None
        self._own_lock: int | None = None
        self._adopted: dict[Path, int] = {}
        self._seq = 0
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        self.written = 0
        """Requests written by this process."""
        self.replayed = 0
        """Spooled requests this process sent (and deleted)."""

    # --- writing ------------------------------------------------------------------------------
    def write(self, signal: str, body: bytes) -> bool:
        """Store one encoded request; ``False`` if the spool is full or the write failed."""
        data = encode_file(body)
        with self._lock:
            try:
                used = self.used_bytes()
                if used + len(data) > self.max_bytes:
                    self._warn_once(
                        "full",
                        "agentportal-otel: the spool %s is full (%d of %d bytes, AGENTPORTAL_OTEL_SPOOL_MAX_BYTES); "
                        "requests that do not fit are dropped and their spans counted with reason=spool_full",
                        self.directory,
                        used,
                        self.max_bytes,
                    )
                    return False
                own = self._claim_own_dir()
                self._seq += 1
                name = f"{time.time_ns():020d}-{self._seq:06d}.{signal}{SUFFIX}"
                tmp = own / f".{name}.tmp"
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.rename(tmp, own / name)
                _fsync_dir(own)
            except OSError as error:
                self._warn_once(
                    "write",
                    "agentportal-otel: writing to the spool %s failed (%s: %s); unsent telemetry is lost",
                    self.directory,
                    type(error).__name__,
                    error.strerror or error,
                )
                return False
            self.written += 1
            return True

    def _claim_own_dir(self) -> Path:
        if self._own_dir is not None:
            return self._own_dir
        # Locked before it gets its visible name, so no other process can mistake it for a dead one's.
        staging = self.directory / f".new-{self._owner}"
        staging.mkdir(mode=0o700)
        fd = _try_lock(staging / LOCK_NAME, create=True)
        if fd is None:
            raise OSError(f"cannot lock {staging / LOCK_NAME}")
        final = self.directory / self._owner
        os.rename(staging, final)
        _fsync_dir(self.directory)
        self._own_dir, self._own_lock = final, fd
        return final

    def used_bytes(self) -> int:
        """Bytes of every request file in the directory (all processes')."""
        total = 0
        with contextlib.suppress(FileNotFoundError):
            for sub in os.scandir(self.directory):
                if not sub.is_dir() or sub.name == CORRUPT_DIR:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    for entry in os.scandir(sub.path):
                        if entry.name.endswith((SUFFIX, ".tmp")):
                            with contextlib.suppress(FileNotFoundError):
                                total += entry.stat().st_size
        return total

    # --- replay -------------------------------------------------------------------------------
    def start_replay(self, senders: Mapping[str, OTLPSender], control: ExportControl, max_backoff_s: float) -> None:
        """Replay on a daemon thread (see the module docstring); sets ``control.replay_done``."""
        thread = threading.Thread(
            target=self._replay_forever,
            args=(senders, control, max_backoff_s),
            name="agentportal-otel-spool-replay",
            daemon=True,
        )
        thread.start()

    def _replay_forever(self, senders: Mapping[str, OTLPSender], control: ExportControl, max_backoff_s: float) -> None:
        try:
            while not control.final:
                try:
                    self.replay_once(senders, control, max_backoff_s)
                except Exception as error:  # never kill the thread: the next pass retries
                    _logger.warning("agentportal-otel: spool replay failed: %s", type(error).__name__)
                control.replay_done.set()
                control.sleep(RESCAN_INTERVAL_S)
        finally:
            control.replay_done.set()

    def replay_once(self, senders: Mapping[str, OTLPSender], control: ExportControl, max_backoff_s: float) -> int:
        """Adopt what dead processes left, send it oldest first; the number of requests sent."""
        sent = 0
        for path in self._adoptable_files():
            if control.final:
                break
            signal = path.name[: -len(SUFFIX)].rsplit(".", 1)[-1]
            sender = senders.get(signal)
            if sender is None:
                continue  # this process does not export that signal; a later one may
            try:
                body = decode_file(path.read_bytes())
            except FileNotFoundError:
                continue
            except (OSError, ValueError) as error:
                self._move_aside(path, str(error))
                continue
            if not self._send(sender, body, control, max_backoff_s, path):
                break
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            sent += 1
            self.replayed += 1
        self._release_empty()
        if sent:
            _logger.info("agentportal-otel: sent %d spooled requests from %s", sent, self.directory)
        return sent

    def _send(self, sender: OTLPSender, body: bytes, control: ExportControl, max_backoff_s: float, path: Path) -> bool:
        backoff = min(1.0, max_backoff_s)
        while True:
            attempt = sender.send(body, control.cap_timeout(sender.timeout_s))
            if attempt.outcome is Outcome.SENT:
                return True
            if attempt.outcome is Outcome.REJECTED:
                self._warn_once(
                    f"rejected-{attempt.status}",
                    "agentportal-otel: the collector rejected spooled request %s with %s; it is dropped "
                    "(further rejections with this status are not logged)",
                    path.name,
                    attempt.describe(),
                )
                return True
            if control.final:
                return False
            wait = attempt.retry_after_s if attempt.retry_after_s is not None else backoff
            control.sleep(wait)
            backoff = min(backoff * 2, max_backoff_s)

    def _adoptable_files(self) -> list[Path]:
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return []
        for entry in entries:
            path = Path(entry.path)
            if (
                not entry.is_dir()
                or entry.name.startswith(".")
                or entry.name == CORRUPT_DIR
                or path == self._own_dir
                or path in self._adopted
            ):
                continue
            lock = path / LOCK_NAME
            fd = _try_lock(lock, create=not lock.exists())
            if fd is not None:
                self._adopted[path] = fd
        files: list[Path] = []
        for path in self._adopted:
            with contextlib.suppress(FileNotFoundError):
                for entry in os.scandir(path):
                    if entry.name.endswith(SUFFIX) and not entry.name.startswith("."):
                        files.append(Path(entry.path))
                    elif entry.name.endswith(".tmp"):
                        self._move_aside(Path(entry.path), "an unfinished write (its process died while writing)")
        return sorted(files, key=lambda p: p.name)

    def _release_empty(self) -> None:
        for path, fd in list(self._adopted.items()):
            try:
                left = [e.name for e in os.scandir(path) if e.name != LOCK_NAME]
            except FileNotFoundError:
                left = []
            if left:
                continue
            with contextlib.suppress(OSError):
                (path / LOCK_NAME).unlink()
                path.rmdir()
            os.close(fd)
            del self._adopted[path]

    def _move_aside(self, path: Path, why: str) -> None:
        target_dir = self.directory / CORRUPT_DIR
        target = target_dir / f"{path.parent.name}-{path.name.lstrip('.')}"
        try:
            target_dir.mkdir(exist_ok=True)
            os.replace(path, target)
        except OSError:
            with contextlib.suppress(OSError):
                path.unlink()
            target = Path("<deleted>")
        _logger.warning("agentportal-otel: spool file %s is unusable (%s); moved to %s", path, why, target)

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        _logger.warning(message, *args)
