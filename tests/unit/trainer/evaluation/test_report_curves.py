"""The report's held-out accuracy curves and its paragraph on the table (pure, no model)."""

from __future__ import annotations

from limr_trainer.evaluation import report


def test_curves_start_at_the_base_model_and_end_at_the_final_evaluation():
    points = {"full": [{"step": 8, "average": 0.40}, {"step": 16, "average": 0.44}, {"step": 24, "average": 0.47}],
              "lim": [{"step": 4, "average": 0.41}]}
    finals = {"full": (24, 0.48), "lim": (7, 0.45), "random": (7, 0.39)}
    curves = report.heldout_curves(points, finals, base=0.35)
    assert list(curves) == ["full", "lim", "random"]  # the report's order
    assert curves["full"] == ([0, 8, 16, 24], [0.35, 0.40, 0.44, 0.48])  # the final model wins at its step
    assert curves["lim"] == ([0, 4, 7], [0.35, 0.41, 0.45])
    assert curves["random"] == ([0, 7], [0.35, 0.39])
    assert report.heldout_curves({}, {}, base=0.3) == {}
    assert report.heldout_curves({"lim": [{"step": 2, "average": 0.5}]}, {}, None) == {"lim": ([2], [0.5])}
    png = report.plot_heldout_curves(curves, 0.35)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def _rows(**avg):
    questions = {"base": None, "full": 1000, "lim": 250, "random": 250, "linear": 250}
    return [{"arm": a, "average": v, "questions": questions[a]} for a, v in avg.items()]


def test_reading_states_the_numbers_next_to_the_papers():
    text = report.reading(_rows(base=0.30, full=0.40, lim=0.39, random=0.35, linear=0.37))
    assert "from 30.0% to 40.0% (+10.0 points; paper: 40.5 to 57.0, +16.5)" in text
    assert "The LIM subset (250 of 1000 questions, 25%) reaches 39.0%, 98% of the full-data run" in text
    assert "(paper: 1,389 of 8,523, 16%, reaches 58.1, 102% of full)" in text
    assert "random subset of the same size reaches 35.0% (LIM +4.0 points; paper: 49.4, LIM +8.7)" in text
    assert "linear-progress subset reaches 37.0% (paper: 54.9)" in text
    assert "one seed" in text and "5 seeds" in text
    assert "mean over 5 seeds" in report.reading(_rows(base=0.3, full=0.4), seeds=5)


def test_reading_leaves_out_what_the_table_lacks():
    text = report.reading(_rows(base=0.30, lim=0.39))
    assert "Training on all questions" not in text and "A random subset" not in text and "The LIM subset" not in text
