"""Where things are, for every test: the repository, and `../shared` beside it (data, KubeRay CRDs)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
