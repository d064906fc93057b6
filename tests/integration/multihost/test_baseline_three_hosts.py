"""A Baseline step on a real three-host Ray cluster built as KubeRay would build our RayJob.

Hosts (network namespaces on one bridge, each with its own /tmp, /dev/shm, HOME and processes):
a head (no role resources; the driver runs there), a `rollout` host and a `train` host, each
started with the `ray start` line and env KubeRay derives from `limr_operator.builders.ray_job`.
The toy model and the dataset are in S3 (moto on the bridge). The step runs as the RayJob
entrypoint `python -m limr_trainer phase --job ... --step baseline --attempt N` on the head with
KubeRay's RAY_ADDRESS. Attempt 1 is cut by killing every process of the train host (raylet,
workers) after a checkpoint; the train host's Ray is restarted and attempt 2 resumes from S3.

Checked: records, metrics and checkpoints in S3 under limr_api.layout's keys, exactly one reward
record per (epoch, step, prompt, sample) after the resume; actor, critic and reference ranks on the
train host and the vLLM engine on the rollout host (Ray's state API), the driver on the head; each
host fetched the model from S3 itself, once (moto's request log, by client address), into its own
cache (its private HOME); checkpoint shards uploaded by the ranks on the train host.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
from collections import Counter
from pathlib import Path

import pytest
import yaml
from limr_api import layout

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

JOB, BUCKET = "multihost", "limr-multihost"
N, BATCH, SAMPLES, EPOCHS = 24, 8, 2, 2  # 2 data epochs of 3 PPO steps of 8 prompts x 2 samples
STEPS = N // BATCH * EPOCHS
TRAIN_CLASSES = {"ActorWorker", "CriticWorker", "ReferenceWorker"}
SECRETS = {"s3-creds": {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}}
MODEL_CACHE = "/home/ray/.cache/limr/models"  # the trainer's cache under each host's own HOME
_REQUEST = re.compile(r'^(\S+) - - \[[^\]]*\] "(?:\x1b\[[0-9;]*m)?([A-Z]+) (\S+) HTTP')


def job_manifest(endpoint: str) -> dict:
    """The LIMRJob: model and data in S3, one rollout and one train worker group of 1 CPU each."""
    return {
        "apiVersion": "limr.io/v1alpha1", "kind": "LIMRJob", "metadata": {"name": JOB, "namespace": "default"},
        "spec": {
            "model": {"name": f"s3://{BUCKET}/models/toy", "dtype": "float32"},
            "dataset": {"uri": f"s3://{BUCKET}/data/arithmetic.json"},
            "storage": {"uri": f"s3://{BUCKET}/runs", "endpoint": endpoint, "region": "us-east-1",
                        "secretRef": {"name": "s3-creds"}},
            "reward": {"workers": 1},
            "ppo": {"rolloutBatchSize": BATCH, "samplesPerPrompt": SAMPLES, "trainBatchSize": BATCH * SAMPLES,
                    "microBatchSize": BATCH * SAMPLES, "generateMaxLength": 16, "promptMaxLength": 64,
                    "actorLearningRate": 1e-4, "criticLearningRate": 1e-3, "checkpointEverySteps": 1,
                    "zeroStage": 2, "seed": 0,
                    "actor": {"replicas": 1, "cpus": 0.25, "gpus": 0},
                    "critic": {"replicas": 1, "cpus": 0.25, "gpus": 0},
                    "reference": {"replicas": 1, "cpus": 0.25, "gpus": 0}},
            "rollout": {"backend": "vllm", "engines": 1, "cpusPerEngine": 0.5},
            "baseline": {"epochs": EPOCHS},
            "selection": {"enabled": False}, "retrain": {"enabled": False}, "evaluation": {"enabled": False},
            "cluster": {"head": {"cpu": "1", "memory": "4Gi"},
                        "workerGroups": [
                            {"name": "rollout", "role": "rollout", "gpus": 0, "cpu": "1", "memory": "4Gi"},
                            {"name": "train", "role": "train", "gpus": 0, "cpu": "1", "memory": "6Gi"}]},
        },
    }


def s3_requests(log: Path) -> list[tuple[str, str, str]]:
    """(client address, method, key path) of every request moto served, from its request log."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        m = _REQUEST.match(line)
        if m:
            out.append((m.group(1), m.group(2), urllib.parse.unquote(m.group(3).split("?", 1)[0])))
    return out


def upload_inputs(endpoint: str):
    """The toy model (built here, then put_dir) and the dataset in the job's bucket: (prompt ids, storage)."""
    import boto3
    from limr_trainer.data.synthetic import arithmetic_rows
    from limr_trainer.runtime import toy_model as toy
    from limr_trainer.storage import open_storage
    from paths import REPO

    creds = SECRETS["s3-creds"]
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                 aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"]).create_bucket(Bucket=BUCKET)
    bucket = open_storage(f"s3://{BUCKET}", endpoint=endpoint, region="us-east-1",
                          access_key_id=creds["AWS_ACCESS_KEY_ID"], secret_access_key=creds["AWS_SECRET_ACCESS_KEY"])
    bucket.put_dir("models/toy", toy.ensure_toy_model(REPO / ".cache" / "toy-models"))
    rows = [{k: r[k] for k in ("id", "prompt", "answer")} for r in arithmetic_rows(N, seed=3)]
    bucket.put_json("data/arithmetic.json", rows)
    return [str(r["id"]) for r in rows], open_storage(f"s3://{BUCKET}/runs", endpoint=endpoint, region="us-east-1",
                        access_key_id=creds["AWS_ACCESS_KEY_ID"], secret_access_key=creds["AWS_SECRET_ACCESS_KEY"])


def wait_exit(proc, log: Path, timeout: float) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the entrypoint did not end within {timeout:.0f} s:\n{log.read_text()[-4000:]}")


def summary_line(log: Path) -> dict:
    for line in reversed(log.read_text().splitlines()):
        if line.startswith('{"step": "baseline", "attempt"'):
            return json.loads(line)["summary"]
    raise AssertionError(f"no summary line in {log}:\n{log.read_text()[-4000:]}")


def test_baseline_on_three_hosts_resumes_after_train_host_loss(network, s3_gateway, tmp_path):
    from limr_api.loader import load_job
    from limr_api.plan import parse_step
    from limr_operator import builders
    from rayjob_hosts import RayJobHosts

    t0 = time.monotonic()
    endpoint, moto_log = s3_gateway
    prompt_ids, store = upload_inputs(endpoint)
    job_file = tmp_path / "job.yaml"
    job_file.write_text(yaml.safe_dump(job_manifest(endpoint)))
    job, step = load_job(str(job_file)), parse_step("baseline")
    logs = tmp_path / "logs"
    logs.mkdir()
    cluster = RayJobHosts.start(network, builders.ray_job(job, "uid-0", step, 1),
                                builders.config_map(job, "uid-0", step, 1), SECRETS, logs)
    head, rollout, train = (cluster.hosts[n] for n in ("head", "rollout", "train"))
    timings = {"cluster": time.monotonic() - t0}
    try:
        # the role resources the builder gave the pods, as Ray sees them
        by_ip = {n["node_ip"]: n for n in cluster.nodes()}
        assert by_ip[head.ip]["is_head_node"] and by_ip[head.ip]["resources_total"].get("CPU", 0) == 0
        assert by_ip[rollout.ip]["resources_total"]["rollout"] == 1 and "train" not in by_ip[rollout.ip]["resources_total"]
        assert by_ip[train.ip]["resources_total"]["train"] == 1 and "rollout" not in by_ip[train.ip]["resources_total"]

        # attempt 1: lose the train host (raylet and workers) after a checkpoint, with the records of
        # the next step written (work after the checkpoint is lost and must be replayed)
        latest = layout.latest_checkpoint_key(JOB, "baseline")
        log1 = logs / "attempt-1.log"
        t1 = time.monotonic()
        driver = cluster.run_entrypoint(1, log1)
        deadline = time.monotonic() + 600
        while not ((at := store.get_json(latest)["step"] if store.exists(latest) else None) is not None
                   and store.exists(layout.rewards_key(JOB, "baseline", (at + 1) // (N // BATCH), at + 1))):
            assert driver.poll() is None, f"attempt 1 ended early (rc {driver.returncode}):\n{log1.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"no checkpoint after 600 s:\n{cluster.tail_logs()}"
            time.sleep(0.05)
        train.kill_processes()
        killed_at = store.get_json(latest)["step"]
        assert killed_at < STEPS - 1, "the step ended before the train host went: nothing left to resume"
        replayed = layout.rewards_key(JOB, "baseline", (killed_at + 1) // (N // BATCH), killed_at + 1)
        # (absent only if the next checkpoint landed between the check and the kill)
        before = store.read_parquet(replayed).to_pylist() if store.exists(replayed) else None
        assert wait_exit(driver, log1, 300) != 0, "attempt 1 cannot succeed without its train host"
        timings["attempt 1"] = time.monotonic() - t1
        assert not store.exists(layout.done_key(JOB, "baseline"))

        # the train host's Ray comes back (a restarted container, same host); attempt 2 resumes
        t2 = time.monotonic()
        cluster.start_node("train")
        cluster.wait_nodes(3)
        log2 = logs / "attempt-2.log"
        rc = wait_exit(cluster.run_entrypoint(2, log2), log2, 600)
        assert rc == 0, f"attempt 2 failed:\n{log2.read_text()[-4000:]}\n{cluster.tail_logs()}"
        timings["attempt 2"] = time.monotonic() - t2
        summary = summary_line(log2)
        assert summary["resumed_from"] == killed_at and summary["steps"] == STEPS, summary

        actors, jobs, node_ips = cluster.actors(), cluster.jobs(), cluster.node_ips()
    except BaseException:
        cluster.copy_ray_logs()
        raise

    # records: one file per PPO step, exactly one row per (epoch, step, prompt, sample)
    keys = store.list(layout.rewards_prefix(JOB, "baseline"))
    assert [layout.parse_rewards_key(k) for k in keys] == [(s // (N // BATCH), s) for s in range(STEPS)]
    rows = [r for k in keys for r in store.read_parquet(k).to_pylist()]
    seen = [(r["epoch"], r["step"], r["prompt_id"], r["sample"]) for r in rows]
    assert len(seen) == len(set(seen)) == STEPS * BATCH * SAMPLES
    for epoch in range(EPOCHS):  # each epoch covered every prompt once
        assert sorted({p for e, _, p, k in seen if e == epoch and k == 0}) == sorted(prompt_ids)
    if before is not None:  # the lost step was replayed: same seeds, same rows, same key
        assert store.read_parquet(replayed).to_pylist() == before
    metrics = [r["step"] for r in store.iter_jsonl(layout.metrics_key(JOB, "baseline"))]
    assert metrics == list(range(STEPS))
    # checkpoints: the pointer at the last step, shards of both trained roles, the final policy
    pointer = store.get_json(latest)
    assert pointer["step"] == STEPS - 1
    shards = store.list(pointer["prefix"])
    assert any("/actor/" in k for k in shards) and any("/critic/" in k for k in shards), shards
    final = layout.final_model_prefix(JOB, "baseline")
    assert store.exists(final + "config.json") and store.exists(final + "model.safetensors")
    assert store.get_json(layout.done_key(JOB, "baseline"))["resumed_from"] == killed_at
    for attempt in (1, 2):
        assert store.exists(layout.log_key(JOB, "baseline", attempt))

    # placement: the driver on the head, trained roles on the train host, the engine on the rollout host
    drivers = {int(j["entrypoint"].split("--attempt")[1].split()[0]): j for j in jobs
               if "limr_trainer phase" in (j.get("entrypoint") or "")}
    assert sorted(drivers) == [1, 2], [j.get("entrypoint") for j in jobs]
    for attempt, driver_job in drivers.items():
        assert driver_job["driver_info"]["node_ip_address"] == head.ip
        mine = [a for a in actors if a["job_id"] == driver_job["job_id"]]
        placed = {(a["class_name"], node_ips[a["node_id"]]) for a in mine}
        assert {c for c, _ in placed} >= TRAIN_CLASSES | {"VLLMEngine"}, placed
        for cls, ip in placed:
            assert ip == (rollout.ip if cls == "VLLMEngine" else train.ip), (attempt, cls, ip)
        assert all(a["state"] == "DEAD" for a in mine), "actors of an ended attempt are still alive"
    train_nodes = [{a["node_id"] for a in actors if a["job_id"] == drivers[n]["job_id"]
                    and a["class_name"] in TRAIN_CLASSES} for n in (1, 2)]
    assert len(train_nodes[0]) == len(train_nodes[1]) == 1 and train_nodes[0] != train_nodes[1]  # restarted raylet

    # the model: each host fetched it from S3 itself, once (cached across attempts and the restart)
    requests = s3_requests(moto_log)
    fetched = Counter(ip for ip, method, path in requests
                      if method == "GET" and path == f"/{BUCKET}/models/toy/config.json")
    assert fetched == {head.ip: 1, rollout.ip: 1, train.ip: 1}, fetched
    for host in (head, rollout, train):
        listing = host.run(["sh", "-c", f"ls -d {MODEL_CACHE}/s3-toy-*/.complete"]).stdout.split()
        assert len(listing) == 1, (host.name, listing)
    assert not Path(MODEL_CACHE).exists(), "a host's cache is on the shared disk"
    # every rank uploaded its own checkpoint shards (from the train host); the driver wrote the records
    writers = Counter((ip, "shard" if "/checkpoints/step=" in path and ("/actor/" in path or "/critic/" in path)
                       else "record" if "/rewards/" in path else "other")
                      for ip, method, path in requests if method == "PUT" and path.startswith(f"/{BUCKET}/runs/"))
    assert {ip for ip, kind in writers if kind == "shard"} == {train.ip}, writers
    assert {ip for ip, kind in writers if kind == "record"} == {head.ip}, writers

    print(f"multi-host wall times (s): {json.dumps({k: round(v, 1) for k, v in timings.items()})}, "
          f"total {time.monotonic() - t0:.1f}; train host lost after checkpoint {killed_at}, "
          f"{'with' if before is not None else 'without'} the next step's records written")
