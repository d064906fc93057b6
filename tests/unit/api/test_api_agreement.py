"""Sweep: pydantic and the generated CRD give the same verdict on single-field mutations of a job.

Every leaf of the CRD's spec schema gets values around its bounds, of wrong types, null, too long,
off-pattern and unknown siblings; a fixed-seed sample of those mutated jobs (all of them with
LIMR_API_FULL_SWEEP=1, about 1,300 per base job) is checked with `load_job` and with the CRD
(jsonschema + CEL via tests/crd_check.py). Both must accept, or both must reject.
"""

from __future__ import annotations

import pytest
from crd_check import crd_errors
from limr_api import JobError, load_job
from limr_api.crd import crd
from limrjob_cases import MINIMAL, PAPER, mutations

CRD = crd()


@pytest.mark.parametrize("base", [MINIMAL, PAPER], ids=["minimal", "paper"])
def test_pydantic_and_crd_agree_on_single_field_mutations(base):
    all_cases = mutations(base)
    disagreements = []
    accepted = 0
    for label, job in all_cases:
        try:
            load_job(job)
            pydantic_ok = True
        except JobError:
            pydantic_ok = False
        errors = crd_errors(CRD, job)
        accepted += pydantic_ok
        if pydantic_ok != (errors == []):
            disagreements.append(f"{label}: pydantic {'accepts' if pydantic_ok else 'rejects'}, CRD {errors}")
    assert disagreements == []
    assert 0 < accepted < len(all_cases)  # the sample holds both valid and invalid jobs
