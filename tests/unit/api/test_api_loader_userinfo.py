"""A user:password in the storage URI or the S3 endpoint (issue 14 point 11): refused by `limr
validate` and `limr render` (so never rendered into a pod's environment), by the CRD's own pattern,
and never repeated in an error message."""

from __future__ import annotations

import re

import pytest
import yaml
from limr_api.cli import main as limr
from paths import REPO

SECRET = "hunter2"
JOB = """\
apiVersion: limr.io/v1alpha1
kind: LIMRJob
metadata:
  name: small
spec:
  model:
    name: Qwen/Qwen2.5-Math-7B
  dataset:
    uri: s3://data/math.json
  storage:
    uri: {uri}
{endpoint}"""

BAD_URIS = [f"s3://AKIAEXAMPLE:{SECRET}@bucket/prefix", f"file://admin:{SECRET}@nas/data"]
BAD_ENDPOINTS = [f"http://minio:{SECRET}@minio.storage:9000", f"https://key:{SECRET}@s3.example.com/",
                 "http://minio.storage:9000 extra"]
GOOD_ENDPOINTS = ["http://minio.storage:9000", "https://s3.us-east-1.amazonaws.com", "http://10.0.0.1:9000/"]


def job_file(tmp_path, uri: str = "s3://runs/limr", endpoint: str | None = None) -> str:
    path = tmp_path / "job.yaml"
    path.write_text(JOB.format(uri=uri, endpoint=f"    endpoint: {endpoint}\n" if endpoint else ""))
    return str(path)


@pytest.mark.parametrize("command", ["validate", "render"])
@pytest.mark.parametrize("uri", BAD_URIS)
def test_a_password_in_the_storage_uri_is_refused_and_not_echoed(tmp_path, capsys, command, uri):
    assert limr([command, job_file(tmp_path, uri=uri)]) == 2
    captured = capsys.readouterr()
    assert "spec.storage.uri" in captured.err and "user:password" in captured.err
    assert SECRET not in captured.err + captured.out


@pytest.mark.parametrize("command", ["validate", "render"])
@pytest.mark.parametrize("endpoint", BAD_ENDPOINTS)
def test_a_password_in_the_endpoint_is_refused_and_not_echoed(tmp_path, capsys, command, endpoint):
    assert limr([command, job_file(tmp_path, endpoint=endpoint)]) == 2
    captured = capsys.readouterr()
    assert "spec.storage.endpoint" in captured.err and "user:password" in captured.err
    assert SECRET not in captured.err + captured.out


@pytest.mark.parametrize("endpoint", GOOD_ENDPOINTS)
def test_ordinary_endpoints_stay_valid(tmp_path, capsys, endpoint):
    assert limr(["validate", job_file(tmp_path, endpoint=endpoint)]) == 0


def test_the_crd_carries_the_same_patterns():
    crd = yaml.safe_load((REPO / "manifests" / "crd" / "limr.io_limrjobs.yaml").read_text())
    storage = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["storage"]
    uri, endpoint = (re.compile(storage["properties"][f]["pattern"]) for f in ("uri", "endpoint"))
    assert not any(uri.search(u) for u in BAD_URIS) and uri.search("s3://runs/limr")
    assert not any(endpoint.search(e) for e in BAD_ENDPOINTS)
    assert all(endpoint.search(e) for e in GOOD_ENDPOINTS)
