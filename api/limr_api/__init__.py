"""The LIMRJob API (`limr.io/v1alpha1`), the one package both the operator and the trainer import.

pydantic and PyYAML only. It holds the models (split by concern), the loader and its error
messages, CRD generation, the storage layout and the plan of steps. Defaults are the LIMR recipe
(Li, Zou, Liu 2025). Validation is as strict as the API server's on the generated CRD:
`limr validate` accepts a job if and only if `kubectl apply` would.
"""

from __future__ import annotations

from .constants import (
    API_VERSION,
    DEFAULT_IMAGE,
    DEFAULT_RAY_VERSION,
    GROUP,
    KIND,
    LIMR_SYSTEM_PROMPT,
    PLURAL,
    VERSION,
)
from .errors import JobError
from .job import LIMRJob, LIMRJobSpec, to_manifest
from .loader import load_job, load_job_or_report

__version__ = "0.1.0"

__all__ = [
    "API_VERSION", "DEFAULT_IMAGE", "DEFAULT_RAY_VERSION", "GROUP", "KIND", "LIMR_SYSTEM_PROMPT", "PLURAL",
    "VERSION", "JobError", "LIMRJob", "LIMRJobSpec", "load_job", "load_job_or_report", "to_manifest",
]
