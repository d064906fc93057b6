# syntax=docker/dockerfile:1.7
# Two images from one recipe:
#   docker build --target operator -t ghcr.io/limr-operator/limr-operator:0.1.0 .
#   docker build --target trainer  -t ghcr.io/limr-operator/limr-trainer:0.1.0 .
# The install steps live in scripts/docker-install-{operator,trainer}.sh, which CI also runs
# (the trainer's CPU variant), so this file cannot rot unseen.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
# torch 2.13.0 (pinned by vllm 0.32.0) ships CUDA 13.0 wheels; the devel image brings nvcc for
# DeepSpeed's JIT-compiled ops. Ubuntu 22.04 packages Python 3.11 (the project needs 3.11).
ARG CUDA_IMAGE=nvidia/cuda:13.0.1-cudnn-devel-ubuntu22.04
ARG VERSION=0.1.0
ARG REVISION=unknown

# ------------------------------------------------------------------------------ operator (no torch)
FROM ${PYTHON_IMAGE} AS operator-build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHON=python3.11
WORKDIR /src
COPY constraints.txt ./
COPY scripts/docker-install-operator.sh scripts/
COPY api api
COPY operator operator
RUN bash scripts/docker-install-operator.sh /opt/limr /src

FROM ${PYTHON_IMAGE} AS operator
ARG VERSION
ARG REVISION
LABEL org.opencontainers.image.title="limr-operator" \
      org.opencontainers.image.description="Kubernetes operator (kopf) running LIMRJobs as KubeRay RayJobs" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/limr-operator/limr-operator"
COPY --from=operator-build /opt/limr /opt/limr
RUN groupadd --system --gid 10001 limr && useradd --system --uid 10001 --gid limr --no-create-home limr
ENV PATH=/opt/limr/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# Numeric user: Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
# /metrics on 9090, kopf's /healthz on 8080 (the defaults of `limr operator`).
EXPOSE 9090 8080
ENTRYPOINT ["limr"]
CMD ["operator", "--all-namespaces", "--standalone"]

# ---------------------------------------------------------- trainer (torch, vllm, deepspeed, ray)
FROM ${CUDA_IMAGE} AS trainer
ARG VERSION
ARG REVISION
LABEL org.opencontainers.image.title="limr-trainer" \
      org.opencontainers.image.description="LIMR trainer: PPO with vLLM rollouts and DeepSpeed, LIM selection, evaluation (Ray 2.60.0)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/limr-operator/limr-operator" \
      io.ray.version="2.60.0"
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHON=python3.11
# wget: KubeRay's default probes call it; git: some model repos need it for remote code.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv python3.11-dev \
      build-essential wget ca-certificates git \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY constraints.txt ./
COPY scripts/docker-install-trainer.sh scripts/install-python-deps.sh scripts/
COPY api api
COPY trainer trainer
RUN bash scripts/docker-install-trainer.sh gpu /opt/limr /src && rm -rf /src
RUN groupadd --gid 1000 ray && useradd --uid 1000 --gid ray --create-home --home-dir /home/ray ray
ENV PATH=/opt/limr/bin:$PATH HOME=/home/ray PYTHONUNBUFFERED=1 \
    TORCH_EXTENSIONS_DIR=/home/ray/.cache/torch_extensions
WORKDIR /home/ray
USER 1000:1000
EXPOSE 6379 8265 10001 9400
CMD ["bash"]
