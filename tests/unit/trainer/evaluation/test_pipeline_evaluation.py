"""Evaluation logic: the paper's sampling, benchmark loading, accuracy over all samples."""

import json

import pytest
from limr_api.loader import load_job
from limr_trainer.evaluation import benchmarks as evaluation
from limr_trainer.rollout.base import Completion, RolloutBackend, SamplingConfig
from paths import SHARED

# ../shared/ beside the repository (DESIGN.md): the real LIMR eval files.
SHARED_EVAL = str(SHARED / "data" / "limr" / "eval" / "data")


def _c(text, truncated=False):
    return Completion(text=text, token_ids=[1], prompt_token_ids=[2], truncated=truncated)


def _exact(responses, answers, truncated):
    """A tiny stand-in judge: correct when the response is exactly the gold answer, 'x' = format error."""
    return [(1.0, True, None) if r == a else (-1.0, False, "no_boxed") if r == "x" else (-0.5, False, None)
            for r, a in zip(responses, answers)]


def test_greedy_turns_top_p_off_and_sampling_keeps_it():
    greedy = evaluation.sampling_for(1, 0.0, 0.95, 3072, seed=1)
    sampled = evaluation.sampling_for(4, 0.4, 0.95, 3072, seed=1)
    assert (greedy.n, greedy.temperature, greedy.top_p, greedy.max_tokens) == (1, 0.0, 1.0, 3072)
    assert (sampled.n, sampled.temperature, sampled.top_p) == (4, 0.4, 0.95)


def test_accuracy_is_the_mean_over_all_samples():
    rows = [{"answer": "1"}, {"answer": "2"}]
    comps = [[_c("1"), _c("0"), _c("1"), _c("x")], [_c("2"), _c("2"), _c("x"), _c("x")]]
    res = evaluation.score_completions(rows, comps, _exact)
    assert res["samples"] == 8 and res["correct"] == 4 and res["accuracy"] == 0.5
    assert res["format_error_rate"] == 3 / 8
    assert res["per_question_correct"] == [2, 2]


def test_mismatched_lengths_are_an_error():
    with pytest.raises(ValueError):
        evaluation.score_completions([{"answer": "1"}], [], _exact)


def test_load_rows_from_jsonl_and_json(tmp_path):
    (tmp_path / "b.jsonl").write_text('{"question": "q1", "answer": 3}\n\n{"question": "q2", "answer": "4"}\n')
    (tmp_path / "c.json").write_text(json.dumps([{"id": "a", "q": "x", "a": "1"}]))
    assert evaluation.load_rows(str(tmp_path / "b.jsonl"), "question", "answer") == [
        {"id": "0", "question": "q1", "answer": "3"}, {"id": "1", "question": "q2", "answer": "4"}]
    assert evaluation.load_rows(f"file://{tmp_path}/c.json", "q", "a") == [{"id": "a", "question": "x", "answer": "1"}]
    with pytest.raises(ValueError, match="needs fields"):
        evaluation.load_rows(str(tmp_path / "c.json"), "question", "answer")


def test_real_limr_eval_files_load_as_they_are():
    import os

    if not os.path.isdir(SHARED_EVAL):
        pytest.skip(f"LIMR eval files not at {SHARED_EVAL} (shared data folder absent on this machine)")
    sizes = {n: len(evaluation.load_rows(f"{SHARED_EVAL}/{n}.jsonl", "question", "answer"))
             for n in ("math500", "aime24", "amc23")}
    assert sizes == {"math500": 500, "aime24": 30, "amc23": 40}


def test_synthetic_benchmark_is_held_out_from_training_prompts():
    job = load_job({"apiVersion": "limr.io/v1alpha1", "kind": "LIMRJob", "metadata": {"name": "t"},
                    "spec": {"model": {"name": "m"}, "dataset": {"uri": "synthetic://arithmetic?n=50&seed=0"},
                             "storage": {"uri": "/tmp/x"},
                             "evaluation": {"benchmarks": [{"name": "heldout", "samples": 2, "temperature": 0.4,
                                                            "uri": "synthetic://arithmetic?n=300&seed=9"}]}}})
    train = {"What is 1 + 1?", "What is 2 + 2?"}
    all_rows = evaluation.load_rows("synthetic://arithmetic?n=300&seed=9", "prompt", "answer")
    (bench,) = evaluation.benchmarks_from_spec(job.spec, train)
    assert bench.name == "heldout" and bench.sampling.n == 2 and bench.sampling.top_p == 0.95
    assert not {r["question"] for r in bench.rows} & train
    assert len(bench.rows) == len([r for r in all_rows if r["question"] not in train])


class _Echo(RolloutBackend):
    """Answers each prompt with its last word, n times; records the sampling it got."""

    def __init__(self):
        self.seen = []

    def generate(self, prompts, sampling: SamplingConfig):
        self.seen.append((len(prompts), sampling))
        return [[_c(p.split()[-1])] * sampling.n for p in prompts]

    def update_weights(self, state_dict):
        pass

    def load_model(self, model):
        pass

    def close(self):
        pass


def test_evaluate_batches_prompts_and_reports_per_benchmark():
    rows = [{"id": str(i), "question": f"say {i % 3}", "answer": "1"} for i in range(5)]
    bench = evaluation.Benchmark("b", rows, evaluation.sampling_for(2, 0.4, 0.95, 8, seed=0))
    backend, calls = _Echo(), []
    res = evaluation.evaluate(backend, [bench], lambda q: q, _exact, progress=lambda *a: calls.append(a),
                              batch_size=2)
    assert [n for n, _ in backend.seen] == [2, 2, 1]
    assert res["b"]["samples"] == 10 and res["b"]["correct"] == 4 and res["b"]["sampling"]["n"] == 2
    assert calls[-1] == ("b", 5, 5)
