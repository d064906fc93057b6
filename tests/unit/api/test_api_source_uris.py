"""No user:password in any URI a job names (model, dataset, records, benchmarks): the API refuses it
with the field named, in `limr validate` and (the same pattern) in the CRD."""

import re

import pytest
from limr_api import JobError, load_job
from limr_api.constants import SOURCE_URI_PATTERN


def _job(**spec):
    base = {"model": {"name": "Qwen/Qwen2.5-Math-7B"}, "dataset": {"uri": "s3://data/math.json"},
            "storage": {"uri": "s3://runs/x"}}
    for key, value in spec.items():
        base[key] = {**base.get(key, {}), **value}
    return {"apiVersion": "limr.io/v1alpha1", "kind": "LIMRJob", "metadata": {"name": "j"}, "spec": base}


@pytest.mark.parametrize("good", ["Qwen/Qwen2.5-Math-7B", "s3://bucket/models/7b", "/data/models/7b", "./model",
                                  "toy://tiny?seed=0&warm_steps=24", "synthetic://arithmetic?n=96&seed=0",
                                  "file:///data/x.json", "s3://b/key@v2", "https://host/a?b=c@d", "C:data", "a:b/c"])
def test_sources_without_userinfo_pass(good):
    assert re.fullmatch(SOURCE_URI_PATTERN, good)


@pytest.mark.parametrize("field,spec", [
    ("model.name", {"model": {"name": "s3://AKIA:secret@bucket/model"}}),
    ("dataset.uri", {"dataset": {"uri": "https://user:pw@host/data.json"}}),
    ("baseline.recordsUri", {"baseline": {"enabled": False, "recordsUri": "s3://k:s@b/records"}}),
    ("evaluation.benchmarks[0].uri", {"evaluation": {"benchmarks": [{"name": "m", "uri": "s3://u@b/m.jsonl"}]}}),
])
def test_userinfo_in_any_source_is_refused_with_the_field_named(field, spec):
    with pytest.raises(JobError) as err:
        load_job(_job(**spec))
    paths = [p for p, _ in err.value.errors]
    assert f"spec.{field}" in paths, err.value.errors
    assert "AKIA" not in str(err.value) and "user:pw" not in str(err.value) and "k:s@" not in str(err.value)
