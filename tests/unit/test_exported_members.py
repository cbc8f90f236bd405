import unitrain


def test_public_api_is_pinned():
    assert sorted(unitrain.__all__) == [
        "CatalogEntry",
        "Checkpoint",
        "Dataset",
        "DatasetCatalog",
        "JobPlan",
        "JobValidationError",
        "ModelRecord",
        "ModelRegistry",
        "NotFoundError",
        "TrainParams",
        "TrainRun",
        "TuneConfig",
        "TuningPlan",
        "UnitrainError",
        "parse_job",
        "plan_job",
        "validate_params",
    ]
    for name in unitrain.__all__:
        assert getattr(unitrain, name) is not None


def test_importing_unitrain_does_not_import_prefect_or_ray():
    import subprocess
    import sys

    code = "import sys, unitrain; print('prefect' in sys.modules, 'ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
