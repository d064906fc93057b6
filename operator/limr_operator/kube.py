"""The edge to the Kubernetes API: apply reconcile's actions, patch status, read the storage Secret.

Kept thin and synchronous (kopf runs sync handlers in a thread pool). A 409 on create is ours only
when the existing object's controller is this LIMRJob (same uid); missing objects on delete (404)
are the expected outcome of an idempotent action. A create the server refuses (400, 403, 409 for
another owner's object, 422) comes back as a `Refusal` for reconcile to act on, not an exception.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from limr_api.constants import GROUP, PLURAL, VERSION

from .reconcile import Action, Refusal

KUEUE = ("kueue.x-k8s.io", "v1beta2", "workloads")
REFUSED_CODES = (400, 403, 409, 422)

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


def _server_message(exc: Exception) -> str:
    try:
        return str(json.loads(getattr(exc, "body", "") or "{}").get("message") or exc)
    except (ValueError, AttributeError):
        return str(getattr(exc, "reason", "") or exc)


def _read(action: Action) -> dict[str, Any]:
    core, batch, custom = _apis()
    ns, name = action.namespace, action.name
    if action.kind == "ConfigMap":
        obj = core.read_namespaced_config_map(name, ns)
    elif action.kind == "Job":
        obj = batch.read_namespaced_job(name, ns)
    else:
        return custom.get_namespaced_custom_object("ray.io", "v1", ns, "rayjobs", name)
    return _api().sanitize_for_serialization(obj)


def _existing(action: Action) -> str | Refusal:
    """A 409 on create: 'exists' if this LIMRJob controls the object, else a Refusal saying whose it is."""
    from kubernetes.client.exceptions import ApiException

    want = next((r.get("uid") for r in (action.body or {}).get("metadata", {}).get("ownerReferences", [])
                 if r.get("controller")), None)
    try:
        meta = _read(action).get("metadata") or {}
    except ApiException as exc:
        if _status(exc) == 404:  # deleted in between: the next reconcile creates it
            return "gone"
        raise
    owner = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
    if owner and owner.get("uid") == want:
        return "exists"
    whose = (f"controlled by {owner.get('kind')} {owner.get('name')} (uid {owner.get('uid')})" if owner
             else "not controlled by any owner")
    deleting = bool(meta.get("deletionTimestamp"))
    return Refusal(409, action.kind, f"{action.kind} {action.name} already exists, {whose}, not by this LIMRJob"
                   + (" (it is being deleted)" if deleting else ""), deleting=deleting)


def _set_workloads_active(action: Action) -> str:
    """spec.active of the Kueue Workloads the child (uid in action.body) owns; 'gone' when it has none."""
    _, _, custom = _apis()
    child_uid = (action.body or {}).get("uid")
    items = custom.list_namespaced_custom_object(*KUEUE[:2], action.namespace, KUEUE[2]).get("items", [])

    def owns(ref: dict[str, Any]) -> bool:
        if child_uid:
            return ref.get("uid") == child_uid
        return ref.get("kind") == action.kind and ref.get("name") == action.name

    owned = [w for w in items if any(owns(r) for r in w.get("metadata", {}).get("ownerReferences") or [])]
    for wl in owned:
        if (wl.get("spec") or {}).get("active", True) != action.active:
            custom.patch_namespaced_custom_object(*KUEUE[:2], action.namespace, KUEUE[2], wl["metadata"]["name"],
                                                  {"spec": {"active": bool(action.active)}})
    return "done" if owned else "gone"


def apply(action: Action) -> str | Refusal:
    """Run one action; returns 'done', 'exists' or 'gone', or the Refusal of a create."""
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
        elif action.verb == "activate":
            return _set_workloads_active(action)
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
        code = _status(exc)
        if action.verb == "create" and code == 409:
            return _existing(action)
        if action.verb == "create" and code in REFUSED_CODES:
            return Refusal(code, action.kind, _server_message(exc))
        if action.verb != "create" and code == 404:
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
