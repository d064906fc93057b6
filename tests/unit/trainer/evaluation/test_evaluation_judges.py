"""LIMR's paper judge: the last boxed answer against the gold, no format or truncation rule."""

from limr_trainer import reward
from limr_trainer.evaluation.judges import limr_judge


def test_a_truncated_or_badly_formatted_right_answer_counts_for_the_paper_metric():
    text = "\\boxed{1} \\boxed{2} \\boxed{3} \\boxed{4} \\boxed{5} so the answer is \\boxed{\\frac{1}{2}}"
    assert reward.check(text, "0.5").reward == -1.0  # too many boxes: our rule says format error
    assert limr_judge(text, "0.5").correct
    assert limr_judge("... \\boxed{7}", "7", truncated=True).correct
    assert not limr_judge("no answer", "7").correct and not limr_judge("\\boxed{8}", "7").correct


def test_the_report_shows_the_paper_metric_beside_ours():
    from limr_trainer.evaluation import report

    results = {"base": {"questions": None, "benchmarks": {"m": {"accuracy": 0.25, "paper_accuracy": 0.5}}},
               "lim": {"questions": 3, "benchmarks": {"m": {"accuracy": 0.5, "paper_accuracy": 0.75}}}}
    rows = report.build_table(results, ["m"])
    assert rows[1]["average"] == 0.5 and rows[1]["paper_average"] == 0.75
    md = report.render_markdown(rows, ["m"], "t")
    assert "The paper's metric" in md and "| LIM subset | 3 | 75.0 | 75.0 |" in md
