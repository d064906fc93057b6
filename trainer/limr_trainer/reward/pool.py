"""Worker processes that run the reward check with a per-answer time limit and no signals.

math-verify's own timeout uses SIGALRM, which only works on the main thread (not in threads, not in
a Ray actor's executor threads). Here each answer goes to one worker process; if it does not
answer within the limit the worker is killed and replaced and that answer alone gets -1
(checker_timeout); a worker that dies mid-answer gives checker_error.

Workers are fresh interpreters (`python -m limr_trainer.reward.pool`, started by
`runtime.procpool`, so they die with this process) talking over a socket pair:
nothing depends on the parent's `__main__` (unlike multiprocessing's spawn/forkserver) and nothing
forks a threaded parent (unlike fork). A worker imports math-verify and warms it up before it
reports ready, so its first answer's clock does not include the import.
"""

from __future__ import annotations

import atexit
import math
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Self

from limr_trainer.runtime.procpool import start_python, usable_cpus

from .results import CHECKER_ERROR, CHECKER_TIMEOUT, RewardItem, RewardResult, format_error_result

READY = "ready"
DEFAULT_CHECK = "limr_trainer.reward.checker:check"
START_TIMEOUT = 120.0  # seconds for a worker to import math-verify (a cold disk on 2 cores)
MAX_START_FAILURES = 3
MAX_TIMEOUT = 3600.0


def check_timeout(timeout: float) -> float:
    """A per-answer time limit must be a finite number of seconds in (0, 3600]."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) \
            or not 0 < timeout <= MAX_TIMEOUT:
        raise ValueError(f"the checker timeout must be a number of seconds in (0, {MAX_TIMEOUT:g}], not {timeout!r}")
    return float(timeout)


class _Worker:
    """One checker process and the parent's end of its socket."""

    def __init__(self, check: str) -> None:
        parent_sock, child_sock = socket.socketpair()
        fd = child_sock.fileno()
        self.proc = start_python("limr_trainer.reward.pool", [str(fd), check], pass_fds=(fd,),
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, close_fds=True)
        child_sock.close()
        self.conn = Connection(parent_sock.detach())
        self.started = time.monotonic()
        self.ready = False
        self.killed = False  # stopped mid-answer by an interrupted map: replaced before the next

    def stop(self, kill: bool = False) -> None:
        if not kill:
            try:
                self.conn.send(None)
            except (OSError, ValueError):
                kill = True
        if kill:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - stuck in uninterruptible sleep
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.conn.close()


@dataclass
class _Job:
    """A chunk in flight on one worker: indices not yet answered, time of the last progress."""

    worker: _Worker
    indices: deque[int]
    progress: float


class CheckerPool:
    """A fixed number of checker processes; `map` scores a batch with a per-answer timeout.

    Thread-safe (one `map` at a time). Use as a context manager or call `close()`.
    """

    def __init__(self, workers: int | None = None, check: str = DEFAULT_CHECK, chunk: int = 16) -> None:
        self.size = max(1, workers or usable_cpus())
        self.chunk = max(1, chunk)  # most answers sent to a worker in one message
        self.check = check  # "module:function" run by the workers: (response, gold) -> RewardResult
        self._lock = threading.Lock()
        self._workers: list[_Worker] = [_Worker(check) for _ in range(self.size)]
        self._start_failures = 0
        self.restarts = 0  # workers replaced after a timeout or crash (for tests and metrics)
        self.last_latencies: list[float] = []  # checker seconds per answer of the last map (worker-timed)

    def map(self, items: list[RewardItem], timeout: float) -> list[RewardResult]:
        """Results in input order; never raises for a bad answer.

        Answers go to the workers in small chunks (fewer wake-ups per answer: on a busy machine
        each wake-up can cost milliseconds of scheduling delay). A worker answers a chunk one
        result at a time, so each answer still has its own clock: `timeout` seconds from the
        previous result (or the send). On a timeout or crash the answer being checked gets -1 and
        the rest of its chunk goes back to the queue for another worker.
        """
        timeout = check_timeout(timeout)
        results: list[RewardResult | None] = [None] * len(items)
        latencies = [0.0] * len(items)
        pending: deque[int] = deque(range(len(items)))  # truncated ones too: every scan is timed
        with self._lock:
            if not self._workers:
                raise RuntimeError("CheckerPool is closed")
            for w in [w for w in self._workers if w.killed]:  # left busy by an interrupted map
                self._replace(w)
            idle = [w for w in self._workers if w.ready]
            starting = {w.conn: w for w in self._workers if not w.ready}
            busy: dict[Connection, _Job] = {}
            try:
                self._run(items, timeout, results, latencies, pending, idle, starting, busy)
            except BaseException:
                # Interrupted (Ctrl-C, SIGTERM, an error): a busy worker may be deep in one answer
                # and would not hear a polite stop for as long as that answer takes. Kill it now.
                for job in busy.values():
                    job.worker.stop(kill=True)
                    job.worker.killed = True
                raise
            self.last_latencies = latencies
        return results  # type: ignore[return-value]

    def _run(self, items: list[RewardItem], timeout: float, results: list[RewardResult | None],
             latencies: list[float], pending: deque[int], idle: list[_Worker],
             starting: dict[Connection, _Worker], busy: dict[Connection, _Job]) -> None:
        """The loop of `map`: send chunks to idle workers, collect answers, enforce the clocks."""

        def fail(job: _Job, reason: str, now: float) -> None:
            i = job.indices.popleft()
            results[i] = format_error_result(reason)
            latencies[i] = now - job.progress
            pending.extendleft(reversed(job.indices))  # not their fault: another worker takes them
            fresh = self._replace(job.worker)
            starting[fresh.conn] = fresh

        while pending or busy:
            while idle and pending:
                w = idle.pop()
                size = max(1, min(self.chunk, len(pending) // (2 * self.size)))
                chunk = [pending.popleft() for _ in range(size)]
                try:
                    w.conn.send([(items[i].response, items[i].answer, items[i].truncated) for i in chunk])
                except (OSError, ValueError):
                    pending.extendleft(reversed(chunk))  # the worker died while idle
                    fresh = self._replace(w)
                    starting[fresh.conn] = fresh
                    continue
                busy[w.conn] = _Job(w, deque(chunk), time.monotonic())
            if not pending and not busy:
                break
            deadlines = [job.progress + timeout for job in busy.values()]
            deadlines += [w.started + START_TIMEOUT for w in starting.values()]
            wait_s = max(0.0, min(deadlines) - time.monotonic())
            for conn in wait(list(busy) + list(starting), timeout=wait_s):
                if conn in starting:
                    w = starting.pop(conn)  # type: ignore[index]
                    if self._check_ready(w):
                        idle.append(w)
                    else:
                        fresh = self._replace(w, failed_start=True)
                        starting[fresh.conn] = fresh
                    continue
                job = busy[conn]  # type: ignore[index]
                try:
                    while job.indices and conn.poll():  # type: ignore[union-attr]
                        reward, correct, reason, answer, seconds = conn.recv()  # type: ignore[union-attr]
                        i = job.indices.popleft()
                        latencies[i] = seconds
                        if reward is None:
                            results[i] = format_error_result(reason)
                        else:
                            results[i] = RewardResult(reward, correct, reason, answer)
                        job.progress = time.monotonic()
                except (EOFError, OSError):
                    del busy[conn]
                    fail(job, CHECKER_ERROR, time.monotonic())
                    continue
                if not job.indices:
                    del busy[conn]
                    idle.append(job.worker)
            now = time.monotonic()
            for conn, job in list(busy.items()):
                if now >= job.progress + timeout:
                    del busy[conn]
                    fail(job, CHECKER_TIMEOUT, now)
            for conn, w in list(starting.items()):
                if now >= w.started + START_TIMEOUT:
                    del starting[conn]
                    fresh = self._replace(w, failed_start=True)
                    starting[fresh.conn] = fresh

    def _check_ready(self, w: _Worker) -> bool:
        try:
            ok = w.conn.recv() == READY
        except (EOFError, OSError):
            ok = False
        w.ready = ok
        if ok:
            self._start_failures = 0
        return ok

    def _replace(self, w: _Worker, failed_start: bool = False) -> _Worker:
        w.stop(kill=True)
        if failed_start:
            self._start_failures += 1
            if self._start_failures >= MAX_START_FAILURES * self.size:
                raise RuntimeError(
                    f"reward checker workers fail to start ({sys.executable} -m limr_trainer.reward.pool): "
                    "is math-verify installed?"
                )
        fresh = _Worker(self.check)
        self._workers[self._workers.index(w)] = fresh
        self.restarts += 1
        return fresh

    def close(self) -> None:
        with self._lock:
            for w in self._workers:
                if not w.killed:
                    w.stop(kill=not w.ready)
            self._workers = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_SHARED: dict[int, CheckerPool] = {}
_SHARED_LOCK = threading.Lock()


def shared_pool(workers: int | None, prefer_existing: bool = False) -> CheckerPool:
    """A pool kept for the life of the process, one per worker count (closed at exit)."""
    with _SHARED_LOCK:
        if prefer_existing and _SHARED:
            return next(iter(_SHARED.values()))
        size = max(1, workers or usable_cpus())
        pool = _SHARED.get(size)
        if pool is None:
            if not _SHARED:
                atexit.register(close_shared_pools)
            pool = _SHARED[size] = CheckerPool(size)
        return pool


def close_shared_pools() -> None:
    with _SHARED_LOCK:
        for pool in _SHARED.values():
            pool.close()
        _SHARED.clear()


def _serve(fd: int, check_path: str = DEFAULT_CHECK) -> None:
    """Worker loop: warm up, say ready, then answer (response, gold) with result fields."""
    import importlib

    from .equivalence import equivalent

    module, _, name = check_path.partition(":")
    check = getattr(importlib.import_module(module), name)
    conn = Connection(fd)
    equivalent("1", "1", shortcut=False)  # import and warm math-verify before the clock runs
    conn.send(READY)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        for response, gold, truncated in msg:
            start = time.perf_counter()
            try:
                r = check(response, gold, truncated)
                out = (r.reward, r.correct, r.reason, r.answer, time.perf_counter() - start)
            except Exception:  # noqa: BLE001 - any checker failure costs this answer only
                out = (None, False, CHECKER_ERROR, None, time.perf_counter() - start)
            conn.send(out)


if __name__ == "__main__":
    _serve(int(sys.argv[1]), *sys.argv[2:3])
