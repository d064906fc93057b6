"""The Selection phase: baseline reward records -> trajectories -> scores -> the training subsets.

Writes `<job>/selection/{scores.parquet, selected.jsonl, summary.json, *.png}` and, for the
comparison arms of the paper's Table 2, `arms/random.json` (a seeded uniform sample) and
`arms/linear.json` (the best linear-progression scores) of the same size as the selection.
Scoring is `limr_trainer.lim`; plots are `limr_trainer.selection_plots`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from limr_trainer import layout, lim
from limr_trainer.storage import Storage, open_storage

PLOTS = ("trajectories.png", "score_histogram.png")


def arms_key(job_name: str, arm: str) -> str:
    return layout.selection_prefix(job_name) + f"arms/{arm}.json"


def records_source(job: Any, storage: Storage) -> tuple[Storage, str]:
    """Where the baseline reward records are: this job's baseline, or spec.baseline.recordsUri."""
    uri = job.spec.baseline.recordsUri
    if uri is None:
        return storage, layout.rewards_prefix(job.metadata.name, "baseline")
    if uri.startswith("s3://"):
        return open_storage(uri, endpoint=job.spec.storage.endpoint, region=job.spec.storage.region), ""
    return open_storage(uri), ""


def read_trajectories(store: Storage, prefix: str) -> lim.Trajectories:
    """Stream every rewards Parquet under `prefix` into per-(sample, epoch) counters."""
    keys = [k for k in store.list(prefix) if k.endswith(".parquet") and "/rewards/" in "/" + k]
    if not keys:
        raise FileNotFoundError(f"no reward records under {store.uri(prefix)}")
    acc = lim.TrajectoryAccumulator()
    for key in sorted(keys):
        table = store.read_parquet(key).select(["epoch", "prompt_id", "reward"])
        if table.num_rows == 0:
            continue
        ids = table.column("prompt_id").combine_chunks().dictionary_encode()
        acc.add_coded(ids.dictionary.to_pylist(), ids.indices.to_numpy(zero_copy_only=False),
                      table.column("epoch").to_numpy(), table.column("reward").to_numpy())
    return acc.trajectories()


def top_by_score(keys: list[str], scores: np.ndarray, size: int) -> list[str]:
    """The `size` keys with the highest scores (ties: first seen), returned in input order."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:size]
    chosen = {int(i) for i in order}
    return [k for i, k in enumerate(keys) if i in chosen]


def run(job: Any, storage: Storage, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Score, select, write the outputs; returns summary.json's content."""
    import pyarrow as pa

    from limr_trainer import selection_plots

    name, sel = job.metadata.name, job.spec.selection
    store, prefix = records_source(job, storage)
    traj = read_trajectories(store, prefix)
    result = lim.select(traj, sel.strategy, sel.threshold, sel.size, sel.seed)
    linear = lim.linear_scores(result.values)
    chosen = set(result.selected)
    trajectories = [list(map(float, v)) for v in result.values]
    storage.put_parquet(layout.scores_key(name), pa.table({
        "prompt_id": pa.array(result.keys, pa.string()),
        "score": pa.array(np.asarray(result.scores, dtype=np.float64)),
        "lim_score": pa.array(np.asarray(result.lim_scores, dtype=np.float64)),
        "linear_score": pa.array(np.asarray(linear, dtype=np.float64)),
        "selected": pa.array([k in chosen for k in result.keys]),
        "trajectory": pa.array(trajectories, pa.list_(pa.float64())),
    }))
    by_id = {r["id"]: r for r in rows}
    missing = [k for k in result.selected if k not in by_id]
    if missing:
        raise ValueError(f"{len(missing)} selected ids are not in the dataset (e.g. {missing[0]!r}): "
                         "the records belong to another dataset")
    subset = [r for r in rows if r["id"] in chosen]  # dataset order
    storage.put_jsonl(layout.selected_key(name), subset)

    size = len(subset)
    storage.put_json(arms_key(name, "random"), {
        "how": f"uniform sample of {size} of the {len(traj.keys)} samples seen, seed {sel.seed}",
        "ids": lim.random_choice(traj.keys, size, sel.seed)})
    storage.put_json(arms_key(name, "linear"), {
        "how": f"the {size} kept samples with the highest linear-progression score (R^2, slope > 0)",
        "ids": top_by_score(result.keys, linear, size)})

    storage.put_bytes(layout.plot_key(name, "trajectories.png"), selection_plots.trajectories_png(
        result.values, result.lim_scores, result.mean_curve, result.epochs,
        title=f"{name}: baseline reward trajectories vs the mean curve (LIM scores)"))
    storage.put_bytes(layout.plot_key(name, "score_histogram.png"), selection_plots.histogram_png(
        np.asarray(result.scores), result.threshold, size,
        title=f"{name}: {sel.strategy} scores of {len(result.keys)} samples"))
    summary = {
        "strategy": sel.strategy,
        "threshold": result.threshold,
        "scored": len(result.keys),
        "selected": size,
        "dropped": len(result.dropped),
        "total": len(rows),
        "epochs": len(result.epochs),
        "size": result.size,
        "seed": sel.seed,
        "mean_curve": [round(float(v), 4) for v in result.mean_curve],
        "questions": size,
    }
    storage.put_json(layout.summary_key(name), summary)
    return summary


def arm_ids(storage: Storage, job_name: str, arm: str) -> list[str]:
    """The prompt ids an arm trains on (lim: the selection; random / linear: same-size subsets)."""
    if arm == "lim":
        return [str(r["id"]) for r in storage.iter_jsonl(layout.selected_key(job_name))]
    if arm in ("random", "linear"):
        return [str(i) for i in storage.get_json(arms_key(job_name, arm))["ids"]]
    raise ValueError(f"arm {arm!r} has no subset (expected lim, random or linear)")


def report_plots(storage: Storage, job_name: str, report_prefix: str) -> list[str]:
    """Copy the selection plots next to the report; returns the names copied."""
    copied = []
    for plot in PLOTS:
        key = layout.plot_key(job_name, plot)
        if storage.exists(key):
            storage.put_bytes(report_prefix + plot, storage.get_bytes(key))
            copied.append(plot)
    return copied
