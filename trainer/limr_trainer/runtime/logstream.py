"""A step attempt's driver output, copied to storage while it runs.

KubeRay deletes a finished phase's Ray cluster (and with it every pod log), so the RayJob
entrypoint tees its own stdout and stderr: everything still reaches the pod's log, and the whole
text so far is uploaded to `<job>/<step>/logs/attempt-N.log` every few seconds and at exit, so
`limr logs` can print or follow it during the phase and after its cluster is gone.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any, Self

UPLOAD_EVERY_S = 5.0
MAX_BYTES = 32 * 1024 * 1024  # beyond this, the head is cut (a marker says so)


class LogStream:
    """`with LogStream(storage, key):` copies file descriptors 1 and 2 to `key` as they are written."""

    def __init__(self, storage: Any, key: str, every: float = UPLOAD_EVERY_S):
        self.storage, self.key, self.every = storage, key, every
        self._buf = bytearray()
        self._cut = 0
        self._lock = threading.Lock()
        self._dirty = threading.Event()
        self._done = threading.Event()

    def __enter__(self) -> Self:
        sys.stdout.flush()
        sys.stderr.flush()
        self._saved = (os.dup(1), os.dup(2))
        self._streams = (sys.stdout, sys.stderr)
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 1)
        os.dup2(write_fd, 2)
        os.close(write_fd)
        # Python-level writes go to the same pipe (also when something replaced sys.stdout)
        sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)
        self._reader = threading.Thread(target=self._pump, args=(read_fd,), name="limr-log-pump", daemon=True)
        self._uploader = threading.Thread(target=self._upload_loop, name="limr-log-upload", daemon=True)
        self._reader.start()
        self._uploader.start()
        return self

    def __exit__(self, *exc: object) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = self._streams
        os.dup2(self._saved[0], 1)  # closes the pipe's last write end: the pump sees EOF
        os.dup2(self._saved[1], 2)
        self._reader.join(timeout=10)  # the pump still writes to the saved descriptors
        self._done.set()
        self._uploader.join(timeout=30)
        self._upload()
        for fd in self._saved:
            os.close(fd)

    def _pump(self, read_fd: int) -> None:
        out = self._saved[0]
        with os.fdopen(read_fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                os.write(out, chunk)  # the pod's own log keeps everything
                with self._lock:
                    self._buf += chunk
                    if len(self._buf) > MAX_BYTES:
                        drop = len(self._buf) - MAX_BYTES
                        del self._buf[:drop]
                        self._cut += drop
                self._dirty.set()

    def _upload_loop(self) -> None:
        while not self._done.wait(self.every):
            if self._dirty.is_set():
                self._upload()

    def _upload(self) -> None:
        with self._lock:
            self._dirty.clear()
            head = f"[... {self._cut} earlier bytes cut ...]\n".encode() if self._cut else b""
            data = head + bytes(self._buf)
        try:
            self.storage.put_bytes(self.key, data)
        except Exception as exc:  # noqa: BLE001  (a storage hiccup must not end the phase)
            os.write(self._saved[1], f"limr: cannot upload the log to {self.key}: {type(exc).__name__}: {exc}\n".encode())
            self._dirty.set()
