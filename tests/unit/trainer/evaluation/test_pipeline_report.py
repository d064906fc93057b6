"""Report logic: table rows and order, averages, Markdown, reward curves, PNG output."""

import json

from limr_trainer.evaluation import report

BENCH = ["math500", "aime24"]


def _res(q, m, a):
    return {"questions": q, "benchmarks": {"math500": {"accuracy": m}, "aime24": {"accuracy": a}}}


def test_rows_follow_the_paper_order_whatever_the_input_order():
    results = {"random": _res(10, 0.2, 0.0), "lim": _res(10, 0.4, 0.1), "base": _res(None, 0.1, 0.0),
               "full": _res(50, 0.3, 0.1), "linear": _res(10, 0.25, 0.05)}
    rows = report.build_table(results, BENCH)
    assert [r["arm"] for r in rows] == ["base", "full", "lim", "random", "linear"]
    assert [r["label"] for r in rows][:3] == ["base model", "full-data run", "LIM subset"]


def test_average_is_the_mean_over_benchmarks_and_missing_benchmark_gives_none():
    rows = report.build_table({"lim": _res(10, 0.5, 0.25), "base": {"questions": None, "benchmarks": {
        "math500": {"accuracy": 0.5}}}}, BENCH)
    by_arm = {r["arm"]: r for r in rows}
    assert by_arm["lim"]["average"] == 0.375
    assert by_arm["base"]["accuracy"]["aime24"] is None and by_arm["base"]["average"] is None


def test_markdown_has_one_line_per_arm_and_percentages():
    rows = report.build_table({"lim": _res(12, 0.5, 0.25), "base": _res(None, 0.125, 0.0)}, BENCH)
    md = report.render_markdown(rows, BENCH, "t", ["a note"])
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert table[0] == "| arm | questions used | math500 | aime24 | average |"
    assert table[2] == "| base model | - | 12.5 | 0.0 | 6.2 |"
    assert table[3] == "| LIM subset | 12 | 50.0 | 25.0 | 37.5 |"
    assert "- a note" in md


def test_reward_curves_sort_steps_keep_last_duplicate_and_skip_missing():
    rows = [{"step": 2, "reward_mean": 0.5}, {"step": 1, "reward_mean": 0.1}, {"step": 2, "reward_mean": 0.7},
            {"step": 3}]
    curves = report.reward_curves({"lim": rows, "empty": []})
    assert curves == {"lim": ([1, 2], [0.1, 0.7])}


def test_reward_curves_average_each_data_epoch_when_rows_carry_it():
    rows = [{"step": s, "epoch": s // 2, "reward_mean": v} for s, v in enumerate([0.0, 0.5, 1.0, 1.0])]
    assert report.reward_curves({"lim": rows}) == {"lim": ([1, 2], [0.25, 1.0])}


def test_plot_and_json_are_well_formed():
    png = report.plot_reward_curves({"lim": ([1, 2], [0.1, 0.2])})
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    rows = report.build_table({"lim": _res(3, 1.0, 0.0)}, BENCH)
    doc = json.loads(report.report_json(rows, BENCH, {"job": "j"}))
    assert doc["rows"][0]["average"] == 0.5 and doc["job"] == "j" and doc["benchmarks"] == BENCH
