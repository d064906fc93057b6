# Two commands for users: `make demo` and `make test`. Everything else is for developers.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CACHE := $(CURDIR)/.cache
export TORCH_EXTENSIONS_DIR := $(CACHE)/torch_extensions
export PATH := $(CURDIR)/$(BIN):$(CACHE)/bin:$(PATH)

.PHONY: venv tools demo study test test-unit test-integration lint crd clean cluster cluster-down

venv: $(VENV)/.ready

$(VENV)/.ready: pyproject.toml api/pyproject.toml operator/pyproject.toml trainer/pyproject.toml constraints.txt \
		scripts/install-python-deps.sh
	bash scripts/install-python-deps.sh $(VENV) operator,trainer-cpu,dev
	bash scripts/install-tools.sh $(CACHE)/bin
	@# DeepSpeed JIT-compiles its shared-memory op on first use (~50 s): build it once here.
	$(BIN)/python -c "from deepspeed.comm.torch import build_shm_op; build_shm_op()"
	touch $@

tools:
	bash scripts/install-tools.sh $(CACHE)/bin

demo: venv
	$(BIN)/limr run manifests/examples/tiny-local.yaml

# The toy study of bench/pipeline/PROTOCOL.md (5 seeds, both budgets, early selection): writes
# bench/pipeline/study.json and bench/pipeline/STUDY.md; runs under runs/study (resumes when rerun).
study: venv
	nice -n 5 $(BIN)/python bench/pipeline/study.py

# Unit and property tests first (fast, no servers; hypothesis with a fixed, derandomized budget),
# then integration and e2e (real servers and engines). A hung test fails after its timeout instead
# of eating CI's budget; the slowest tests are listed. The integration tests' real Kubernetes control
# plane (cluster/README.md) is built before pytest (a cold build takes about 15 minutes, more than a
# test's timeout); the pytest session starts it and stops it.
test: venv
	$(BIN)/python -m pytest tests/unit tests/property -q --timeout=300 --durations=5
	bash scripts/cluster.sh build
	$(BIN)/python -m pytest tests/integration tests/e2e -v --timeout=900 --durations=15

test-unit: venv
	$(BIN)/python -m pytest tests/unit tests/property -q --timeout=300

test-integration: venv
	bash scripts/cluster.sh build
	$(BIN)/python -m pytest tests/integration tests/e2e -v --timeout=900 --durations=15

lint: venv
	$(BIN)/ruff check api operator trainer tests bench

crd: venv
	$(BIN)/limr crd > manifests/crd/limr.io_limrjobs.yaml
	cp manifests/crd/limr.io_limrjobs.yaml charts/limr-operator/crds/limr.io_limrjobs.yaml
	bash scripts/render-install.sh

# A real local control plane (etcd, kube-apiserver, kube-controller-manager, KubeRay, Kueue) built
# from Go modules, on loopback: see cluster/README.md. `eval "$$(scripts/cluster.sh env)"` sets KUBECONFIG.
cluster:
	bash scripts/cluster.sh up

cluster-down:
	bash scripts/cluster.sh down

clean:
	rm -rf $(VENV) $(CACHE)
