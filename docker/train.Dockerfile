# Training image: CUDA runtime + Python 3.12 + the pinned pion-vla stack (torch 2.11.0+cu130 from PyPI).
# Build from the repo root:  docker build -f docker/train.Dockerfile -t pion-vla:train .
# Run:                        docker run --gpus all --shm-size 16g -v $PWD/outputs:/app/outputs pion-vla:train pion-train ...
# torch's CUDA 13 libraries come as PyPI wheels (nvidia-*), so the base image only needs the driver interface.
FROM nvidia/cuda:13.0.1-base-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
RUN apt-get update && apt-get install -y --no-install-recommends \
        python3.12 python3.12-venv python3.12-dev build-essential cmake git ffmpeg \
        libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
RUN python3.12 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH VIRTUAL_ENV=/opt/venv
# Dependencies first (cached layer), from the same pinned set as scripts/setup_env.sh.
COPY pyproject.toml constraints.txt README.md ./
RUN mkdir -p vla envs deploy && touch vla/__init__.py envs/__init__.py deploy/__init__.py \
    && /opt/venv/bin/python -m pip install --upgrade "pip>=24" \
    && /opt/venv/bin/python -m pip install -c constraints.txt -e .
COPY . .
RUN /opt/venv/bin/python -m pip install --no-deps -e . && pion-libero-setup --quiet
