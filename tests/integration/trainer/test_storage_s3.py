"""Storage against a real S3 protocol server (moto_server), and the same behaviour on local folders.

Faults are injected by a small TCP proxy between the client and moto: it can refuse or answer 503
to the first connections (retries), cut connections carrying large bodies while the server stays
up (the transfer manager must abort the multipart upload), or stop serving altogether in the middle
of a multipart upload (the server "dies"). moto keeps its state behind the proxy, so each test
then checks on moto itself what is really stored.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time

import pyarrow as pa
import pytest
from limr_api import layout
from limr_trainer.storage import ObjectNotFound, StorageError, open_storage

pytestmark = pytest.mark.integration

MiB = 1 << 20
S3_CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing", "region": "us-east-1"}
FAST = {"max_attempts": 2, "connect_timeout": 2, "read_timeout": 5}


def s3_storage(endpoint: str, bucket: str, prefix: str = "root", **options):
    return open_storage(f"s3://{bucket}/{prefix}", endpoint=endpoint, **S3_CREDENTIALS, **options)


# ---- the same behaviour on both backends ----------------------------------------------------------


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    if request.param == "local":
        return open_storage(str(tmp_path / "root"))
    return s3_storage(request.getfixturevalue("s3_server"), request.getfixturevalue("s3_bucket"))


def test_bytes_round_trip_overwrite_and_delete(storage):
    key = "job/baseline/blob.bin"
    assert not storage.exists(key)
    with pytest.raises(ObjectNotFound, match="job/baseline/blob.bin"):
        storage.get_bytes(key)
    storage.put_bytes(key, b"first")
    storage.put_bytes(key, b"\x00second\xff")
    assert storage.exists(key)
    assert storage.get_bytes(key) == b"\x00second\xff"
    assert storage.list() == [key]
    storage.delete(key)
    storage.delete(key)  # absent: still fine
    assert not storage.exists(key) and storage.list() == []


def test_list_is_a_sorted_string_prefix_match(storage):
    keys = [
        layout.rewards_key("job", "baseline", 1, 2),
        layout.rewards_key("job", "baseline", 1, 1),
        layout.rewards_key("job", "baseline", 2, 9),
        layout.metrics_key("job", "baseline"),
        layout.metrics_key("job", "retrain-random"),
        layout.summary_key("job"),
        "jobber/x.json",
    ]
    for key in keys:
        storage.put_bytes(key, key.encode())
    assert storage.list() == sorted(keys)
    assert storage.list("job/") == sorted(k for k in keys if k.startswith("job/"))
    assert storage.list("job") == sorted(keys)
    assert storage.list(layout.rewards_prefix("job", "baseline", 1)) == [
        layout.rewards_key("job", "baseline", 1, 1),
        layout.rewards_key("job", "baseline", 1, 2),
    ]
    assert storage.list("job/baseline/rew") == sorted(k for k in keys if "/rewards/" in k)
    assert storage.list("job/retrain") == [layout.metrics_key("job", "retrain-random")]
    assert storage.list("nothing/here") == []


def test_delete_prefix_removes_only_that_prefix(storage):
    for epoch in (1, 2):
        for step in range(3):
            storage.put_bytes(layout.rewards_key("job", "baseline", epoch, step), b"x")
    storage.put_bytes(layout.metrics_key("job", "baseline"), b"{}\n")
    assert storage.delete_prefix(layout.rewards_prefix("job", "baseline", 1)) == 3
    assert [layout.parse_rewards_key(k) for k in storage.list(layout.rewards_prefix("job", "baseline"))] == [
        (2, 0),
        (2, 1),
        (2, 2),
    ]
    assert storage.delete_prefix("job/") == 4
    assert storage.list() == []


def test_json_jsonl_parquet_round_trips(storage):
    summary = {"strategy": "lim", "threshold": 0.6, "selected": 1389, "note": "Größe ∑"}
    storage.put_json(layout.summary_key("j"), summary)
    assert storage.get_json(layout.summary_key("j")) == summary

    rows = [{"prompt_id": i, "text": f"q{i} \\boxed{{{i}}}", "score": i / 7} for i in range(50)]
    assert storage.put_jsonl(layout.selected_key("j"), rows) == 50
    assert list(storage.iter_jsonl(layout.selected_key("j"))) == rows
    storage.put_jsonl("j/empty.jsonl", [])
    assert list(storage.iter_jsonl("j/empty.jsonl")) == []

    table = pa.table(
        {
            "epoch": pa.array([1, 1, 1], pa.int32()),
            "step": pa.array([3, 3, 3], pa.int32()),
            "prompt_id": ["a", "b", "c"],
            "reward": [1.0, -0.5, -1.0],
            "correct": [True, False, False],
            "format_error": [None, None, "no_boxed"],
        }
    )
    key = layout.rewards_key("j", "baseline", 1, 3)
    storage.put_parquet(key, table)
    assert storage.read_parquet(key).equals(table)


def test_invalid_content_and_keys_raise_storage_error(storage):
    storage.put_bytes("j/bad.json", b"{not json")
    with pytest.raises(StorageError, match=r"j/bad.json is not valid JSON"):
        storage.get_json("j/bad.json")
    with pytest.raises(StorageError, match="not a valid Parquet"):
        storage.read_parquet("j/bad.json")
    for bad in ("", "/abs", "a//b", "a/../b", "a/./b", "a\\b"):
        with pytest.raises(StorageError, match="invalid storage key"):
            storage.put_bytes(bad, b"x")


def test_files_and_folders(storage, tmp_path):
    src = tmp_path / "ckpt"
    (src / "sub").mkdir(parents=True)
    (src / "model.safetensors").write_bytes(os.urandom(300_000))
    (src / "sub" / "config.json").write_text('{"a": 1}')
    prefix = layout.checkpoint_prefix("job", "baseline", layout.checkpoint_tag(8))
    assert storage.put_dir(prefix, src) == [prefix + "model.safetensors", prefix + "sub/config.json"]
    dst = tmp_path / "restored"
    storage.get_dir(prefix, dst)
    assert (dst / "model.safetensors").read_bytes() == (src / "model.safetensors").read_bytes()
    assert (dst / "sub" / "config.json").read_text() == '{"a": 1}'
    storage.get_file(prefix + "sub/config.json", tmp_path / "one" / "c.json")
    assert (tmp_path / "one" / "c.json").read_text() == '{"a": 1}'


def test_uri_names_the_object(storage):
    uri = storage.uri("job/selection/summary.json")
    assert uri.endswith("/root/job/selection/summary.json")
    assert uri.startswith("s3://" if "S3" in type(storage).__name__ else "file:///")


# ---- S3 specifics ---------------------------------------------------------------------------------


def test_multipart_round_trip_and_prefix_isolation(s3_server, s3_bucket, s3_client, tmp_path):
    storage = s3_storage(s3_server, s3_bucket, multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    data = os.urandom(12 * MiB)
    storage.put_bytes("big.bin", data)
    head = s3_client.head_object(Bucket=s3_bucket, Key="root/big.bin")
    assert head["ETag"].strip('"').endswith("-3"), "12 MiB in 5 MiB parts must be a 3-part upload"
    assert storage.get_bytes("big.bin") == data
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    storage.put_file("file.bin", path)
    storage.get_file("file.bin", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == data

    other = s3_storage(s3_server, s3_bucket, prefix="other/deeper")
    other.put_bytes("big.bin", b"small")
    assert storage.list() == ["big.bin", "file.bin"]
    assert other.list() == ["big.bin"]
    assert other.uri("big.bin") == f"s3://{s3_bucket}/other/deeper/big.bin"


def test_endpoint_and_credentials_from_the_environment(s3_server, s3_bucket, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-env")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-env")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    storage = open_storage(f"s3://{s3_bucket}/envtest")
    assert storage.endpoint == s3_server
    storage.put_json("a.json", [1])
    assert storage.get_json("a.json") == [1]


def test_missing_credentials_and_bucket_are_clear_errors(s3_server, monkeypatch, tmp_path):
    for var in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    anonymous = open_storage("s3://some-bucket/p", endpoint=s3_server, region="us-east-1")
    with pytest.raises(StorageError, match=r"put s3://some-bucket/p/k\.json .*no S3 credentials"):
        anonymous.put_json("k.json", {})
    missing = s3_storage(s3_server, "no-such-bucket-here")
    with pytest.raises(
        StorageError, match=r"s3://no-such-bucket-here/root/k.*bucket 'no-such-bucket-here' does not"
    ):
        missing.put_bytes("k", b"x")
    with pytest.raises(StorageError, match="unsupported storage URI 'gs://b/p'"):
        open_storage("gs://b/p")
    with pytest.raises(StorageError, match="both access_key_id and secret_access_key"):
        open_storage("s3://b/p", endpoint=s3_server, access_key_id="only-this")


# ---- faults: a TCP proxy in front of moto ---------------------------------------------------------


class FaultProxy:
    """Forwards TCP connections to moto and injects faults on command (all off by default).

    drop_first: the first N connections are reset on arrival (a transient network failure).
    fail_first_with_503: the first N connections get one `503 SlowDown` answer, then are closed.
    cut_connection_over: a connection that sends more than this many bytes is reset; the server
        stays up (so small requests such as the multipart abort still get through).
    stop_after_bytes: once this many request bytes went through in total, the proxy stops: active
        connections are reset and the port refuses new ones, as when the server dies.
    cut_responses_over / cut_responses: the first `cut_responses` responses longer than this many
        bytes are cut off there (the client gets a truncated body, then a reset).
    """

    def __init__(self, upstream_url: str):
        host, port = upstream_url.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.drop_first = 0
        self.fail_first_with_503 = 0
        self.cut_connection_over: int | None = None
        self.stop_after_bytes: int | None = None
        self.cut_responses_over: int | None = None
        self.cut_responses = 0
        self.accepted = 0
        self.forwarded = 0
        self.cut = 0
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def stop(self) -> None:
        """Die: refuse new connections and reset every open one."""
        self.stopped.set()
        self.listener.close()
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            _reset(sock)

    def _accept_loop(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                number = self.accepted
            if number <= self.drop_first:
                _reset(client)
            elif number <= self.drop_first + self.fail_first_with_503:
                threading.Thread(target=_answer_503, args=(client,), daemon=True).start()
            else:
                threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream)
        except OSError:
            _reset(client)
            return
        with self._lock:
            if self.stopped.is_set():
                _reset(client)
                _reset(upstream)
                return
            self._sockets.update((client, upstream))
        threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()
        self._pump(client, upstream, True)

    def _pump(self, source: socket.socket, sink: socket.socket, is_request: bool) -> None:
        sent = 0
        try:
            while True:
                chunk = source.recv(65536)
                if not chunk:
                    sink.shutdown(socket.SHUT_WR)
                    return
                if is_request:
                    with self._lock:
                        total = self.forwarded + len(chunk)
                        stop = self.stop_after_bytes is not None and total > self.stop_after_bytes
                        self.forwarded = total
                    sent += len(chunk)
                    if stop:
                        self.stop()
                        return
                    if self.cut_connection_over is not None and sent > self.cut_connection_over:
                        self.cut += 1
                        _reset(source)
                        _reset(sink)
                        return
                if not is_request and self.cut_responses_over is not None:
                    room = self.cut_responses_over - sent
                    if len(chunk) > room and self._take_response_cut():
                        sink.sendall(chunk[: max(room, 0)])
                        _reset(source)
                        _reset(sink)
                        return
                    sent += len(chunk)
                sink.sendall(chunk)
        except OSError:
            _reset(source)
            _reset(sink)

    def _take_response_cut(self) -> bool:
        with self._lock:
            if self.cut_responses <= 0:
                return False
            self.cut_responses -= 1
            self.cut += 1
            return True


def _reset(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0), as a dead peer or a broken network does.

    shutdown() first: a plain close() does not wake another thread blocked in recv() on it.
    """
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def _answer_503(client: socket.socket) -> None:
    """Read one HTTP request (headers and Content-Length body), answer 503 SlowDown, close."""
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = client.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        # A client waiting for `100 Continue` sends no body: answer at once (HTTP allows it).
        expects_continue = headers.get(b"expect", b"").lower() == b"100-continue"
        length = 0 if expects_continue else int(headers.get(b"content-length", b"0"))
        while len(body) < length:
            chunk = client.recv(65536)
            if not chunk:
                break
            body += chunk
        payload = b"<Error><Code>SlowDown</Code><Message>injected by the test proxy</Message></Error>"
        client.sendall(
            b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
            + f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
    finally:
        client.close()


@pytest.fixture
def proxy(s3_server):
    fault_proxy = FaultProxy(s3_server)
    yield fault_proxy
    fault_proxy.stop()


def test_dropped_connections_are_retried(proxy, s3_bucket, s3_client):
    proxy.drop_first = 2
    storage = s3_storage(proxy.url, s3_bucket, max_attempts=4, connect_timeout=2, read_timeout=5)
    storage.put_bytes("retried.txt", b"made it")
    assert proxy.accepted >= 3, "the two dropped connections must have been retried"
    assert s3_client.get_object(Bucket=s3_bucket, Key="root/retried.txt")["Body"].read() == b"made it"


def test_dropped_connection_without_retries_fails_clearly(proxy, s3_bucket):
    proxy.drop_first = 1
    storage = s3_storage(proxy.url, s3_bucket, max_attempts=1)
    with pytest.raises(
        StorageError, match=rf"put s3://{s3_bucket}/root/once.txt \(endpoint {proxy.url}\) failed"
    ):
        storage.put_bytes("once.txt", b"x")
    assert proxy.accepted == 1


@pytest.mark.parametrize("retry_mode, failures", [("standard", 2), ("adaptive", 1)])
def test_server_503_is_retried(proxy, s3_bucket, retry_mode, failures):
    # (adaptive mode also slows its own sending rate after throttling: one failure keeps it quick)
    proxy.fail_first_with_503 = failures
    storage = s3_storage(proxy.url, s3_bucket, max_attempts=3, retry_mode=retry_mode)
    storage.put_json("slow.json", {"ok": True})
    assert proxy.accepted == failures + 1
    assert storage.get_json("slow.json") == {"ok": True}


def test_server_503_beyond_max_attempts_fails_with_the_cause(proxy, s3_bucket):
    proxy.fail_first_with_503 = 5
    storage = s3_storage(proxy.url, s3_bucket, max_attempts=2)
    with pytest.raises(
        StorageError,
        match=rf"put s3://{s3_bucket}/root/k .* failed: SlowDown \(HTTP 503\): injected by the test proxy after 1 retries",
    ):
        storage.put_bytes("k", b"x")
    assert proxy.accepted == 2


def test_a_body_cut_off_mid_download_is_retried(proxy, s3_bucket, s3_server):
    data = os.urandom(3 * MiB)
    s3_storage(s3_server, s3_bucket).put_bytes("records.parquet", data)
    proxy.cut_responses_over = 1 * MiB
    proxy.cut_responses = 2
    storage = s3_storage(proxy.url, s3_bucket, max_attempts=3, read_timeout=5)
    assert storage.get_bytes("records.parquet") == data
    assert proxy.cut == 2, "both truncated bodies must have been seen and retried"

    proxy.cut_responses = 3
    once = s3_storage(proxy.url, s3_bucket, max_attempts=1)
    with pytest.raises(StorageError, match=rf"get s3://{s3_bucket}/root/records.parquet .*failed"):
        once.get_bytes("records.parquet")


def _uploads(s3_client, bucket: str) -> list[dict]:
    return s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def test_connection_cut_mid_multipart_aborts_the_upload(proxy, s3_bucket, s3_client, s3_server):
    direct = s3_storage(s3_server, s3_bucket)
    direct.put_bytes("ckpt.bin", b"previous complete version")
    proxy.cut_connection_over = 2 * MiB  # every 5 MiB part upload dies; small requests pass
    storage = s3_storage(
        proxy.url, s3_bucket, multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, **FAST
    )
    started = time.monotonic()
    with pytest.raises(StorageError) as failure:
        storage.put_bytes("ckpt.bin", os.urandom(12 * MiB))
    message = str(failure.value)
    assert (
        f"put s3://{s3_bucket}/root/ckpt.bin (multipart, {12 * MiB} bytes, endpoint {proxy.url}) failed"
        in message
    )
    assert proxy.cut >= 2, "the part uploads (and their retries) must have been cut"
    assert time.monotonic() - started < 20
    # Server still up: the old object is intact, no partial one, and the upload was aborted.
    assert (
        s3_client.get_object(Bucket=s3_bucket, Key="root/ckpt.bin")["Body"].read()
        == b"previous complete version"
    )
    assert _uploads(s3_client, s3_bucket) == []


def test_server_stopping_mid_multipart_leaves_no_object(proxy, s3_bucket, s3_client, s3_server):
    proxy.stop_after_bytes = 7 * MiB  # create + the first 5 MiB part go through, then the server dies
    storage = s3_storage(
        proxy.url, s3_bucket, multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, **FAST
    )
    with pytest.raises(StorageError) as failure:
        storage.put_bytes(layout.rewards_key("job", "baseline", 1, 1), os.urandom(12 * MiB))
    message = str(failure.value)
    key = "root/" + layout.rewards_key("job", "baseline", 1, 1)
    assert (
        f"put s3://{s3_bucket}/{key} (multipart, {12 * MiB} bytes, endpoint {proxy.url}) failed: " in message
    )
    assert any(word in message for word in ("Connect", "connect", "Connection")), message
    assert proxy.stopped.is_set()
    # moto itself (the state behind the dead endpoint): the upload was really in flight, and no object
    # is visible; the abort could not reach the dead server, so the upload is left for clean-up.
    assert s3_client.list_objects_v2(Bucket=s3_bucket).get("KeyCount", 0) == 0
    assert [u["Key"] for u in _uploads(s3_client, s3_bucket)] == [key]
    with pytest.raises(ObjectNotFound):
        s3_storage(s3_server, s3_bucket).get_bytes(layout.rewards_key("job", "baseline", 1, 1))
    # Once the server is reachable again, the leftover parts are cleaned up (age guard off here).
    recovered = s3_storage(s3_server, s3_bucket)
    # (moto reports every upload as initiated on 2010-11-10, so the age guard is checked with 30 years)
    assert recovered.clean_interrupted("job/", older_than_s=30 * 365 * 86400) == 0
    assert recovered.clean_interrupted("other/", older_than_s=0) == 0
    assert recovered.clean_interrupted("job/", older_than_s=0) == 1
    assert _uploads(s3_client, s3_bucket) == []
