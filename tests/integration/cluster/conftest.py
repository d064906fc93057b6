"""The real control plane's session fixture (tests/realcluster.py) for the tests in this folder."""

from realcluster import real_cluster  # noqa: F401
