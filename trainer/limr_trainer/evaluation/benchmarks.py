"""Accuracy of a model on held-out benchmarks with the paper's sampling.

MATH500 greedy n=1, AIME24 / AMC23 n=4 at temperature 0.4, top_p 0.95 (each BenchmarkSpec carries
its n and temperature; top_p and the token budget come from spec.evaluation). Responses are judged
by the same rule reward as training; the metric is the mean accuracy over all samples.

Benchmarks are JSON / JSONL files (fields from the BenchmarkSpec; LIMR's eval files load as they
are) or `synthetic://...` URIs, which `limr_trainer.data` resolves (the held-out split of the toy
task). The model runs behind any `RolloutBackend`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from limr_trainer.rollout.base import Completion, RolloutBackend, SamplingConfig

# (responses, answers, truncated) -> per response (reward, correct, format error rule or None)
Scorer = Callable[[list[str], list[str], list[bool]], list[tuple[float, bool, str | None]]]


@dataclass(frozen=True)
class Benchmark:
    """A benchmark ready to run: its questions and its sampling."""

    name: str
    rows: list[dict[str, Any]]  # {"id", "question", "answer"}
    sampling: SamplingConfig


def sampling_for(samples: int, temperature: float, top_p: float, max_new_tokens: int, seed: int) -> SamplingConfig:
    """The paper's evaluation sampling: greedy (top_p off) at temperature 0, else nucleus sampling."""
    greedy = temperature == 0.0
    return SamplingConfig(
        n=samples,
        temperature=temperature,
        top_p=1.0 if greedy else top_p,
        max_tokens=max_new_tokens,
        seed=seed,
    )


def load_rows(uri: str, prompt_field: str, answer_field: str, limit: int | None = None) -> list[dict[str, Any]]:
    """Questions of one benchmark as {"id", "question", "answer"} (ids: the file's id or the row index)."""
    if uri.startswith("synthetic://"):
        from limr_api.training import DatasetSpec

        from limr_trainer.data.dataset import load_rows as load_dataset

        raw = load_dataset(DatasetSpec(uri=uri))
        rows = [{"id": r["id"], "question": r["prompt"], "answer": r["answer"]} for r in raw]
        return rows[:limit] if limit else rows
    path = Path(uri.removeprefix("file://"))
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        records = json.loads(text)
        if not isinstance(records, list):
            raise ValueError(f"{uri}: expected a JSON list of questions")
    rows = []
    for index, rec in enumerate(records):
        if prompt_field not in rec or answer_field not in rec:
            raise ValueError(f"{uri} row {index}: needs fields {prompt_field!r} and {answer_field!r}")
        rows.append({"id": str(rec.get("id", index)), "question": rec[prompt_field], "answer": str(rec[answer_field])})
    return rows[:limit] if limit else rows


def held_out(rows: list[dict[str, Any]], training_prompts: set[str]) -> list[dict[str, Any]]:
    """Rows whose question is not a training question (a synthetic set can repeat small sums)."""
    return [r for r in rows if r["question"] not in training_prompts]


def benchmarks_from_spec(spec: Any, training_prompts: set[str] | None = None) -> list[Benchmark]:
    """Benchmarks of a LIMRJobSpec's evaluation section, rows loaded.

    Synthetic benchmarks are made held-out by dropping questions that are in `training_prompts`
    (files are used as they are); `limit` applies after that.
    """
    ev = spec.evaluation
    out = []
    for i, b in enumerate(ev.benchmarks):
        rows = load_rows(b.uri, b.promptField, b.answerField)
        if b.uri.startswith("synthetic://") and training_prompts:
            rows = held_out(rows, training_prompts)
        rows = rows[: b.limit] if b.limit else rows
        sampling = sampling_for(b.samples, b.temperature, ev.topP, ev.maxNewTokens, seed=spec.ppo.seed + i)
        out.append(Benchmark(b.name, rows, sampling))
    return out


def score_completions(
    rows: Sequence[dict[str, Any]], completions: Sequence[Sequence[Completion]], scorer: Scorer
) -> dict[str, Any]:
    """Accuracy (mean over all samples), format-error rate and per-question correct counts."""
    if len(rows) != len(completions):
        raise ValueError(f"{len(rows)} questions but {len(completions)} completion lists")
    responses, answers, truncated, owner = [], [], [], []
    for index, (row, comps) in enumerate(zip(rows, completions)):
        for c in comps:
            responses.append(c.text)
            answers.append(row["answer"])
            truncated.append(bool(c.truncated))
            owner.append(index)
    judged = scorer(responses, answers, truncated) if responses else []
    per_question = [0] * len(rows)
    format_errors = 0
    for index, (_, correct, reason) in zip(owner, judged):
        per_question[index] += int(bool(correct))
        format_errors += int(reason is not None)
    total = len(responses)
    correct_total = sum(per_question)
    return {
        "questions": len(rows),
        "samples": total,
        "correct": correct_total,
        "accuracy": correct_total / total if total else 0.0,
        "format_error_rate": format_errors / total if total else 0.0,
        "per_question_correct": per_question,
    }


def evaluate(
    backend: RolloutBackend,
    benchmarks: Sequence[Benchmark],
    render: Callable[[str], str],
    scorer: Scorer,
    progress: Callable[[str, int, int], None] | None = None,
    batch_size: int = 64,
    paper_scorer: Scorer | None = None,
) -> dict[str, dict[str, Any]]:
    """Run every benchmark on `backend`; `render` turns a question into the chat prompt string.

    With `paper_scorer` (LIMR's judge, `judges.limr_judge`), each result also has `paper_accuracy`."""
    results = {}
    for bench in benchmarks:
        completions: list[list[Completion]] = []
        for start in range(0, len(bench.rows), batch_size):
            chunk = bench.rows[start : start + batch_size]
            completions.extend(backend.generate([render(r["question"]) for r in chunk], bench.sampling))
            if progress:
                progress(bench.name, min(start + batch_size, len(bench.rows)), len(bench.rows))
        result = score_completions(bench.rows, completions, scorer)
        if paper_scorer is not None:
            result["paper_accuracy"] = score_completions(bench.rows, completions, paper_scorer)["accuracy"]
        result["sampling"] = {
            "n": bench.sampling.n,
            "temperature": bench.sampling.temperature,
            "top_p": bench.sampling.top_p,
            "max_tokens": bench.sampling.max_tokens,
        }
        results[bench.name] = result
    return results
