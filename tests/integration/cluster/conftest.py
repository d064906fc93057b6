"""The tests of this folder use the session fixture `real_cluster` (tests/realcluster.py, registered
for the whole suite in tests/conftest.py)."""
