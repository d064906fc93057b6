"""Fixtures of the operator's tests on the real control plane: the CRD, the chart installed with helm
(cluster-wide), a namespace per test with the storage Secret, and the operator process running as the
chart's ServiceAccount (see tests/realoperator.py)."""

from __future__ import annotations

import pytest
from realoperator import Kube, Operator, Release, create_secret, install_crd, short_id


@pytest.fixture(scope="session")
def kube(real_cluster) -> Kube:
    install_crd(real_cluster)
    return Kube(real_cluster)


@pytest.fixture(scope="session")
def cluster_release(real_cluster, kube):
    """The chart, cluster-wide (the default values), in its own namespace."""
    release = Release(real_cluster, f"limr-{short_id()}", f"limr-system-{short_id()}").install()
    yield release
    release.uninstall()
    real_cluster.delete_namespace(release.namespace)


@pytest.fixture(scope="module")
def operator(cluster_release, tmp_path_factory):
    """`limr operator -A` as the cluster-wide release's ServiceAccount, for a whole test module."""
    op = Operator(cluster_release.kubeconfig(), ["--all-namespaces"], tmp_path_factory.mktemp("operator"))
    op.start()
    yield op
    op.stop()


@pytest.fixture
def namespace(real_cluster, kube):
    """A fresh namespace with the jobs' storage Secret; its LIMRJobs are deleted at the end (while the
    module's operator still runs, so their finalizers are released)."""
    name = real_cluster.create_namespace(f"limr-op-{short_id()}")
    create_secret(kube, name)
    yield name
    for job in kube.custom.list_namespaced_custom_object("limr.io", "v1alpha1", name, "limrjobs")["items"]:
        kube.delete_job(name, job["metadata"]["name"])
    real_cluster.delete_namespace(name)
