"""Model sources: toy URI parameters, cache folders keyed by source and revision."""

import pytest
from limr_trainer.runtime import model


def test_toy_uri_parameters():
    assert model.parse_toy_uri("toy://small?seed=3&warm_steps=10&warm_lr=0.01") == {
        "size": "small", "seed": 3, "warm_steps": 10, "warm_lr": 0.01}
    with pytest.raises(ValueError, match="unknown parameters"):
        model.parse_toy_uri("toy://tiny?steps=3")
    with pytest.raises(ValueError, match="must be numbers"):
        model.parse_toy_uri("toy://tiny?seed=x")


def test_local_folders_are_used_as_they_are(tmp_path):
    assert model.resolve_model(model.ModelSource(str(tmp_path))) == str(tmp_path)


def test_cache_folders_differ_by_revision_and_endpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("LIMR_CACHE", str(tmp_path))
    from limr_trainer.storage import StorageSettings

    a = model._cache_folder("s3", model.ModelSource("s3://b/m", None))
    b = model._cache_folder("s3", model.ModelSource("s3://b/m", "v2"))
    c = model._cache_folder("s3", model.ModelSource("s3://b/m", None, StorageSettings(endpoint="http://x:9000")))
    assert len({a, b, c}) == 3 and all(p.parent == tmp_path / "models" for p in (a, b, c))
