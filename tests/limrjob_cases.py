"""The LIMRJobs of the test suite: a valid base, every invalid variant (with the message `limr
validate` gives and the one the CRD gives) and valid variants. One list, used offline by
tests/unit/api (pydantic against the CRD evaluated in Python) and on the real API server by
tests/integration/cluster/test_api_on_server.py.
"""

from __future__ import annotations

import copy
import os
import random
from dataclasses import dataclass, field
from typing import Any

import yaml
from limr_api.crd import crd
from paths import REPO

DELETE = object()

BASE: dict[str, Any] = {
    "apiVersion": "limr.io/v1alpha1",
    "kind": "LIMRJob",
    "metadata": {"name": "math-run"},
    "spec": {
        "model": {"name": "Qwen/Qwen2.5-Math-7B"},
        "dataset": {"uri": "s3://limr-data/math.8k.json"},
        "storage": {"uri": "s3://limr-artifacts/runs", "secretRef": {"name": "s3-creds"}},
        "cluster": {
            "workerGroups": [
                {"name": "rollout", "role": "rollout", "replicas": 1, "gpus": 4},
                {"name": "train", "role": "train", "replicas": 3, "gpus": 4},
            ]
        },
    },
}


def edit(job: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A copy of `job` with dotted paths (`a.b[0].c`) set, or removed with DELETE."""
    job = copy.deepcopy(job)
    for path, value in changes.items():
        parts: list[Any] = []
        for piece in path.split("."):
            name, _, index = piece.partition("[")
            parts.append(name)
            if index:
                parts.append(int(index.rstrip("]")))
        node = job
        for part in parts[:-1]:
            node = node[part] if isinstance(part, int) else node.setdefault(part, {})
        if value is DELETE:
            del node[parts[-1]]
        else:
            node[parts[-1]] = value
    return job


@dataclass
class Bad:
    """An invalid job: `cli` must appear in one `limr validate` error line, `crd` in one CRD error."""

    id: str
    changes: dict[str, Any] = field(default_factory=dict)
    cli: str = ""
    crd: str | None = None  # None: not a YAML object (the API server never sees it)
    text: str | None = None  # raw file content instead of BASE + changes


SPEC_ONLY_LOCAL = {"spec.storage": {"uri": "/data/limr"}}
BAD: list[Bad] = [
    # wrong types
    Bad(
        "number-as-string",
        {"spec.ppo.gamma": "1"},
        "spec.ppo.gamma: Input should be a valid number",
        "spec.ppo.gamma: '1' is not of type 'number'",
    ),
    Bad(
        "int-as-string",
        {"spec.baseline.epochs": "21"},
        "spec.baseline.epochs: Input should be a valid integer",
        "spec.baseline.epochs: '21' is not of type 'integer'",
    ),
    Bad(
        "fractional-int",
        {"spec.retrain.epochs": 2.5},
        "spec.retrain.epochs: Input should be a valid integer",
        "spec.retrain.epochs: 2.5 is not of type 'integer'",
    ),
    Bad(
        "bool-as-string",
        {"spec.suspend": "yes"},
        "spec.suspend: Input should be a valid boolean",
        "spec.suspend: 'yes' is not of type 'boolean'",
    ),
    Bad(
        "object-as-number",
        {"spec.ppo": 5},
        "spec.ppo: expected a mapping of fields (got 5)",
        "spec.ppo: 5 is not of type 'object'",
    ),
    Bad(
        "list-as-string",
        {"spec.retrain.comparisons": "random"},
        "spec.retrain.comparisons: Input should be a valid list",
        "spec.retrain.comparisons: 'random' is not of type 'array'",
    ),
    # unknown fields
    Bad(
        "unknown-field-typo",
        {"spec.ppo.lambd": 0.9},
        "spec.ppo.lambd: unknown field: remove it or check its spelling (did you mean 'lambda'?)",
        "('lambd' was unexpected)",
    ),
    Bad("unknown-spec-field", {"spec.epochs": 21}, "spec.epochs: unknown field", "('epochs' was unexpected)"),
    Bad("unknown-top-field", {"specs": {}}, "specs: unknown field", "('specs' was unexpected)"),
    # missing / null required
    Bad(
        "missing-model",
        {"spec.model": DELETE},
        "spec.model: required field is missing",
        "'model' is a required property",
    ),
    Bad(
        "null-required",
        {"spec.storage": None},
        "spec.storage: required field is missing",
        "'storage' is a required property",
    ),
    Bad(
        "missing-benchmark-uri",
        {"spec.evaluation.benchmarks": [{"name": "math500"}]},
        "spec.evaluation.benchmarks[0].uri: required field is missing",
        "'uri' is a required property",
    ),
    # out of range
    Bad(
        "threshold-above-1",
        {"spec.selection.threshold": 1.5},
        "spec.selection.threshold: Input should be less than or equal to 1",
        "spec.selection.threshold: 1.5 is greater than the maximum of 1",
    ),
    Bad(
        "negative-temperature",
        {"spec.rollout.sampling.temperature": -0.1},
        "spec.rollout.sampling.temperature: Input should be greater than or equal to 0",
        "less than the minimum of 0",
    ),
    Bad(
        "zero-clip",
        {"spec.ppo.clipRange": 0},
        "spec.ppo.clipRange: Input should be greater than 0",
        "less than or equal to the minimum of 0",
    ),
    Bad(
        "negative-gpus",
        {"spec.cluster.workerGroups[1].gpus": -4},
        "spec.cluster.workerGroups[1].gpus: Input should be greater than or equal to 0",
        "spec.cluster.workerGroups[1].gpus: -4 is less than the minimum of 0",
    ),
    Bad(
        "negative-role-gpus",
        {"spec.ppo.actor.gpus": -1},
        "spec.ppo.actor.gpus: Input should be greater than or equal to 0",
        "spec.ppo.actor.gpus",
    ),
    Bad(
        "too-many-gpus",
        {"spec.cluster.workerGroups[0].gpus": 17},
        "spec.cluster.workerGroups[0].gpus: Input should be less than or equal to 16",
        "17 is greater than the maximum of 16",
    ),
    Bad(
        "betas-length",
        {"spec.ppo.adamBetas": [0.9, 0.95, 0.99]},
        "spec.ppo.adamBetas: List should have at most 2 items",
        "is too long",
    ),
    Bad(
        "too-many-groups",
        {"spec.cluster.workerGroups": [{"name": f"g{i}", "role": "train"} for i in range(17)]},
        "spec.cluster.workerGroups: List should have at most 16 items",
        "is too long",
    ),
    # enums, patterns, names
    Bad(
        "bad-backend",
        {"spec.rollout.backend": "sglang"},
        "spec.rollout.backend: Input should be 'vllm' or 'hf'",
        "'sglang' is not one of ['vllm', 'hf']",
    ),
    Bad(
        "bad-strategy",
        {"spec.selection.strategy": "LIM"},
        "spec.selection.strategy: Input should be 'lim', 'linear' or 'random'",
        "'LIM' is not one of",
    ),
    Bad(
        "bad-storage-scheme",
        {"spec.storage.uri": "gs://bucket/runs"},
        "spec.storage.uri: expected a storage URI",
        "spec.storage.uri: 'gs://bucket/runs' does not match",
    ),
    Bad(
        "bad-bucket",
        {"spec.storage.uri": "s3://B/x"},
        "spec.storage.uri: expected a storage URI",
        "spec.storage.uri: 's3://B/x' does not match",
    ),
    Bad(
        "bad-endpoint",
        {"spec.storage.endpoint": "minio:9000"},
        "spec.storage.endpoint: expected an http:// or https:// URL",
        "spec.storage.endpoint: 'minio:9000' does not match",
    ),
    Bad(
        "bad-job-name",
        {"metadata.name": "Math_Run"},
        "metadata.name: expected a DNS label",
        "metadata.name: 'Math_Run' does not match",
    ),
    Bad(
        "long-job-name",
        {"metadata.name": "a" * 41},
        "metadata.name: String should have at most 40 characters",
        "metadata.name: '" + "a" * 41 + "' is too long",
    ),
    Bad(
        "bad-group-name",
        {"spec.cluster.workerGroups[0].name": "rollout_pods"},
        "spec.cluster.workerGroups[0].name: expected a DNS label",
        "does not match",
    ),
    Bad(
        "bad-memory",
        {"spec.cluster.head.memory": "lots"},
        "spec.cluster.head.memory: expected a Kubernetes quantity",
        "spec.cluster.head.memory: 'lots' does not match",
    ),
    Bad(
        "empty-model-name",
        {"spec.model.name": ""},
        "spec.model.name: String should have at least 1 character",
        "spec.model.name: '' should be non-empty",
    ),
    Bad(
        "wrong-api-version",
        {"apiVersion": "limr.io/v1"},
        "apiVersion: Input should be 'limr.io/v1alpha1'",
        "apiVersion: 'limr.io/v1' is not served",
    ),
    Bad(
        "wrong-kind", {"kind": "RayJob"}, "kind: Input should be 'LIMRJob'", "kind: 'RayJob' is not 'LIMRJob'"
    ),
    # cross-field rules (CEL in the CRD)
    Bad(
        "no-phase",
        {
            "spec.baseline.enabled": False,
            "spec.selection.enabled": False,
            "spec.retrain.enabled": False,
            "spec.evaluation.enabled": False,
        },
        "spec: enable at least one phase",
        "spec: enable at least one phase",
    ),
    Bad(
        "selection-without-records",
        {"spec.baseline.enabled": False},
        "spec.selection: selection needs baseline reward records",
        "spec.selection: selection needs baseline reward records",
    ),
    Bad(
        "retrain-without-selection",
        {"spec.selection.enabled": False},
        "spec.retrain: retrain trains on the selected subset",
        "spec.retrain: retrain trains on the selected subset",
    ),
    Bad(
        "endpoint-on-local-storage",
        {"spec.storage": {"uri": "/data/limr", "endpoint": "http://minio:9000"}},
        "spec.storage: endpoint and secretRef apply to s3:// storage only",
        "spec.storage: endpoint and secretRef apply to s3:// storage only",
    ),
    Bad(
        "secret-on-local-storage",
        {"spec.storage.uri": "file:///data/limr"},
        "spec.storage: endpoint and secretRef apply to s3:// storage only",
        "spec.storage: endpoint and secretRef apply to s3:// storage only",
    ),
    Bad(
        "records-with-baseline",
        {"spec.baseline.recordsUri": "s3://old/run/baseline"},
        "spec.baseline.recordsUri: recordsUri replaces the baseline run",
        "spec.baseline.recordsUri: recordsUri replaces the baseline run",
    ),
    Bad(
        "linear-negative-threshold",
        {"spec.selection.strategy": "linear", "spec.selection.threshold": -0.2},
        "spec.selection.threshold: linear scores are R^2 in [0, 1]",
        "spec.selection.threshold: linear scores are R^2 in [0, 1]",
    ),
    Bad(
        "size-with-lim",
        {"spec.selection.size": 1389},
        "spec.selection.size: size applies to strategy random only",
        "spec.selection.size: size applies to strategy random only",
    ),
    Bad(
        "early-stop-without-baseline",
        {"spec.baseline.enabled": False, "spec.baseline.recordsUri": "s3://old/run", "spec.selection.earlyStop": {}},
        "spec.selection: selection.earlyStop ends the baseline run early",
        "spec.selection: selection.earlyStop ends the baseline run early",
    ),
    Bad(
        "early-stop-never-early",
        {"spec.baseline.epochs": 4, "spec.selection.earlyStop": {"minEpochs": 4}},
        "spec.selection: selection.earlyStop.minEpochs must be below baseline.epochs",
        "spec.selection: selection.earlyStop.minEpochs must be below baseline.epochs",
    ),
    Bad(
        "early-stop-random",
        {"spec.selection.strategy": "random", "spec.selection.earlyStop": {"minEpochs": 2}},
        "spec.selection.earlyStop: earlyStop waits for the lim or linear selection to settle",
        "spec.selection.earlyStop: earlyStop waits for the lim or linear selection to settle",
    ),
    Bad(
        "early-stop-jaccard-above-1",
        {"spec.selection.earlyStop": {"minJaccard": 1.5}},
        "spec.selection.earlyStop.minJaccard: Input should be less than or equal to 1",
        "spec.selection.earlyStop.minJaccard: 1.5 is greater than the maximum of 1",
    ),
    Bad(
        "every-steps-zero",
        {"spec.evaluation.everySteps": 0},
        "spec.evaluation.everySteps: Input should be greater than or equal to 1",
        "spec.evaluation.everySteps: 0 is less than the minimum of 1",
    ),
    Bad(
        "repeated-comparison",
        {"spec.retrain.comparisons": ["random", "random"]},
        "spec.retrain.comparisons: comparisons must not repeat an arm",
        "spec.retrain.comparisons[1]: Duplicate value",
    ),
    Bad(
        "evaluation-without-benchmarks",
        {"spec.evaluation.benchmarks": []},
        "spec.evaluation.benchmarks: evaluation needs at least one benchmark",
        "spec.evaluation.benchmarks: evaluation needs at least one benchmark",
    ),
    Bad(
        "duplicate-benchmarks",
        {
            "spec.evaluation.benchmarks": [
                {"name": "aime24", "uri": "a.jsonl"},
                {"name": "aime24", "uri": "b.jsonl"},
            ]
        },
        "spec.evaluation.benchmarks: benchmark names must be unique",
        "spec.evaluation.benchmarks[1]: Duplicate value",
    ),
    Bad(
        "micro-batch-divides",
        {"spec.ppo.microBatchSize": 3},
        "spec.ppo.trainBatchSize: trainBatchSize must be a multiple of microBatchSize",
        "spec.ppo.trainBatchSize: trainBatchSize must be a multiple of microBatchSize",
    ),
    Bad(
        "rollout-batch-divides",
        {"spec.ppo.rolloutBatchSize": 1000, "spec.ppo.samplesPerPrompt": 1},
        "spec.ppo.rolloutBatchSize: rolloutBatchSize x samplesPerPrompt must be a multiple of trainBatchSize",
        "spec.ppo.rolloutBatchSize: rolloutBatchSize x samplesPerPrompt",
    ),
    Bad(
        "beta-of-one",
        {"spec.ppo.adamBetas": [0.9, 1.0]},
        "spec.ppo.adamBetas: adamBetas must each be in [0, 1)",
        "spec.ppo.adamBetas: adamBetas must each be in [0, 1)",
    ),
    Bad(
        "duplicate-group-names",
        {"spec.cluster.workerGroups[1].name": "rollout"},
        "spec.cluster.workerGroups: worker group names must be unique",
        "spec.cluster.workerGroups[1]: Duplicate value",
    ),
    Bad(
        "no-train-group",
        {"spec.cluster.workerGroups[1].role": "rollout"},
        "spec.cluster.workerGroups: at least one worker group with replicas > 0 must have role train or any",
        "spec.cluster.workerGroups: at least one worker group",
    ),
    Bad(
        "empty-train-group",
        {"spec.cluster.workerGroups[1].replicas": 0},
        "spec.cluster.workerGroups: at least one worker group with replicas > 0",
        "spec.cluster.workerGroups: at least one worker group",
    ),
    # the API server's own rules for pod fields (issue 14.8), mirrored in the CRD and limr validate
    Bad(
        "nodeselector-bad-key",
        {"spec.cluster.head.nodeSelector": {"GPU Type": "h100"}},
        "spec.cluster.head.nodeSelector: nodeSelector keys are label keys",
        "spec.cluster.head.nodeSelector: nodeSelector keys are label keys",
    ),
    Bad(
        "nodeselector-long-prefix",
        {"spec.cluster.workerGroups[0].nodeSelector": {"a" * 254 + "/gpu": "h100"}},
        "spec.cluster.workerGroups[0].nodeSelector: nodeSelector keys are label keys",
        "spec.cluster.workerGroups[0].nodeSelector: nodeSelector keys are label keys",
    ),
    Bad(
        "nodeselector-bad-value",
        {"spec.cluster.workerGroups[0].nodeSelector": {"gpu": "h100 sxm"}},
        "spec.cluster.workerGroups[0].nodeSelector.gpu: expected a label value",
        "spec.cluster.workerGroups[0].nodeSelector.gpu: 'h100 sxm' does not match",
    ),
    Bad(
        "toleration-exists-with-value",
        {"spec.cluster.workerGroups[0].tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "value": "x"}]},
        "spec.cluster.workerGroups[0].tolerations[0].value: operator Exists matches any value",
        "spec.cluster.workerGroups[0].tolerations[0].value: operator Exists matches any value",
    ),
    Bad(
        "toleration-seconds-without-noexecute",
        {"spec.cluster.head.tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule",
                                            "tolerationSeconds": 60}]},
        "spec.cluster.head.tolerations[0].tolerationSeconds: tolerationSeconds applies to effect NoExecute only",
        "spec.cluster.head.tolerations[0].tolerationSeconds: tolerationSeconds applies to effect NoExecute only",
    ),
    Bad(
        "toleration-no-key-equal",
        {"spec.cluster.head.tolerations": [{"operator": "Equal", "value": "x"}]},
        "spec.cluster.head.tolerations[0].operator: a toleration without a key tolerates every taint",
        "spec.cluster.head.tolerations[0].operator: a toleration without a key tolerates every taint",
    ),
    Bad(
        "toleration-bad-key",
        {"spec.cluster.head.tolerations": [{"key": "dedicated node", "operator": "Exists"}]},
        "spec.cluster.head.tolerations[0].key: expected a label key",
        "spec.cluster.head.tolerations[0].key: 'dedicated node' does not match",
    ),
    Bad(
        "toleration-long-prefix",
        {"spec.cluster.head.tolerations": [{"key": "p" * 254 + "/gpu", "operator": "Exists"}]},
        "spec.cluster.head.tolerations[0].key: expected a label key",
        "spec.cluster.head.tolerations[0].key: the key's prefix (before '/') may have at most 253 characters",
    ),
    Bad(
        "toleration-bad-value",
        {"spec.cluster.head.tolerations": [{"key": "dedicated", "value": "ml team"}]},
        "spec.cluster.head.tolerations[0].value: expected a label value",
        "spec.cluster.head.tolerations[0].value: 'ml team' does not match",
    ),
    Bad(
        "image-with-space",
        {"spec.cluster.image": "ghcr.io/limr/trainer: 0.1.0"},
        "spec.cluster.image: an image reference has no whitespace",
        "spec.cluster.image: 'ghcr.io/limr/trainer: 0.1.0' does not match",
    ),
    Bad(
        "queue-longer-than-a-label-value",
        {"spec.cluster.queue": "q" * 64},
        "spec.cluster.queue: String should have at most 63 characters",
        "spec.cluster.queue: '" + "q" * 64 + "' is too long",
    ),
    Bad(
        "queue-with-seven-worker-groups",
        {"spec.cluster.queue": "gpu", "spec.cluster.workerGroups": [
            {"name": f"g{i}", "role": "train"} for i in range(7)]},
        "spec.cluster.workerGroups: with a Kueue queue at most 6 worker groups",
        "spec.cluster.workerGroups: with a Kueue queue at most 6 worker groups",
    ),
    Bad(
        "queue-with-group-named-head",
        {"spec.cluster.queue": "gpu", "spec.cluster.workerGroups[0].name": "head"},
        "spec.cluster.workerGroups: with a Kueue queue no worker group may be named 'head'",
        "spec.cluster.workerGroups: with a Kueue queue no worker group may be named 'head'",
    ),
    Bad(
        "queue-with-group-named-submitter",
        {"spec.cluster.queue": "gpu", "spec.cluster.workerGroups[1].name": "submitter"},
        "spec.cluster.workerGroups: with a Kueue queue no worker group may be named 'head' or 'submitter'",
        "spec.cluster.workerGroups: with a Kueue queue no worker group may be named 'head' or 'submitter'",
    ),
    Bad(
        "nan-reward",
        {"spec.reward.correct": float("nan")},
        "spec.reward.correct: Input should be a finite number",
        None,  # JSON has no NaN: kubectl cannot even send it (test_api_on_server checks that)
    ),
    Bad(
        "inf-threshold",
        {"spec.selection.threshold": float("inf")},
        "spec.selection.threshold: Input should be a finite number",
        None,
    ),
    # files that are not a job
    Bad(
        "malformed-yaml",
        text="apiVersion: limr.io/v1alpha1\nkind: LIMRJob\nspec:\n  model: {name: x\n  dataset: [\n",
        cli="malformed YAML at line 5",
    ),
    Bad(
        "bad-indentation",
        text="apiVersion: limr.io/v1alpha1\nkind: LIMRJob\nmetadata:\n  name: a\n   spec: x\n",
        cli="malformed YAML at line 5, column 8",
    ),
    Bad(
        "duplicate-key",
        text="apiVersion: limr.io/v1alpha1\nkind: LIMRJob\nmetadata: {name: a}\nspec: {}\nspec: {}\n",
        cli="malformed YAML at line 5, column 1: duplicate key 'spec' (first at line 4)",
    ),
    Bad(
        "not-a-mapping",
        text="- apiVersion: limr.io/v1alpha1\n",
        cli="a LIMRJob is a mapping with apiVersion, kind, metadata and spec",
    ),
    Bad(
        "two-documents",
        text="kind: LIMRJob\n---\nkind: LIMRJob\n",
        cli="expected exactly one YAML document, found 2",
    ),
    Bad("empty-file", text="# nothing here\n", cli="expected exactly one YAML document, found 0"),
    Bad("missing-file", cli="no-such-job.yaml: no such file"),
]
OBJECT_CASES = [b for b in BAD if b.crd is not None]

# metadata the API server checks on every object (ValidateObjectMeta); a CRD cannot restrict it, so
# these are limr validate's own checks and the real API server's (tests/integration/cluster).
METADATA_CASES: list[Bad] = [
    Bad("namespace-not-a-dns-label", {"metadata.namespace": "ML_Team"},
        "metadata.namespace: a namespace is a DNS label"),
    Bad("namespace-too-long", {"metadata.namespace": "n" * 64}, "metadata.namespace: a namespace is a DNS label"),
    Bad("label-bad-key", {"metadata.labels": {"team name": "ml"}}, "metadata.labels: label key 'team name'"),
    Bad("label-bad-value", {"metadata.labels": {"team": "ml research"}}, "metadata.labels: label 'team': value"),
    Bad("label-value-too-long", {"metadata.labels": {"team": "t" * 64}}, "metadata.labels: label 'team': value"),
    Bad("label-not-a-string", {"metadata.labels": {"replicas": 3}}, "metadata.labels.replicas: Input should be a valid string"),
    Bad("annotation-bad-key", {"metadata.annotations": {"-note": "x"}}, "metadata.annotations: annotation key '-note'"),
    Bad("annotations-too-large", {"metadata.annotations": {"note": "x" * (256 * 1024)}},
        "metadata.annotations: annotations take 262148 bytes"),
]


GOOD: dict[str, dict[str, Any]] = {
    "base": BASE,
    "local-minimal": edit(BASE, {**SPEC_ONLY_LOCAL, "spec.cluster": DELETE}),
    "null-on-nullable": edit(BASE, {"spec.selection.threshold": None, "spec.model.revision": None}),
    "null-on-defaulted": edit(BASE, {"spec.ppo": None, "spec.suspend": None}),
    "whole-float-int": edit(BASE, {"spec.baseline.epochs": 21.0}),
    "int-for-number": edit(BASE, {"spec.ppo.gamma": 1, "spec.ppo.adamBetas": [0, 0.5]}),
    "random-without-baseline": edit(
        BASE,
        {"spec.baseline.enabled": False, "spec.selection.strategy": "random", "spec.selection.size": 1389},
    ),
    "existing-records": edit(
        BASE, {"spec.baseline.enabled": False, "spec.baseline.recordsUri": "s3://old/run"}
    ),
    "evaluation-only": edit(
        BASE, {"spec.baseline.enabled": False, "spec.selection.enabled": False, "spec.retrain.enabled": False}
    ),
    "linear-threshold": edit(BASE, {"spec.selection.strategy": "linear", "spec.selection.threshold": 0.7}),
    "early-selection": edit(BASE, {
        "spec.selection.earlyStop": {"minEpochs": 3, "stableEpochs": 2, "minJaccard": 0.9, "observeOnly": True},
        "spec.evaluation.everySteps": 8,
    }),
    "lim-negative-threshold": edit(BASE, {"spec.selection.threshold": -0.5}),
    # edges the API server accepts (issue 14.8: not stricter than the server either)
    "server-edges": edit(BASE, {
        "metadata.namespace": "ml-" + "n" * 60,
        "metadata.labels": {"team": "t" * 63, "example.com/owner": "a.b_c-d", "empty": ""},
        "metadata.annotations": {"Example.com/Note": "upper-case prefixes are lowercased first"},
        "spec.cluster.image": "registry.example.com:5000/limr/trainer@sha256:" + "0" * 64,
        "spec.cluster.queue": "q" * 63,
        "spec.cluster.head.nodeSelector": {"example.com/" + "p" * 63: "v" * 63, "pool": ""},
        "spec.cluster.head.tolerations": [
            {"operator": "Exists"},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 60},
            {"key": "dedicated", "value": "ml", "effect": "NoSchedule"},
            {"key": "nvidia.com/gpu", "operator": "Exists", "value": ""},
        ],
        "spec.cluster.workerGroups": [{"name": f"g{i}", "role": "train"} for i in range(6)],
    }),
}




# ------------------------------------------------------------ single-field mutations (the agreement sweep)
SCHEMA = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
SAMPLE = None if os.environ.get("LIMR_API_FULL_SWEEP") == "1" else 150
MINIMAL = {
    "apiVersion": "limr.io/v1alpha1",
    "kind": "LIMRJob",
    "metadata": {"name": "mini"},
    "spec": {"model": {"name": "m"}, "dataset": {"uri": "d"}, "storage": {"uri": "/tmp/s"}},
}
PAPER = yaml.safe_load((REPO / "manifests/examples/qwen-math-7b-limr.yaml").read_text())


def leaves(node: dict[str, Any], at: list[Any]):
    """(path, schema) of every field below `node`, plus an unknown sibling in each object."""
    if node.get("type") == "object" and "properties" in node:
        for key, sub in node["properties"].items():
            yield from leaves(sub, [*at, key])
        yield [*at, "unknownField"], {"type": "unknown"}
    elif node.get("type") == "array" and node["items"].get("type") == "object":
        yield at, node
        yield from leaves(node["items"], [*at, 0])
    else:
        yield at, node


def candidates(node: dict[str, Any]) -> list[Any]:
    """Values that probe one field: wrong types, null, bounds, lengths, patterns, enums."""
    kind = node.get("type")
    out: list[Any] = [None, "x", 1.5, True, [], {}]
    lo, hi = node.get("minimum"), node.get("maximum")
    if kind == "integer":
        out += [3, "3", 3.0, 2**70]
        out += [] if lo is None else [lo - 1, lo]
        out += [] if hi is None else [hi, hi + 1]
    if kind == "number":
        out += [2, "1.0"]
        out += [] if lo is None else [lo - 0.5, lo]
        out += [] if hi is None else [hi, hi + 0.5]
    if kind == "string":
        n = node.get("maxLength", 10)
        out += ["", "a" * n, "a" * (n + 1), "Foo_bar", "s3://ok-bucket/x", "gs://b", "http://h", 7]
    if kind == "boolean":
        out += [False, "yes", 0, 1]
    if kind == "array":
        out += [[{}], [None], ["random"], ["random", "random"], [0.5, 0.5], [0.5, 1.0]]
    for value in node.get("enum", [])[:1]:
        out += [value, value.upper()]
    return out


def mutate(job: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any] | None:
    job = copy.deepcopy(job)
    node: Any = job
    for part in path[:-1]:
        if isinstance(part, int):
            if not isinstance(node, list) or not node:
                return None
            node = node[part]
        else:
            node = node.setdefault(part, {})
    if not isinstance(node, dict):
        return None
    node[path[-1]] = value
    return job


def mutations(base: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Single-field mutations of `base` (a fixed-seed sample of them; all with LIMR_API_FULL_SWEEP=1)."""
    out = []
    for path, node in leaves(SCHEMA, []):
        if path[0] not in ("spec", "metadata"):
            continue
        for value in candidates(node):
            job = mutate(base, path, value)
            if job is not None:
                out.append((f"{'.'.join(map(str, path))}={value!r:.30}", job))
    if SAMPLE is not None:
        out = random.Random(20251125).sample(out, SAMPLE)
    return out


