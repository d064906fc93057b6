"""How to reach a job's storage: the one opener every reader and writer uses, workers included.

`StorageSettings` carries what `spec.storage` says beyond the URI (S3 endpoint and region); it is a
small frozen dataclass, so it travels to Ray workers on other hosts and they open exactly what the
driver opened. Credentials are never in it: they come from the standard AWS chain of the process
(on Kubernetes, the pod's `secretKeyRef` environment variables).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .base import Storage


@dataclass(frozen=True)
class StorageSettings:
    """S3 endpoint and region for s3:// URIs (ignored for local paths)."""

    endpoint: str | None = None
    region: str | None = None

    @classmethod
    def of(cls, spec: Any) -> StorageSettings:
        """The settings of a LIMRJobSpec (`spec.storage`) or of a StorageSpec."""
        storage = getattr(spec, "storage", spec)
        return cls(endpoint=storage.endpoint, region=storage.region)

    def open(self, uri: str, **s3_options: Any) -> Storage:
        """The storage root at `uri` (s3:// with these settings, or a local folder)."""
        from . import open_storage

        return open_storage(uri, endpoint=self.endpoint, region=self.region, **s3_options)


@dataclass(frozen=True)
class StorageRoot:
    """A storage root as data: what a worker needs to open the driver's storage itself."""

    uri: str
    settings: StorageSettings = field(default_factory=StorageSettings)

    def open(self) -> Storage:
        return self.settings.open(self.uri)


def job_root(spec: Any, override: str | None = None) -> StorageRoot:
    """The job's storage root (`spec.storage.uri`, or `override` with the same settings)."""
    return StorageRoot(override or spec.storage.uri, StorageSettings.of(spec))


def open_job_storage(spec: Any, override: str | None = None) -> Storage:
    """The job's storage, opened with its settings."""
    return job_root(spec, override).open()
