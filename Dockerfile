# syntax=docker/dockerfile:1
#
# One Dockerfile for every Loupe service. Every service runs from the same code; what differs is
# which optional extras are installed, so per-service images stay small:
#
#   docker build -t loupe/gateway:0.1.0  --build-arg EXTRAS=gateway  .
#   docker build -t loupe/training:0.1.0 --build-arg EXTRAS=training .
#
# The default EXTRAS builds one image that can run any service (never the `local` extra: the
# embedded stack's servers are not needed in a container). Run a service with
# `python -m services.<name>`; configuration is LOUPE_* environment variables only.
#
# TORCH picks the build of torch (the training extra): `cpu` (the default: small, for CPU nodes) or a
# CUDA build for GPU nodes, named as PyTorch's wheel index names it (cu126, cu128, ...):
#
#   docker build -t loupe/training:0.1.0-gpu --build-arg EXTRAS=training --build-arg TORCH=cu128 .

############################ build: a virtualenv with Loupe and its extras ############################
FROM python:3.11.11-slim-bookworm AS build

ARG EXTRAS=gateway,catalog,annotation,ingest,training,inference
ARG TORCH=cpu

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/loupe
ENV PATH=/opt/loupe/bin:$PATH

WORKDIR /src

# Dependencies first, from pyproject.toml alone, so that editing the code does not reinstall them.
# (With no packages present yet this builds an empty `loupe` distribution, removed again below.)
COPY pyproject.toml README.md* ./
# PyTorch's index beside PyPI: its `2.x.y+cpu` / `+cuXXX` wheels rank above PyPI's plain build (CUDA on Linux).
RUN pip install --extra-index-url "https://download.pytorch.org/whl/${TORCH}" ".[${EXTRAS}]" \
 && pip uninstall -y loupe

# Then the project itself, without touching the dependencies installed above.
COPY . .
RUN pip install --no-deps . \
 && cd / && python -c "import shared.settings, proto, services"

############################ runtime: the virtualenv, a non-root user, nothing else ############################
FROM python:3.11.11-slim-bookworm

ENV PATH=/opt/loupe/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    XDG_CACHE_HOME=/tmp/.cache \
    LOUPE_HTTP_HOST=0.0.0.0 \
    LOUPE_HTTP_PORT=8080

RUN groupadd --system --gid 10001 loupe \
 && useradd --system --uid 10001 --gid loupe --home-dir /home/loupe --create-home --shell /usr/sbin/nologin loupe

COPY --from=build /opt/loupe /opt/loupe

# Not the source tree: `python -m services.<name>` imports the installed packages.
WORKDIR /home/loupe
USER 10001:10001

EXPOSE 8080

# No CMD default that guesses a service: compose and Kubernetes say which one.
CMD ["python", "-c", "import sys; sys.exit('choose a service: python -m services.<gateway|catalog|annotation|ingest|training|inference>')"]
