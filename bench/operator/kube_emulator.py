"""An emulated Kubernetes API server (kmock's emulator plus what kopf needs), kept for one reason:
the operator benchmark's baseline column (bench/operator/bench_operator.py --target emulator), an
API server with no admission, no authorization and no etcd, so the side-by-side run with the real
kube-apiserver shows what the real server costs. No test uses it any more: every operator test runs
on the real control plane (tests/realcluster.py), which covers all it emulated and what it could not
(schema, CEL, RBAC, garbage collection, TTL, KubeRay, Kueue).

kmock's `KubernetesEmulator` serves discovery and keeps objects, but kopf also needs server-side
metadata (uid, a resourceVersion bumped on every write, creationTimestamp, the namespace from the
URL, generation bumped on spec changes), JSON-patch with `test` ops (422 on mismatch: kopf's
finalizer patches), `generateName` (kopf's Events), watches that lose nothing between the initial
list and the stream (resourceVersion honoured), the status subresource, finalizer-aware deletion,
and no unbounded request log. This subclass keeps kmock's routing, discovery and error rendering
and replaces the object store with one that does these things. Not done (test elsewhere): schema
validation and defaulting, garbage collection, label/field selectors, PUT.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import json
import random
import string
import uuid
from collections import Counter
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import kmock
from kmock._internal import apps, enums, rendering

Key = tuple[str, str, str | None, str]  # (group/version, plural, namespace, name)


class _RecentOnly(list):
    """Stands in for kmock's request log: keeps the last few (kmock matches a request by looking it
    up in the log, which is linear in its length) and counts them all."""

    KEEP = 8

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def append(self, item: Any) -> None:
        self.count += 1
        super().append(item)
        if list.__len__(self) > self.KEEP:
            del self[0]

    def __len__(self) -> int:
        return self.count


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (strategic-merge is treated the same, as kmock does)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value)
    return out


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(code: int, reason: str, message: str) -> aiohttp.web.Response:
    return aiohttp.web.json_response({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
                                      "code": code, "reason": reason, "message": message}, status=code)


@attrs.define(kw_only=True)
class KubeEmulator(kmock.KubernetesEmulator):
    """Use as `async with KubeEmulator() as api, kmock.Server(api) as server:`."""

    store: dict[Key, dict[str, Any]] = attrs.field(factory=dict, init=False)
    log: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = attrs.field(factory=dict, init=False)
    rv: int = attrs.field(default=1000, init=False)
    tally: Counter = attrs.field(factory=Counter, init=False)
    # (group/version, plural) -> fn(obj, old) -> error strings: the API server's validation of a CRD.
    validators: dict[tuple[str, str], Any] = attrs.field(factory=dict, init=False)
    _tick: asyncio.Event | None = attrs.field(default=None, init=False)  # replaced on every write

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._requests = _RecentOnly()
        self.register("v1", "events", "Event")
        self.register("v1", "namespaces", "Namespace", namespaced=False)

    # ------------------------------------------------------------------ registry
    def register(self, api_version: str, plural: str, kind: str, namespaced: bool = True,
                 status: bool = False) -> None:
        self.resources[f"{api_version}/{plural}"] = kmock.ResourceInfo(
            kind=kind, namespaced=namespaced, singular=kind.lower(),
            verbs={"create", "get", "list", "watch", "patch", "update", "delete"},
            subresources={"status"} if status else set())

    def register_crd(self, crd: dict[str, Any], validate: Any = None) -> None:
        """Serve a CRD's resource; `validate(crd, obj, old)` rejects writes with 422 like the server."""
        names, group = crd["spec"]["names"], crd["spec"]["group"]
        for version in crd["spec"]["versions"]:
            gv = f"{group}/{version['name']}"
            self.register(gv, names["plural"], names["kind"],
                          crd["spec"]["scope"] == "Namespaced", "status" in (version.get("subresources") or {}))
            if validate is not None:
                self.validators[(gv, names["plural"])] = lambda obj, old, _crd=crd: validate(_crd, obj, old)

    def _invalid(self, gv: str, plural: str, obj: dict[str, Any], old: dict[str, Any] | None):
        check = self.validators.get((gv, plural))
        errors = check(obj, old) if check else []
        if errors:
            return _status(422, "Invalid", f"{plural} {obj.get('metadata', {}).get('name')!r} is invalid: "
                           + "; ".join(errors))
        return None

    def _has_status(self, gv: str, plural: str) -> bool:
        for res in self.resources:
            if f"{res.group}/{res.version}".lstrip("/") == gv and res.plural == plural:
                return "status" in self.resources[res].subresources
        return False

    def _known(self, gv: str, plural: str) -> bool:
        return any(f"{r.group}/{r.version}".lstrip("/") == gv and r.plural == plural for r in self.resources)

    # ------------------------------------------------------------------ test helpers
    def list_objects(self, api_version: str, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return [copy.deepcopy(o) for (gv, p, ns, _), o in sorted(self.store.items(), key=lambda kv: kv[0][3])
                if gv == api_version and p == plural and (namespace is None or ns == namespace)]

    def get_object(self, api_version: str, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        obj = self.store.get((api_version, plural, namespace, name))
        return copy.deepcopy(obj) if obj else None

    async def write(self, api_version: str, plural: str, namespace: str | None, name: str,
                    patch: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch an object as a client would (used by tests to play KubeRay)."""
        key = (api_version, plural, namespace, name)
        obj = _merge(self.store[key], patch)
        await self._commit(key, self.store[key], obj)
        return copy.deepcopy(obj)

    # ------------------------------------------------------------------ store
    async def _emit(self, gv: str, plural: str, type_: str, obj: dict[str, Any]) -> None:
        self.log.setdefault((gv, plural), []).append((self.rv, {"type": type_, "object": copy.deepcopy(obj)}))
        if self._tick is not None:
            self._tick.set()
        self._tick = asyncio.Event()

    def _bump(self, obj: dict[str, Any]) -> None:
        self.rv += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.rv)

    async def _commit(self, key: Key, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        gv, plural = key[0], key[1]
        if old.get("spec") != new.get("spec"):
            new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
        meta = new["metadata"]
        for field in ("uid", "creationTimestamp", "name", "namespace"):  # immutable, server-owned
            if field in old["metadata"]:
                meta[field] = old["metadata"][field]
        self._bump(new)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self.store.pop(key, None)
            await self._emit(gv, plural, "DELETED", new)
        else:
            self.store[key] = new
            await self._emit(gv, plural, "MODIFIED", new)
        return new

    # ------------------------------------------------------------------ HTTP
    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        res = request.resource
        if res is None or res.plural is None or request.action is None:
            return await apps.RawHandler._handle(self, request)
        gv = f"{res.group}/{res.version}".lstrip("/")
        if not self._known(gv, res.plural):
            return await apps.RawHandler._handle(self, request)
        self.tally[(request.method.value, res.plural, request.action.value)] += 1
        key: Key = (gv, res.plural, request.namespace, request.name or "")
        action = request.action
        if action == enums.action.LIST:
            return self._list(gv, res.plural, request.namespace)
        if action == enums.action.WATCH:
            return await self._watch(gv, res.plural, request)
        if action == enums.action.CREATE:
            return await self._create(gv, res.plural, request)
        obj = self.store.get(key)
        if obj is None:
            return _status(404, "NotFound", f'{res.plural} "{request.name}" not found')
        if action == enums.action.FETCH:
            return aiohttp.web.json_response(obj)
        if action == enums.action.UPDATE:
            return await self._patch(key, obj, request)
        if action == enums.action.DELETE:
            return await self._delete(key, obj)
        return _status(405, "MethodNotAllowed", f"{request.method.value} is not supported by the emulator")

    def _list(self, gv: str, plural: str, namespace: str | None) -> aiohttp.web.Response:
        items = [o for (g, p, ns, _), o in self.store.items() if g == gv and p == plural
                 and (namespace is None or ns == namespace)]
        return aiohttp.web.json_response({"apiVersion": gv, "kind": "List", "items": items,
                                          "metadata": {"resourceVersion": str(self.rv)}})

    async def _watch(self, gv: str, plural: str, request: rendering.Request) -> aiohttp.web.StreamResponse:
        raw = request._raw_request
        resp = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await resp.prepare(raw)
        since = request.params.get("resourceVersion")
        timeout = float(request.params.get("timeoutSeconds") or 300)
        deadline = asyncio.get_running_loop().time() + timeout
        ns = request.namespace
        if since in (None, "", "0"):  # no version: current objects first, then changes
            for (g, p, ons, _), obj in list(self.store.items()):
                if g == gv and p == plural and (ns is None or ons == ns):
                    await resp.write(json.dumps({"type": "ADDED", "object": obj}).encode() + b"\n")
            cursor = self.rv
        else:
            cursor = int(since)
        if self._tick is None:
            self._tick = asyncio.Event()
        try:
            while True:
                tick = self._tick  # taken before reading the log: a write after this sets it
                events = self.log.get((gv, plural), [])
                for rv, event in events[self._first_after(events, cursor):]:
                    cursor = rv
                    if ns is None or event["object"].get("metadata", {}).get("namespace") == ns:
                        await resp.write(json.dumps(event).encode() + b"\n")
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                try:
                    await asyncio.wait_for(tick.wait(), timeout=min(left, 5.0))
                except TimeoutError:
                    pass
        except (ConnectionResetError, asyncio.CancelledError):
            return resp
        await resp.write_eof()
        return resp

    @staticmethod
    def _first_after(events: list[tuple[int, dict[str, Any]]], cursor: int) -> int:
        lo, hi = 0, len(events)
        while lo < hi:
            mid = (lo + hi) // 2
            if events[mid][0] <= cursor:
                lo = mid + 1
            else:
                hi = mid
        return lo

    async def _create(self, gv: str, plural: str, request: rendering.Request) -> aiohttp.web.Response:
        obj = copy.deepcopy(request.data)
        if not isinstance(obj, dict):
            return _status(400, "BadRequest", "body must be a JSON object")
        meta = obj.setdefault("metadata", {})
        if request.namespace:
            meta["namespace"] = request.namespace
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        if not meta.get("name"):
            return _status(422, "Invalid", "metadata.name or metadata.generateName is required")
        key: Key = (gv, plural, meta.get("namespace"), meta["name"])
        if key in self.store:
            return _status(409, "AlreadyExists", f'{plural} "{meta["name"]}" already exists')
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1)
        invalid = self._invalid(gv, plural, obj, None)
        if invalid is not None:
            return invalid
        self._bump(obj)
        self.tally[("created", plural)] += 1
        self.store[key] = obj
        await self._emit(gv, plural, "ADDED", obj)
        return aiohttp.web.json_response(obj, status=201)

    async def _patch(self, key: Key, obj: dict[str, Any], request: rendering.Request) -> aiohttp.web.Response:
        ctype = request.headers.get("Content-Type", "")
        subresource = request.subresource
        try:
            if "json-patch" in ctype:
                new = jsonpatch.apply_patch(obj, request.data)
            else:
                new = _merge(obj, request.data)
        except jsonpatch.JsonPatchTestFailed as exc:
            return _status(422, "Invalid", f"the JSON patch test failed: {exc}")
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            return _status(422, "Invalid", f"cannot apply the JSON patch: {exc}")
        if self._has_status(key[0], key[1]):
            if subresource == "status":  # only .status changes through the status subresource
                new = {**copy.deepcopy(obj), "status": new.get("status")}
            else:  # and never through the main resource
                new = {**new, "status": copy.deepcopy(obj.get("status"))}
            if new.get("status") is None:
                new.pop("status")
        invalid = self._invalid(key[0], key[1], new, obj)
        if invalid is not None:
            return invalid
        new = await self._commit(key, obj, new)
        return aiohttp.web.json_response(new)

    async def _delete(self, key: Key, obj: dict[str, Any]) -> aiohttp.web.Response:
        new = copy.deepcopy(obj)
        if new["metadata"].get("finalizers"):
            if not new["metadata"].get("deletionTimestamp"):
                new["metadata"]["deletionTimestamp"] = _now()
                new = await self._commit(key, obj, new)
            return aiohttp.web.json_response(new)
        self._bump(new)
        self.store.pop(key, None)
        await self._emit(key[0], key[1], "DELETED", new)
        return aiohttp.web.json_response(new)


def kubeconfig(url: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "emulator",
        "clusters": [{"name": "emulator", "cluster": {"server": url.rstrip("/")}}],
        "users": [{"name": "tester", "user": {"token": "test-token"}}],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "tester", "namespace": "default"}}],
    }


class EmulatorThread:
    """Runs a KubeEmulator on 127.0.0.1 in its own thread and event loop (for sync tests and kopf)."""

    def __init__(self, setup: Any = None) -> None:
        import threading

        self.setup = setup
        self.api: KubeEmulator | None = None
        self.url = ""
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kube-emulator", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.error: BaseException | None = None

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:  # noqa: BLE001  (surfaced by start())
            self.error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with KubeEmulator() as api, kmock.Server(api) as server:
            if self.setup:
                self.setup(api)
            self.api, self.url = api, str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def start(self) -> EmulatorThread:
        self._thread.start()
        self._ready.wait(30)
        if self.error or not self.url:
            raise RuntimeError(f"the emulator did not start: {self.error!r}")
        return self

    def call(self, coro: Any, timeout: float = 10) -> Any:
        """Run a coroutine (e.g. `api.write(...)`) on the emulator's loop."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
