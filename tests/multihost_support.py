"""Several hosts on this machine, for tests that need a real multi-host cluster (run as root).

A `Network` is a Linux bridge in the root network namespace with a /24 subnet; the bridge's own
address (`net.gateway`) is where servers every host reaches listen (e.g. an S3 server). Each
`Host` on it is, like a Kubernetes pod:
- its own network namespace (`ip netns`), joined to the bridge by a veth pair, with an address on
  the subnet, loopback up and a default route through the bridge (Ray, vLLM and gloo find their
  own address by routing; nothing leaves the machine: the root namespace does not forward);
- its own mount, UTS and PID namespaces, held by one small process (`hold`, PID 1 of the host):
  private tmpfs mounts on /tmp, /dev/shm and /home with HOME=/home/ray (the trainer image's), its
  own hostname with an /etc/hosts line for it, its own /proc. The rest of the file system (the
  checkout, the venv, the interpreter) is shared, as an image's is; where one of them lies under a
  private folder (a clone in /tmp), it is bound back over the host's tmpfs (`shared_paths`).
Commands run on a host through `nsenter` into the holder's namespaces (`Host.popen`, `Host.run`).
When the holder dies the kernel kills every process of the host's PID namespace and its mounts go
with it; `close()` does that, removes the network namespaces and the bridge, also after a failure.
`sweep_stale()` removes what a killed test run left behind (names carry the owning process id).

    with Network.create() as net:
        head = net.add_host("head")
        head.run(["hostname"])            # "head"
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

PREFIX = "lmh"  # every bridge, veth and netns name starts with it (then the owner pid)
PRIVATE_DIRS = ("/tmp", "/dev/shm", "/home")  # tmpfs on each host
HOME = "/home/ray"  # the trainer image's HOME, inside the private /home
CHECKOUT = Path(__file__).resolve().parents[1]


def shared_paths() -> list[str]:
    """What every host must see as the image's content: this checkout, the venv, the interpreter."""
    return sorted({os.path.realpath(p) for p in (CHECKOUT, sys.prefix, sys.base_prefix)})


def hidden_by(private: tuple[str, ...] | list[str], paths: list[str]) -> list[str]:
    """The paths that a tmpfs on one of the private folders would hide (outermost first, no nested ones)."""
    under = sorted(p for p in paths if any(p == f or p.startswith(f.rstrip("/") + "/") for f in private))
    return [p for i, p in enumerate(under) if not any(p.startswith(q.rstrip("/") + "/") for q in under[:i])]


def missing_requirements() -> str | None:
    """Why hosts cannot be made here (None when they can): root and the tools."""
    if os.geteuid() != 0:
        return "multi-host tests need root (network, mount and PID namespaces)"
    for tool in ("ip", "unshare", "nsenter", "mount", "setpriv"):
        if shutil.which(tool) is None:
            return f"multi-host tests need `{tool}` (util-linux / iproute2)"
    for folder in PRIVATE_DIRS:
        if not os.path.isdir(folder):
            return f"multi-host tests mount a private tmpfs on {folder}, which does not exist here"
    return None


# Command prefix: the command gets SIGKILL when the process that started it dies (even by SIGKILL),
# so a killed test run takes its hosts and servers with it.
DIE_WITH_PARENT = ("setpriv", "--pdeathsig", "KILL", "--")


def _sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check)


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.200.0.0/13 that no interface of the root namespace uses."""
    used = [ipaddress.ip_interface(a).network for a in re.findall(r"inet (\S+)", _sh("ip", "-4", "-o", "addr").stdout)]
    start = os.getpid() % 2048
    for i in range(2048):
        candidate = ipaddress.ip_network(f"10.{200 + (start + i) // 256 % 8}.{(start + i) % 256}.0/24")
        if not any(candidate.overlaps(u) for u in used):
            return candidate
    raise RuntimeError("no free /24 in 10.200.0.0/13 for a test network")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale() -> list[str]:
    """Remove network namespaces and bridges of test runs whose process is gone; returns their names."""
    removed = []
    owner = re.compile(rf"^{PREFIX}(\d+)")
    for name in _sh("ip", "netns", "list", check=False).stdout.split():
        m = owner.match(name)
        if m and not _pid_alive(int(m.group(1))):
            _sh("ip", "netns", "del", name, check=False)
            removed.append(name)
    for line in _sh("ip", "-o", "link", "show", "type", "bridge", check=False).stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        m = owner.match(name)
        if m and not _pid_alive(int(m.group(1))):
            _sh("ip", "link", "del", name, check=False)
            removed.append(name)
    return removed


@dataclass
class Host:
    """One host: its name, address and the holder process whose namespaces its commands enter."""

    name: str
    ip: str
    netns: str
    home: str
    holder: subprocess.Popen  # `unshare ... hold`; its child is PID 1 of the host
    pid1: int  # that child, as the root namespace numbers it
    procs: list[subprocess.Popen] = field(default_factory=list)

    def command(self, argv: list[str], cwd: str | None = None) -> list[str]:
        """`argv` as a command that runs on this host, in `cwd` there (default: its HOME)."""
        enter = ["nsenter", f"--target={self.pid1}", "--mount", "--uts", "--net", "--pid", "--wd", "--"]
        if cwd is None:
            return [*enter, *argv]  # --wd alone: PID 1's working directory, HOME
        return [*enter, "sh", "-c", 'cd "$0" && exec "$@"', cwd, *argv]  # a --wd=DIR is opened outside

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """A clean environment for this host: PATH and locale of ours, its own HOME, plus `extra`."""
        base = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TZ") if k in os.environ}
        return {**base, "HOME": self.home, "USER": "root", "HOSTNAME": self.name, **(extra or {})}

    def popen(self, argv: list[str], env: dict[str, str] | None = None, log: Path | None = None,
              cwd: str | None = None) -> subprocess.Popen:
        """Start `argv` on this host (output to `log`, else discarded); it dies with the host."""
        with open(log if log else os.devnull, "ab") as out:
            proc = subprocess.Popen(self.command(argv, cwd), env=env if env is not None else self.env(),
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def run(self, argv: list[str], env: dict[str, str] | None = None, timeout: float = 120,
            input: str | None = None, check: bool = True, cwd: str | None = None) -> subprocess.CompletedProcess:
        """Run `argv` on this host to its end; output captured."""
        done = subprocess.run(self.command(argv, cwd), env=env if env is not None else self.env(), input=input,
                              capture_output=True, text=True, timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise RuntimeError(f"{self.name}: {' '.join(argv)} exited {done.returncode}:\n"
                               f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
        return done

    def write_file(self, path: str, text: str) -> None:
        self.run(["sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1"', "-", path], input=text)

    def read_file(self, path: str, missing_ok: bool = False) -> str | None:
        done = self.run(["cat", path], check=not missing_ok)
        return done.stdout if done.returncode == 0 else None

    def processes(self) -> dict[int, str]:
        """{root-namespace pid: command line} of every process on this host except PID 1."""
        try:
            pidns = os.readlink(f"/proc/{self.pid1}/ns/pid")
        except OSError:
            return {}
        found = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == self.pid1:
                continue
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") == pidns:
                    found[int(entry)] = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(
                        errors="replace").strip()
            except OSError:
                continue
        return found

    def kill_processes(self, timeout: float = 30) -> None:
        """SIGKILL every process of the host but PID 1 (a crashed container: mounts and address stay)."""
        deadline = time.monotonic() + timeout
        while (procs := self.processes()) and time.monotonic() < deadline:
            for pid in procs:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.1)
        for proc in self.procs:
            if proc.poll() is None:  # nsenter, in the root namespace, returns when its child died
                proc.wait(timeout=10)
        if self.processes():
            raise RuntimeError(f"{self.name}: processes survived SIGKILL: {self.processes()}")

    def close(self) -> None:
        """Kill the host: PID 1 goes, the kernel kills the rest of its PID namespace, mounts go."""
        if self.holder.poll() is None:
            self.holder.kill()  # unshare --kill-child: its child (PID 1) gets SIGKILL too
            self.holder.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _pid_alive(self.pid1) and time.monotonic() < deadline:
            time.sleep(0.05)
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        _sh("ip", "netns", "del", self.netns, check=False)


class Network:
    """A bridge with hosts on it; a context manager that removes everything on exit."""

    def __init__(self, scratch: Path):
        self.scratch = scratch
        self.subnet = _free_subnet()
        self.tag = f"{PREFIX}{os.getpid()}"
        self.bridge = self.tag + "b"
        self.gateway = str(self.subnet[1])
        self.hosts: dict[str, Host] = {}

    @classmethod
    def create(cls, scratch: Path) -> Network:
        sweep_stale()
        net = cls(scratch)
        try:
            _sh("ip", "link", "add", net.bridge, "type", "bridge")
            _sh("ip", "addr", "add", f"{net.gateway}/{net.subnet.prefixlen}", "dev", net.bridge)
            _sh("ip", "link", "set", net.bridge, "up")
        except BaseException:
            net.close()
            raise
        return net

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add_host(self, name: str, keep: list[str] | None = None) -> Host:
        """A new host `name` at the next address of the subnet (see the module docstring); `keep`: the
        shared paths that stay visible through its private folders (default: `shared_paths()`)."""
        keep_arg = os.pathsep.join(shared_paths() if keep is None else keep)
        index = len(self.hosts)
        ip = str(self.subnet[11 + index])
        netns, outside, inside = f"{self.tag}{name[:3]}{index}", f"{self.tag}v{index}", f"{self.tag}i{index}"
        hosts_file = self.scratch / f"{name}.hosts"
        hosts_file.write_text(f"127.0.0.1 localhost\n{ip} {name}\n")
        _sh("ip", "netns", "add", netns)
        try:
            _sh("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
            _sh("ip", "link", "set", outside, "master", self.bridge, "up")
            _sh("ip", "link", "set", inside, "netns", netns)
            for argv in (["ip", "link", "set", "lo", "up"],
                         ["ip", "addr", "add", f"{ip}/{self.subnet.prefixlen}", "dev", inside],
                         ["ip", "link", "set", inside, "name", "eth0", "up"],
                         ["ip", "route", "add", "default", "via", self.gateway]):
                _sh("ip", "netns", "exec", netns, *argv)
            holder = subprocess.Popen(
                [*DIE_WITH_PARENT, "nsenter", f"--net=/run/netns/{netns}", "--",
                 "unshare", "--mount", "--uts", "--pid", "--fork", "--kill-child", "--mount-proc",
                 "--propagation", "private", "--",
                 sys.executable, __file__, "hold", name, str(hosts_file), HOME, keep_arg, *PRIVATE_DIRS],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
            line = holder.stdout.readline().strip()
            if line != "ready":
                holder.kill()
                raise RuntimeError(f"host {name} did not start: {line}{holder.stdout.read()}")
            pid1 = int(Path(f"/proc/{holder.pid}/task/{holder.pid}/children").read_text().split()[0])
        except BaseException:
            _sh("ip", "netns", "del", netns, check=False)
            _sh("ip", "link", "del", outside, check=False)
            raise
        host = Host(name, ip, netns, HOME, holder, pid1)
        self.hosts[name] = host
        return host

    def close(self) -> None:
        errors = []
        for host in reversed(list(self.hosts.values())):
            try:
                host.close()
            except (OSError, RuntimeError, subprocess.SubprocessError) as exc:  # tear down the others too
                errors.append(f"{host.name}: {exc}")
        self.hosts.clear()
        _sh("ip", "link", "del", self.bridge, check=False)
        if errors:
            raise RuntimeError("tear-down: " + "; ".join(errors))


# ----------------------------------------------------------------------------------- PID 1 of a host


def _bind_fd(fd: int, target: str) -> None:
    """mount(2) --rbind of the directory open at `fd` onto `target`: the kernel follows /proc/self/fd to
    the directory itself, also once a tmpfs hides its path (mount(8) would resolve the path instead)."""
    import ctypes

    ms_bind, ms_rec = 4096, 16384
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(f"/proc/self/fd/{fd}".encode(), target.encode(), None, ms_bind | ms_rec, None) != 0:
        raise OSError(ctypes.get_errno(), f"bind of {target} back over the private tmpfs failed")


def hold(name: str, hosts_file: str, home: str, keep: str, *private: str) -> None:
    """PID 1 of a host: hostname, /etc/hosts, private tmpfs mounts (the shared paths in `keep` bound
    back); then reap orphans until killed."""
    import socket

    socket.sethostname(name)
    subprocess.run(["mount", "--bind", hosts_file, "/etc/hosts"], check=True)
    kept = {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in hidden_by(private, keep.split(os.pathsep))
            if os.path.isdir(path)}
    for folder in private:  # after the bind: the hosts file may live under /tmp
        mode = "0755" if folder == "/home" else "1777"
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"mode={mode}", f"{name}-{Path(folder).name}", folder],
                       check=True)
    for path, fd in kept.items():
        os.makedirs(path, exist_ok=True)
        _bind_fd(fd, path)
        os.close(fd)
    os.makedirs(home, mode=0o700, exist_ok=True)  # inside a private tmpfs: nothing on the shared disk
    os.chdir(home)  # where commands entering the host start
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # PID 1 ignores signals it has no handler for
    print("ready", flush=True)
    os.close(1)
    while True:
        try:
            os.wait()
        except ChildProcessError:
            time.sleep(0.5)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "hold":
        hold(*sys.argv[2:])
