# Robot-client image: drives a Franka Research 3 through franky (libfranka 0.21.2 bundled in franky-control 2.0.0).
# Build from the repo root:  docker build -f docker/robot.Dockerfile -t pion-vla:robot .
# The HOST must run a PREEMPT_RT kernel (franky/libfranka need real-time scheduling; without it expect
# `communication_constraints_violation`). Give the container real-time rights and the host network:
#   docker run --rm --network host --cap-add SYS_NICE --ulimit rtprio=99 --ulimit memlock=-1 \
#       --device /dev/ttyUSB0 -v /dev/bus/usb:/dev/bus/usb pion-vla:robot pion-robot robot.host=<FCI ip> server.address=tcp://<gpu-host>:5555
# See docs/deploy.md for the realtime-kernel setup and the safety checklist.
FROM python:3.12-slim-bookworm

ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
RUN apt-get update && apt-get install -y --no-install-recommends \
        build-essential cmake git ffmpeg libegl1 libgl1 libglib2.0-0 libusb-1.0-0 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH VIRTUAL_ENV=/opt/venv
COPY pyproject.toml constraints.txt README.md ./
RUN mkdir -p vla envs deploy && touch vla/__init__.py envs/__init__.py deploy/__init__.py \
    && /opt/venv/bin/python -m pip install --upgrade "pip>=24" \
    && /opt/venv/bin/python -m pip install -c constraints.txt -e .
COPY . .
RUN /opt/venv/bin/python -m pip install --no-deps -e .
CMD ["pion-robot", "--help"]
