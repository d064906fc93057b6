"""The LIMRJob API on the real kube-apiserver: the generated CRD is accepted; every invalid LIMRJob
of the test suite (tests/limrjob_cases.py: the hand-written cases and the single-field mutation
sweep) is refused by the server and `limr validate` names the same field; every valid one, the
examples and the server's own edge values are accepted; spec.model and spec.dataset are immutable;
`kubectl get limr` shows the printer columns and `kubectl explain` the field descriptions.

Issue 14.8: for each rule the API server applies to pod fields (label keys and values, tolerations,
images) the test also sends a Pod with the same value, so the CRD's rule is shown to be the
server's own rule, not a stricter or looser guess; metadata (namespace, labels, annotations) is
checked by the server itself on every object and mirrored by `limr validate`.

Requests are server-side dry runs (`dryRun=All`, `fieldValidation=Strict`, what
`kubectl apply --server-side --validate=strict --dry-run=server` sends) through the Python client.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
import subprocess
import sys

import pytest
import yaml
from limr_api import cli
from limrjob_cases import BASE, GOOD, METADATA_CASES, MINIMAL, OBJECT_CASES, PAPER, Bad, edit, mutations
from paths import REPO

pytestmark = pytest.mark.integration

CRD_FILE = REPO / "manifests" / "crd" / "limr.io_limrjobs.yaml"
EXAMPLES = sorted((REPO / "manifests" / "examples").glob("*.yaml"))
NAMESPACE = "limr-api-" + "n" * 40  # a long, valid namespace, shared by the module


@pytest.fixture(scope="module")
def server(real_cluster):
    import kubernetes

    c = real_cluster
    c.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager", "limr-tests", "-f", str(CRD_FILE))
    c.kubectl("wait", "--for", "condition=Established", "--timeout", "60s", "crd/limrjobs.limr.io")
    c.create_namespace(NAMESPACE)
    client = kubernetes.config.new_client_from_config(config_file=str(c.kubeconfig))
    yield c, kubernetes.client.CustomObjectsApi(client), kubernetes.client.CoreV1Api(client)
    c.delete_namespace(NAMESPACE)


def as_kubectl_sends(value):
    """kubectl's YAML to JSON turns a whole float (`epochs: 21.0`) into an integer; so does this.
    (A JSON client sending 21.0 passes the schema but makes CEL rules that read the field fail
    with `expected int, got float64`.)"""
    if isinstance(value, dict):
        return {k: as_kubectl_sends(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_kubectl_sends(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def server_verdict(server, obj: dict) -> tuple[int, set[str], str]:
    """(HTTP status, the fields the server names, its message) of a dry-run create; 201 = accepted."""
    import kubernetes

    c, custom, _ = server
    obj = as_kubectl_sends(copy.deepcopy(obj))
    obj.setdefault("metadata", {})["namespace"] = obj["metadata"].get("namespace") or NAMESPACE
    if obj["metadata"]["namespace"] not in _namespaces:  # e.g. the paper example's `limr`
        c.create_namespace(obj["metadata"]["namespace"])
        _namespaces.add(obj["metadata"]["namespace"])
    try:
        custom.create_namespaced_custom_object("limr.io", "v1alpha1", obj["metadata"]["namespace"], "limrjobs", obj,
                                               dry_run="All", field_validation="Strict")
        return 201, set(), ""
    except kubernetes.client.exceptions.ApiException as exc:
        body = json.loads(exc.body) if (exc.body or "").startswith("{") else {"message": exc.body or ""}
        message = body.get("message", "")
        fields = {c["field"] for c in (body.get("details") or {}).get("causes", []) if c.get("field") not in (None, "<nil>")}
        fields |= set(re.findall(r'unknown field "([^"]+)"', message))  # strict decoding (400)
        return exc.status, fields, message


_namespaces = {NAMESPACE}


def limr_validate(tmp_path, job: dict) -> set[str]:
    """The field paths `limr validate` names for `job` (its error lines: FILE: PATH: MESSAGE [line N])."""
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(["validate", str(path)])
    lines = err.getvalue().splitlines()[1:]
    assert code == (2 if lines else 0), err.getvalue()
    return {line.removeprefix(f"{path}: ").split(": ", 1)[0] for line in lines}


def test_the_generated_crd_is_accepted(server):
    c, _, _ = server
    crd = c.get("crd", "limrjobs.limr.io")
    conditions = {x["type"]: x["status"] for x in crd["status"]["conditions"]}
    assert conditions["Established"] == "True" and conditions.get("NonStructuralSchema") != "True"
    assert crd["spec"]["versions"][0]["schema"] == yaml.safe_load(CRD_FILE.read_text().split("---\n", 1)[1])[
        "spec"]["versions"][0]["schema"]


@pytest.mark.parametrize("case", [b for b in OBJECT_CASES if b.id not in ("wrong-api-version", "wrong-kind")],
                         ids=lambda b: b.id)
def test_the_server_refuses_every_invalid_job_and_limr_validate_names_the_field(server, tmp_path, case: Bad):
    job = edit(BASE, case.changes)
    code, fields, message = server_verdict(server, job)
    assert code in (400, 422), (code, message)
    named = limr_validate(tmp_path, job)
    assert fields & named, f"the server names {sorted(fields)} ({message[:300]}), limr validate {sorted(named)}"


@pytest.mark.parametrize("changes", [{"apiVersion": "limr.io/v1"}, {"kind": "RayJob"}], ids=["apiVersion", "kind"])
def test_a_wrong_api_version_or_kind_is_no_limrjob(server, tmp_path, changes):
    c, _, _ = server
    path = tmp_path / "job.yaml"
    job = edit(BASE, changes)
    job["metadata"]["namespace"] = NAMESPACE
    path.write_text(yaml.safe_dump(job))
    refused = c.kubectl("apply", "--server-side", "--dry-run=server", "-f", str(path), check=False)
    assert refused.returncode != 0, refused.stdout
    assert next(iter(changes)) in limr_validate(tmp_path, job)


@pytest.mark.parametrize("key", sorted(GOOD))
def test_the_server_accepts_every_valid_variant(server, tmp_path, key):
    job = copy.deepcopy(GOOD[key])
    assert server_verdict(server, job)[0] == 201, server_verdict(server, job)
    assert limr_validate(tmp_path, job) == set()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_the_server_accepts_the_examples(server, path):
    job = yaml.safe_load(path.read_text())
    job["metadata"]["namespace"] = NAMESPACE
    assert server_verdict(server, job)[0] == 201, server_verdict(server, job)


@pytest.mark.parametrize("base", [MINIMAL, PAPER], ids=["minimal", "paper"])
def test_the_server_and_limr_validate_agree_on_single_field_mutations(server, base):
    """The sweep of tests/unit/api/test_api_agreement.py, judged by the real server."""
    from limr_api import JobError, load_job

    disagreements = []
    for label, job in mutations(base):
        try:
            load_job(job)
            ours = True
        except JobError:
            ours = False
        code, _, message = server_verdict(server, job)
        if ours != (code == 201):
            disagreements.append(f"{label}: limr validate {'accepts' if ours else 'refuses'}, server {code} {message[:200]}")
    assert disagreements == []


def test_non_finite_numbers_cannot_even_reach_the_server(server, tmp_path):
    c, _, _ = server
    path = tmp_path / "nan.yaml"
    job = edit(BASE, {"spec.reward.correct": float("nan")})
    job["metadata"]["namespace"] = NAMESPACE
    path.write_text(yaml.safe_dump(job))
    refused = c.kubectl("apply", "--server-side", "--dry-run=server", "-f", str(path), check=False)
    assert refused.returncode != 0 and "NaN" in refused.stderr, refused.stderr
    assert "spec.reward.correct" in limr_validate(tmp_path, job)


# ---------------------------------------------------------------- issue 14.8: the server's own rules

# Each case of the CRD's pod-field rules, as the same value in a Pod: the server's own pod validation.
POD_FIELD = {
    "nodeselector-bad-key": ("nodeSelector", {"GPU Type": "h100"}),
    "nodeselector-long-prefix": ("nodeSelector", {"a" * 254 + "/gpu": "h100"}),
    "nodeselector-bad-value": ("nodeSelector", {"gpu": "h100 sxm"}),
    "toleration-exists-with-value": ("tolerations", [{"key": "nvidia.com/gpu", "operator": "Exists", "value": "x"}]),
    "toleration-seconds-without-noexecute": ("tolerations", [{"key": "k", "operator": "Exists",
                                                             "effect": "NoSchedule", "tolerationSeconds": 60}]),
    "toleration-no-key-equal": ("tolerations", [{"operator": "Equal", "value": "x"}]),
    "toleration-bad-key": ("tolerations", [{"key": "dedicated node", "operator": "Exists"}]),
    "toleration-long-prefix": ("tolerations", [{"key": "p" * 254 + "/gpu", "operator": "Exists"}]),
    "toleration-bad-value": ("tolerations", [{"key": "dedicated", "value": "ml team"}]),
    "queue-longer-than-a-label-value": ("labels", {"kueue.x-k8s.io/queue-name": "q" * 64}),
}


def pod(field: str, value, image: str = "ghcr.io/limr/trainer:0.1.0") -> dict:
    out = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe", "namespace": NAMESPACE},
           "spec": {"containers": [{"name": "c", "image": image}]}}
    if field == "labels":
        out["metadata"]["labels"] = value
    elif field:
        out["spec"][field] = value
    return out


def pod_refused(server, obj: dict) -> str | None:
    c, _, _ = server
    done = c.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(obj), check=False)
    return done.stderr if done.returncode else None


@pytest.mark.parametrize("case_id", sorted(POD_FIELD))
def test_a_pod_field_rule_is_the_servers_own(server, tmp_path, case_id):
    case = next(b for b in OBJECT_CASES if b.id == case_id)
    code, fields, message = server_verdict(server, edit(BASE, case.changes))
    assert code == 422 and fields & limr_validate(tmp_path, edit(BASE, case.changes)), message
    field, value = POD_FIELD[case_id]
    assert pod_refused(server, pod(field, value)), f"the server accepts a Pod with {field}={value!r}"


def test_images_with_whitespace(server, tmp_path):
    """The server refuses leading or trailing whitespace in a pod's image; an image reference can
    hold none at all (the kubelet refuses it: InvalidImageName), so the CRD refuses any."""
    assert pod_refused(server, pod("", None, image=" ghcr.io/limr/trainer:0.1.0"))
    assert server_verdict(server, edit(BASE, {"spec.cluster.image": " ghcr.io/limr/trainer:0.1.0"}))[0] == 422
    assert server_verdict(server, edit(BASE, {"spec.cluster.image": "ghcr.io/limr/trainer: 0.1.0"}))[0] == 422
    assert "spec.cluster.image" in limr_validate(tmp_path, edit(BASE, {"spec.cluster.image": "a b"}))


def test_the_servers_edges_pass_in_a_pod_too(server):
    edges = GOOD["server-edges"]["spec"]["cluster"]
    for field in ("nodeSelector", "tolerations"):
        assert pod_refused(server, pod(field, edges["head"][field])) is None
    assert pod_refused(server, pod("labels", {"kueue.x-k8s.io/queue-name": edges["queue"]})) is None
    assert pod_refused(server, pod("", None, image=edges["image"])) is None


@pytest.mark.parametrize("case", METADATA_CASES, ids=lambda b: b.id)
def test_metadata_the_server_refuses_limr_validate_refuses(server, tmp_path, case: Bad):
    c, _, _ = server
    job = edit(BASE, case.changes)
    if "metadata.namespace" in case.changes:  # the server's rule is the Namespace's name rule
        refused = c.kubectl("create", "namespace", case.changes["metadata.namespace"], "--dry-run=server", check=False)
        assert refused.returncode != 0 and "Invalid value" in refused.stderr, refused.stderr
    else:
        code, fields, message = server_verdict(server, job)
        assert code in (400, 422), message
        assert any(f.startswith(("metadata.labels", "metadata.annotations")) for f in fields) or \
            "ObjectMeta.labels" in message, message
    named = limr_validate(tmp_path, job)
    assert any(p.startswith("metadata.") for p in named), named


# -------------------------------------------------------------------------------- updates, kubectl
def test_model_and_dataset_are_immutable(server):
    c, _, _ = server
    job = copy.deepcopy(BASE)
    job["metadata"].update(name="immutable", namespace=NAMESPACE)
    c.apply(job)
    try:
        for path, message in (("spec.model.name", "model is immutable"), ("spec.dataset.uri", "dataset is immutable")):
            changed = edit(job, {path: "s3://other/x" if "dataset" in path else "Qwen/Qwen2.5-Math-1.5B"})
            refused = c.kubectl("apply", "--server-side", "--field-manager", "limr-tests", "-f", "-",
                                input=yaml.safe_dump(changed), check=False)
            assert refused.returncode != 0 and message in refused.stderr, refused.stderr
        c.apply(edit(job, {"spec.suspend": True, "spec.backoffLimit": 5}))  # other fields may change
        assert c.get("limrjob", "immutable", NAMESPACE)["spec"]["backoffLimit"] == 5
    finally:
        c.kubectl("delete", "limrjob", "immutable", "-n", NAMESPACE, "--ignore-not-found")


def test_kubectl_get_shows_the_printer_columns(server):
    c, custom, _ = server
    job = copy.deepcopy(BASE)
    job["metadata"].update(name="columns", namespace=NAMESPACE)
    c.apply(job)
    try:
        custom.patch_namespaced_custom_object_status("limr.io", "v1alpha1", NAMESPACE, "limrjobs", "columns", {
            "status": {"phase": "Retrain", "selectedOfTotal": "1389/8523", "metrics": {"rewardMean": 0.25}}})
        table = c.kubectl("get", "limr", "-n", NAMESPACE).stdout.splitlines()
        assert table[0].split() == ["NAME", "PHASE", "SELECTED", "REWARD", "AGE"]
        assert table[1].split()[:4] == ["columns", "Retrain", "1389/8523", "0.25"]
        wide = c.kubectl("get", "limrjobs", "-n", NAMESPACE, "-o", "wide").stdout.splitlines()
        assert wide[0].split() == ["NAME", "PHASE", "SELECTED", "REWARD", "MODEL", "AGE"]
        assert wide[1].split()[4] == "Qwen/Qwen2.5-Math-7B"
    finally:
        c.kubectl("delete", "limrjob", "columns", "-n", NAMESPACE, "--ignore-not-found")


def test_kubectl_explain_shows_the_field_descriptions(server):
    from limr_api.job import LIMRJobSpec
    from limr_api.training import PPOSpec

    c, _, _ = server
    out = c.kubectl("explain", "limrjob.spec.ppo").stdout
    assert LIMRJobSpec.model_fields["ppo"].description in out
    for name in ("clipRange", "klCoef", "trainBatchSize"):
        field = PPOSpec.model_fields[name]
        assert name in out and " ".join(field.description.split())[:40] in " ".join(out.split())
    deep = c.kubectl("explain", "limrjob.spec.cluster.workerGroups.tolerations.tolerationSeconds").stdout
    assert "NoExecute" in deep


def test_limr_validate_as_a_subprocess_matches_the_server(server, tmp_path):
    """Once through the real `limr` script too (the in-process CLI is what the other tests use)."""
    job = edit(BASE, {"spec.cluster.head.nodeSelector": {"GPU Type": "h100"}})
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    done = subprocess.run([sys.executable, "-m", "limr_api.cli", "validate", str(path)], capture_output=True,
                          text=True, check=False, timeout=120)
    assert done.returncode == 2 and "spec.cluster.head.nodeSelector: nodeSelector keys are label keys" in done.stderr
    assert "spec.cluster.head.nodeSelector" in server_verdict(server, job)[1]
