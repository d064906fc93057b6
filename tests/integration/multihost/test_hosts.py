"""A host of the multi-host tests: private /tmp, /dev/shm and /home, the image's paths still shared.

A clean clone under /tmp (as CI's may be) once made every host lose the checkout and the venv under
its private /tmp: the paths a host must share are bound back over its tmpfs.
"""

from __future__ import annotations

from multihost_support import hidden_by, shared_paths


def test_only_the_outermost_hidden_paths_are_bound_back():
    private = ("/tmp", "/dev/shm", "/home")
    paths = ["/tmp/cc/main", "/tmp/cc/main/.venv", "/work/main", "/home/u/.pyenv/versions/3.11", "/tmpfoo/x"]
    assert hidden_by(private, paths) == ["/home/u/.pyenv/versions/3.11", "/tmp/cc/main"]


def test_a_host_keeps_its_own_tmp_and_sees_the_kept_paths(network, tmp_path):
    image, other = tmp_path / "image", tmp_path / "other"
    for folder in (image, other):
        folder.mkdir()
        (folder / "marker").write_text(folder.name)
    host = network.add_host("probe", keep=[str(image), *shared_paths()])
    assert host.run(["cat", str(image / "marker")]).stdout == "image"
    assert host.run(["test", "-e", str(other / "marker")], check=False).returncode != 0  # /tmp is the host's own
    host.run(["sh", "-c", f"echo written > {image}/from-host"])
    assert (image / "from-host").read_text() == "written\n"  # the folder itself, not a copy
    for path in shared_paths():  # the checkout, the venv and the interpreter, wherever the clone lies
        assert host.run(["test", "-d", path], check=False).returncode == 0, path
