"""The edge to the Kubernetes API: apply reconcile's actions, patch status, read the storage Secret.

Kept thin and synchronous (kopf runs sync handlers in a thread pool). Conflicts on create (409)
and missing objects on delete (404) are the expected outcomes of idempotent actions, not errors.
"""

from __future__ import annotations

import base64
from typing import Any

from limr_api.constants import GROUP, PLURAL, VERSION

from .reconcile import Action

_clients: dict[str, Any] = {}


def reset() -> None:
    """Forget the cached client (tests point the operator at a new API server)."""
    _clients.clear()


def _api():
    if "api" not in _clients:
        import os

        import kubernetes

        config = kubernetes.client.Configuration()
        try:
            kubernetes.config.load_incluster_config(client_configuration=config)
        except kubernetes.config.ConfigException:  # explicit path: KUBECONFIG may be set after import
            kubernetes.config.load_kube_config(config_file=os.environ.get("KUBECONFIG"), client_configuration=config)
        _clients["api"] = kubernetes.client.ApiClient(config)
    return _clients["api"]


def _apis():
    import kubernetes

    api = _api()
    return (kubernetes.client.CoreV1Api(api), kubernetes.client.BatchV1Api(api),
            kubernetes.client.CustomObjectsApi(api))


def _status(exc: Exception) -> int | None:
    return getattr(exc, "status", None)


def apply(action: Action) -> str:
    """Run one action; returns 'done', 'exists' or 'gone'."""
    from kubernetes.client.exceptions import ApiException

    core, batch, custom = _apis()
    ns = action.namespace
    try:
        if action.verb == "create":
            if action.kind == "ConfigMap":
                core.create_namespaced_config_map(ns, action.body)
            elif action.kind == "Job":
                batch.create_namespaced_job(ns, action.body)
            else:
                custom.create_namespaced_custom_object("ray.io", "v1", ns, "rayjobs", action.body)
        elif action.verb == "delete":
            if action.kind == "Job":
                batch.delete_namespaced_job(action.name, ns, propagation_policy="Background")
            else:
                custom.delete_namespaced_custom_object("ray.io", "v1", ns, "rayjobs", action.name,
                                                       propagation_policy="Background")
        elif action.verb == "suspend":
            body = {"spec": {"suspend": bool(action.suspend)}}
            if action.kind == "Job":
                batch.patch_namespaced_job(action.name, ns, body)
            else:
                custom.patch_namespaced_custom_object("ray.io", "v1", ns, "rayjobs", action.name, body)
        else:
            raise ValueError(f"unknown action {action.verb}")
    except ApiException as exc:
        if action.verb == "create" and _status(exc) == 409:
            return "exists"
        if action.verb != "create" and _status(exc) == 404:
            return "gone"
        raise
    return "done"


def patch_status(namespace: str, name: str, patch: dict[str, Any]) -> bool:
    """Merge-patch .status; False when the LIMRJob is gone."""
    from kubernetes.client.exceptions import ApiException

    _, _, custom = _apis()
    try:
        custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, name, {"status": patch})
    except ApiException as exc:
        if _status(exc) == 404:
            return False
        raise
    return True


def read_secret_keys(namespace: str, name: str, keys: list[str]) -> dict[str, str]:
    """Decoded values of a Secret's keys (kept in memory only; never logged)."""
    core, _, _ = _apis()
    secret = core.read_namespaced_secret(name, namespace)
    data = secret.data or {}
    return {k: base64.b64decode(data[k]).decode() for k in keys if k in data}
