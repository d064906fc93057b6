"""Placement of role groups on a Ray cluster (pure helpers + thin Ray calls).

Worker groups of a LIMRJob carry a Ray custom resource named after their role (`rollout`,
`train`); when the cluster advertises it, a role's bundles ask for a sliver of it so Ray puts
them on that group's pods. On a local cluster (no such resource) every role shares the node.
"""

from __future__ import annotations

ROLE_RESOURCE_SHARE = 0.001  # any positive amount pins to the group; tiny so it never limits packing


def bundle_for(role: str, cpus: float, gpus: float, cluster_resources: dict[str, float]) -> dict[str, float]:
    """One placement-group bundle for a rank of `role` (custom resource only when the cluster has it)."""
    bundle = {"CPU": float(cpus)}
    if gpus:
        bundle["GPU"] = float(gpus)
    if cluster_resources.get(role, 0) > 0:
        bundle[role] = ROLE_RESOURCE_SHARE
    return bundle


def make_placement_group(role: str, n: int, cpus: float, gpus: float, strategy: str = "PACK", timeout: float = 120):
    """A ready placement group of `n` bundles for `role`; raises TimeoutError with the ask when it can't fit."""
    import ray
    from ray.util.placement_group import placement_group

    resources = ray.cluster_resources()
    bundles = [bundle_for(role, cpus, gpus, resources) for _ in range(n)]
    pg = placement_group(bundles, strategy=strategy)
    ready, _ = ray.wait([pg.ready()], timeout=timeout)
    if not ready:
        ray.util.remove_placement_group(pg)
        raise TimeoutError(f"cannot place {role}: {n} x {bundles[0]} within {timeout:.0f}s; cluster has {resources}")
    return pg


def scheduling(pg, index: int):
    """Ray scheduling strategy putting an actor in bundle `index` of `pg` (children follow it)."""
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    return PlacementGroupSchedulingStrategy(
        placement_group=pg, placement_group_bundle_index=index, placement_group_capture_child_tasks=True
    )
