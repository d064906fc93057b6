"""Issue 14.1: whose credentials the operator sends to the storage endpoint a LIMRJob names.

A listener plays that endpoint and records every request. The operator process has a cloud identity
of its own in its environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, as an
IAM role would give it). Reading the running step's metrics.jsonl tail, it must send:
  * no signature and no token when the job names no secretRef (the old operator signed with its own
    identity: ~95 signed GETs in 16 s reached such a listener);
  * a signature with the job's own key when the job names a secretRef;
  * its own identity only where the cluster admin opted in (operator.ambientStorageCredentials).
"""

from __future__ import annotations

import http.server
import threading

import pytest
from realoperator import AMBIENT, S3_KEYS, Operator, limr_job

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

NO_SUCH_KEY = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code>'
               b"<Message>The specified key does not exist.</Message></Error>")


class Listener(http.server.ThreadingHTTPServer):
    """An 'S3 endpoint' that answers NoSuchKey to everything and keeps every request's headers."""

    daemon_threads = True

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                outer.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
                self.send_response(404)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(NO_SUCH_KEY)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(NO_SUCH_KEY)

            do_GET = do_HEAD = do_PUT = do_POST = _answer

            def log_message(self, *args) -> None:  # quiet
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


def storage(listener: Listener, secret: bool) -> dict:
    out = {"uri": "s3://job-chosen-bucket/runs", "endpoint": listener.url, "region": "us-east-1"}
    if secret:
        out["secretRef"] = {"name": "limr-s3-credentials"}
    return out


def requests_for(c, kube, listener, ns, name, secret, n=3):
    kube.create_job(limr_job(name, ns, storage(listener, secret)))
    c.wait_for(lambda: kube.rayjob(ns, f"{name}-baseline-1"), 60, "the baseline RayJob")
    c.wait_for(lambda: len([r for r in listener.requests if f"/{name}/" in r[1]]) >= n, 60,
               f"{n} reads of {name}'s metrics at the job's endpoint", interval=0.2)
    return [r for r in listener.requests if f"/{name}/" in r[1]]


def everything(requests) -> str:
    return "\n".join(f"{m} {p} {h}" for m, p, h in requests)


def test_without_a_secret_ref_nothing_is_signed(real_cluster, kube, operator, namespace, listener):
    reqs = requests_for(real_cluster, kube, listener, namespace, "anon", secret=False)
    assert all("authorization" not in h and "x-amz-security-token" not in h for _, _, h in reqs), everything(reqs)
    assert not any(v in everything(reqs) for v in AMBIENT.values())
    assert any(p.endswith("/anon/baseline/metrics.jsonl") for _, p, _ in reqs)


def test_with_a_secret_ref_the_jobs_own_key_signs(real_cluster, kube, operator, namespace, listener):
    reqs = requests_for(real_cluster, kube, listener, namespace, "signed", secret=True)
    text = everything(reqs)
    assert all(h.get("authorization", "").startswith("AWS4-HMAC-SHA256 Credential=" + S3_KEYS["AWS_ACCESS_KEY_ID"] + "/")
               for _, _, h in reqs), text
    assert not any(v in text for v in AMBIENT.values())
    assert S3_KEYS["AWS_SECRET_ACCESS_KEY"] not in text  # a signature, never the secret itself


def test_the_operators_identity_only_with_the_admins_opt_in(real_cluster, kube, operator, cluster_release,
                                                           namespace, listener, tmp_path):
    """LIMR_OPERATOR_AMBIENT_STORAGE_CREDENTIALS=true (the chart's operator.ambientStorageCredentials)."""
    operator.stop()  # one cluster-wide operator at a time
    opted = Operator(cluster_release.kubeconfig(), ["--all-namespaces"], tmp_path,
                     env={"LIMR_OPERATOR_AMBIENT_STORAGE_CREDENTIALS": "true"})
    try:
        with opted.running():
            reqs = requests_for(real_cluster, kube, listener, namespace, "ambient", secret=False)
            kube.delete_job(namespace, "ambient")
            real_cluster.wait_for(lambda: kube.job(namespace, "ambient") is None, 60, "the job deleted")
    finally:
        operator.start()
    _, _, headers = reqs[-1]
    assert headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={AMBIENT['AWS_ACCESS_KEY_ID']}/")
    assert headers["x-amz-security-token"] == AMBIENT["AWS_SESSION_TOKEN"]
