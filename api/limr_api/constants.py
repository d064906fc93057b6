"""Names and bounds of the LIMRJob API that every part shares (no pydantic here)."""

from __future__ import annotations

GROUP = "limr.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "LIMRJob"
PLURAL = "limrjobs"
SINGULAR = "limrjob"
SHORT_NAMES = ["limr"]

LIMR_SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."
DEFAULT_RAY_VERSION = "2.60.0"
DEFAULT_IMAGE = "ghcr.io/limr-operator/limr-trainer:0.1.0"

# s3://bucket[/prefix], file:///abs/path (or file://localhost/...), or an absolute/relative local
# path (local runs only). No user:password anywhere: credentials come from spec.storage.secretRef.
STORAGE_URI_PATTERN = r"^(s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?|file://(localhost)?/.*|[^:]+)$"
DNS_LABEL_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
VERSION_PATTERN = r"^\d+\.\d+\.\d+$"
ENDPOINT_PATTERN = r"^https?://[^/?#@\s]+([/?#]\S*)?$"  # a host[:port], no user:password, no blanks
# A model, dataset, records or benchmark source: a hub id, a path, or scheme://authority/... where the
# authority carries no user:password (credentials come from the environment or the storage Secret).
# RE2-compatible (no look-ahead), as the API server's patterns must be.
SOURCE_URI_PATTERN = r"^([A-Za-z][A-Za-z0-9+.-]*://[^/?#@]*([/?#].*)?|([^:]|:[^/]|:/[^/])*(:|:/)?)$"
REGION_PATTERN = r"^[a-z0-9-]+$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
QUANTITY_PATTERN = r"^([0-9]+(\.[0-9]+)?)(m|Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"

# The API server's own syntax for metadata and pod scheduling fields (k8s.io/apimachinery validation):
# a label value (at most 63), a label or annotation key (a qualified name: an optional DNS-subdomain
# prefix of at most 253 and '/', then a name of at most 63), a namespace (a DNS-1123 label of at most 63).
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
QUALIFIED_NAME_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
QUALIFIED_PREFIX_PATTERN = r"^[^/]{1,253}/"  # with QUALIFIED_NAME_PATTERN: a prefix of at most 253
QUALIFIED_NAME_MAX = 253 + 1 + 63
NAMESPACE_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
ANNOTATIONS_MAX_BYTES = 256 * 1024  # keys and values together (TotalAnnotationSizeLimitB)
IMAGE_PATTERN = r"^\S+$"  # an image reference has no whitespace (the kubelet refuses it, the server trims none)
# Kueue's Workload holds at most 8 pod sets: the head, the K8sJobMode submitter and the worker groups.
KUEUE_MAX_POD_SETS = 8
KUEUE_RESERVED_GROUP = "head"  # Kueue names the head's pod set so; a worker group may not take it


# Kubernetes list semantics (server-side apply merges, duplicate checks), copied into the CRD.
LIST_MAP_BY_NAME = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}
LIST_SET = {"x-kubernetes-list-type": "set"}


# Bounds on strings: the API server's CEL cost estimator charges unbounded strings as if they were
# as long as a whole request, so every string a rule reads (and most others) has a maxLength.
INT32_MAX = 2**31 - 1
URI_MAX = 2048
NAME_MAX = 253
FIELD_MAX = 256
LABEL_VALUE_MAX = 63
# A LIMRJob name is a DNS-1035 label of at most 40 characters, so `<job>-<phase>[-<arm>]-<attempt>`
# child names (and the suffixes KubeRay adds to them) stay within Kubernetes' 63.
JOB_NAME_MAX = 40
