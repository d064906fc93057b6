"""Child Python processes that see the same code as this one and die with it.

The reward checker pool and the selection's reader processes start fresh interpreters
(`python -m module ...`): nothing depends on the parent's `__main__`, and nothing forks a threaded
parent. This module is the one place that builds their environment (the parent's import path, one
thread per child) and starts them so that they never outlive the parent: on Linux the kernel sends
them SIGKILL when the parent dies (PR_SET_PDEATHSIG), and they get their own process group, so a
terminal's Ctrl-C reaches only the parent, which then closes them in order.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

_PR_SET_PDEATHSIG = 1
try:  # loaded here, not in the child: between fork and exec only the prctl call itself runs
    _LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
except OSError:  # pragma: no cover
    _LIBC = None


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The parent's environment with its import path, so a child imports the same code."""
    env = dict(os.environ)
    paths = [p for p in sys.path if p and os.path.isdir(p)]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(extra or {})
    return env


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def start_python(module: str, args: Sequence[str] = (), pass_fds: Sequence[int] = (),
                 **popen: Any) -> subprocess.Popen:
    """`python -m module args...` as a child that dies with this process.

    The kernel's parent-death signal follows the *thread* that starts the child: start long-lived
    children from a thread that lives as long as they should (the main thread, in every use here).
    """
    preexec = _die_with_parent if _LIBC is not None else None
    return subprocess.Popen([sys.executable, "-m", module, *args], env=child_env(), pass_fds=tuple(pass_fds),
                            preexec_fn=preexec, process_group=0, **popen)  # noqa: PLW1509 (see the docstring)


def can_fork() -> bool:
    """Forking is safe only without other threads (a lock held by one would stay held in the child)."""
    import threading

    return hasattr(os, "fork") and threading.active_count() == 1


class ForkedCall:
    """`fn(*args)` in a forked child, its outcome pickled back through a pipe.

    The child forks at construction and runs `warm()` first (e.g. an import) while the parent goes
    on; `send(*args)` hands it the arguments, `result()` returns the value or raises the child's
    exception. Where forking is unsafe (other threads) or the child dies without an answer, the
    call runs in this process instead, so the outcome never depends on how it ran.
    """

    def __init__(self, fn: Any, warm: Any = None) -> None:
        self.fn, self._args, self._pid, self._fds = fn, None, 0, []
        if not can_fork():
            return
        req_r, req_w = os.pipe()
        res_r, res_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            status = 1
            try:
                os.close(req_w)
                os.close(res_r)
                _child(fn, warm, req_r, res_w)
                status = 0
            finally:
                os._exit(status)
        os.close(req_r)
        os.close(res_w)
        self._pid, self._fds = pid, [req_w, res_r]

    def send(self, *args: Any) -> ForkedCall:
        import pickle

        self._args = args
        if self._pid:
            req_w = self._fds.pop(0)
            with os.fdopen(req_w, "wb") as f:
                try:
                    pickle.dump(args, f, protocol=pickle.HIGHEST_PROTOCOL)
                except BrokenPipeError:
                    pass
        return self

    def result(self) -> Any:
        import pickle

        if self._args is None:
            raise RuntimeError("ForkedCall.result() before send()")
        if self._pid:
            res_r = self._fds.pop(0)
            with os.fdopen(res_r, "rb") as f:
                data = f.read()
            pid, self._pid = self._pid, 0
            _, status = os.waitpid(pid, 0)
            if status == 0 and data:
                ok, value = pickle.loads(data)
                if ok:
                    return value
                raise value
        return self.fn(*self._args)  # no child, or it died: the same call here

    def close(self) -> None:
        """Stop a child that was never sent work (it sees EOF) and reap it."""
        for fd in self._fds:
            os.close(fd)
        self._fds = []
        if self._pid:
            os.waitpid(self._pid, 0)
            self._pid = 0


def _child(fn: Any, warm: Any, req_r: int, res_w: int) -> None:  # pragma: no cover - runs in the child
    import pickle

    if warm is not None:
        warm()
    with os.fdopen(req_r, "rb") as f:
        data = f.read()
    if not data:  # the parent gave up before sending work
        return
    try:
        payload: tuple[bool, Any] = (True, fn(*pickle.loads(data)))
    except Exception as exc:  # noqa: BLE001 - raised again in the parent
        try:
            pickle.dumps(exc)
            payload = (False, exc)
        except Exception:  # noqa: BLE001
            payload = (False, RuntimeError(f"{type(exc).__name__}: {exc}"))
    with os.fdopen(res_w, "wb") as f:
        pickle.dump(payload, f, protocol=pickle.HIGHEST_PROTOCOL)
