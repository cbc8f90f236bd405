from unitrain.planning import plan_job
from unitrain.ui.summary import (
    MAX_CHART_ROWS,
    MAX_MODEL_ROWS,
    SearchReport,
    TrialPoint,
    objective_chart,
    render_summary,
)


def tuning_plan():
    return plan_job(
        {
            "name": "t",
            "dataset": 1,
            "is_tune": True,
            "tune_config": {"metric": "score"},
            "hyperparameters": [{"name": "x", "type": "uniform", "min": 0, "max": 1}],
        },
        "synthetic",
    )


def test_chart_follows_finish_order_and_tracks_the_best():
    points = [
        TrialPoint("c", 3.0, 0.9),
        TrialPoint("a", 1.0, 0.5),
        TrialPoint("b", 2.0, 0.7),
        TrialPoint("d", 4.0, None),
    ]
    lines = objective_chart(points, "accuracy", "max")
    rows = lines[2:]
    assert [row.split("|")[2].strip() for row in rows] == ["`a`", "`b`", "`c`"]
    assert [row.split("|")[5].strip() for row in rows] == ["0.5", "0.7", "0.9"]
    assert all("new best" in row for row in rows)
    assert rows[0].count("█") == 1 and rows[-1].count("█") == 30
    minimising = objective_chart(points, "loss", "min")[2:]
    assert [row.split("|")[5].strip() for row in minimising] == ["0.5", "0.5", "0.5"]


def test_tuning_summary_links_models_and_runs(home, monkeypatch):
    monkeypatch.setenv("UNITRAIN_MLFLOW_UI_URL", "http://mlflow.example:5000/")
    plan = tuning_plan()
    result = {
        "model_id": 7,
        "best_trial": {"trial_id": "t2", "config": {"x": 0.3}, "metrics": {}},
        "trial_models": [],
    }
    text = render_summary(
        plan,
        result,
        metrics={"score": 0.99},
        experiment_id="1",
        run_id="abc",
        search=SearchReport(
            plan.objective,
            [TrialPoint("t1", 1, 0.5, 6, "r1"), TrialPoint("t2", 2, 0.99, 7, "abc")],
            stopped="all 2 trials ran",
        ),
    )
    assert "# Job `t`: model 7" in text
    assert "[model 7](http://mlflow.example:5000/#/models/unitrain/versions/7)" in text
    assert "[MLflow run](http://mlflow.example:5000/#/experiments/1/runs/abc)" in text
    assert "| x | 0.3 |" in text and "| score | 0.99 |" in text
    assert "## score per trial" in text
    assert "- the search stopped: all 2 trials ran" in text


def test_a_thousand_trials_give_a_summary_of_bounded_size_best_models_first(home):
    # objective rises on every 100th trial only: 10 improvements among 1000 trials
    points = [
        TrialPoint(f"t{i}", float(i), float(i // 100) + (0.0 if i % 100 else 0.5), i + 1, f"r{i}")
        for i in range(1000)
    ]
    chart = objective_chart(points, "score", "max")
    rows = [line for line in chart if line.startswith("| ") and "`" in line]
    assert len(rows) <= MAX_CHART_ROWS
    assert rows[-1].split("|")[2].strip() == "`t999`"  # the last trial closes the chart
    assert sum("new best" in row for row in rows) == 10
    result = {"model_id": 901, "best_trial": {"trial_id": "t900", "config": {}}, "trial_models": []}
    plan = tuning_plan()
    search = SearchReport(plan.objective, points)
    text = render_summary(plan, result, metrics={"score": 9.5}, search=search)
    models = [line for line in text.splitlines() if "[model " in line and line.startswith("| `")]
    assert len(models) == MAX_MODEL_ROWS
    assert models[0].startswith("| `t900` |")  # the best first
    assert f"The {MAX_MODEL_ROWS} best of 1000 trial models" in text
    assert len(text) < 20_000
