"""The chart's single-namespace modes on the real control plane, each with the operator running as
that release's ServiceAccount: exact namespace names (Roles there and no namespaces permission: the
operator turns kopf's namespace scan off, which would otherwise retry a forbidden list for about a
minute before serving anything) and glob patterns (kopf lists and watches namespaces: the chart
grants that and its rules cluster-wide). A namespace outside the watch is never touched."""

from __future__ import annotations

import json
import time

import pytest
from realoperator import Operator, Release, create_secret, limr_job, s3_storage, short_id, write_done

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def wait(c, predicate, what, timeout=60):
    return c.wait_for(predicate, timeout=timeout, what=what, interval=0.2)


@pytest.fixture
def namespaces(real_cluster, kube):
    made: list[str] = []

    def make(name: str) -> str:
        made.append(real_cluster.create_namespace(name))
        create_secret(kube, name)
        return name

    yield make
    for ns in made:
        for job in kube.custom.list_namespaced_custom_object("limr.io", "v1alpha1", ns, "limrjobs")["items"]:
            kube.patch_job(ns, job["metadata"]["name"], {"metadata": {"finalizers": None}})
        real_cluster.delete_namespace(ns)


def run_until_retrain(c, kube, ns, name, s3_server, s3_bucket, s3_client):
    """Baseline (RayJob), then the Selection Job, finished and deleted by its TTL: the operator reads
    the step's _DONE.json with the job's Secret (which the chart lets it get) and moves on."""
    kube.create_job(limr_job(name, ns, s3_storage(s3_server, s3_bucket)))
    wait(c, lambda: kube.rayjob(ns, f"{name}-baseline-1"), "the baseline RayJob")
    kube.finish_rayjob(ns, f"{name}-baseline-1")
    wait(c, lambda: kube.batch_job(ns, f"{name}-select-1"), "the Selection Job")
    write_done(s3_client, s3_bucket, name, "selection")
    kube.finish_job_pods(ns, f"{name}-select-1")
    wait(c, lambda: kube.phase(ns, name) == "Retrain", "phase Retrain")


def test_single_namespace_mode(real_cluster, kube, namespaces, tmp_path, s3_server, s3_bucket, s3_client):
    c, tag = real_cluster, short_id()
    watched, other = namespaces(f"limr-ml-{tag}"), namespaces(f"limr-other-{tag}")
    release = Release(c, f"limr-ns-{tag}", f"limr-ns-system-{tag}",
                      ["watch.scope=namespace", f"watch.namespaces={{{watched}}}"]).install()
    try:
        cluster_rules = [r for cr in c.kubectl_json("get", "clusterroles", "-l",
                                                    f"app.kubernetes.io/instance={release.name}")["items"]
                         for r in cr["rules"]]
        assert {res for r in cluster_rules for res in r["resources"]} == {"customresourcedefinitions"}
        op = Operator(release.kubeconfig(), [f"--namespace={watched}"], tmp_path)
        with op.running():
            kube.create_job(limr_job("elsewhere", other, s3_storage(s3_server, s3_bucket)))
            run_until_retrain(c, kube, watched, "scoped", s3_server, s3_bucket, s3_client)
            time.sleep(2)
            untouched = kube.job(other, "elsewhere")
            assert not untouched["metadata"].get("finalizers") and not untouched.get("status")
            assert kube.rayjobs(other) == []
        assert op.forbidden_lines() == [], "\n".join(op.forbidden_lines())
        assert "/api/v1/namespaces ->" not in op.output()  # kopf never tried to list namespaces
    finally:
        release.uninstall()
        c.delete_namespace(release.namespace)


def test_glob_patterns(real_cluster, kube, namespaces, tmp_path, s3_server, s3_bucket, s3_client):
    c, tag = real_cluster, short_id()
    pattern = f"limr-team-{tag}-*"
    release = Release(c, f"limr-glob-{tag}", f"limr-glob-system-{tag}",
                      ["watch.scope=namespace", f"watch.namespaces={{{pattern}}}"]).install()
    try:
        op = Operator(release.kubeconfig(), [f"--namespace={pattern}"], tmp_path)
        with op.running():
            late = namespaces(f"limr-team-{tag}-a")  # created after the operator started: kopf's watch sees it
            run_until_retrain(c, kube, late, "globbed", s3_server, s3_bucket, s3_client)
        assert op.forbidden_lines() == [], "\n".join(op.forbidden_lines())
        assert json.dumps(kube.status(late, "globbed")["phases"]["selection"]).count("Succeeded") == 1
    finally:
        release.uninstall()
        c.delete_namespace(release.namespace)
