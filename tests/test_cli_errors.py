"""Every CLI turns bad input into one clear line on stderr and exit status 2 (no traceback); every CLI's
YAML is validated into its dataclass and holds the dataclass's defaults; the robot loop is dry-run by default."""

import dataclasses
import importlib
import subprocess
import sys
import typing
from pathlib import Path

import numpy as np
import pytest

from vla.config import ConfigError, compose, defaults_of, load_config

BIN = Path(sys.executable).parent
CLIS = {  # entry point -> (module, config name, schema name or None)
    "pion-rollout": ("envs.cli.rollout", "rollout", "RolloutConfig"),
    "pion-eval": ("envs.cli.eval", "eval", "EvalConfig"),
    "pion-gen-demos": ("envs.cli.gen_demos", "gen_demos", "GenDemosConfig"),
    "pion-serve": ("deploy.cli.serve", "serve", "ServeConfig"),
    "pion-robot": ("deploy.cli.robot", "robot", "RobotConfig"),
    "pion-train": ("vla.cli.train", "train", None),
}
SCHEMAS = [(name, *spec) for name, spec in CLIS.items() if spec[2]]


def _run_main(monkeypatch, capsys, entry: str, *args: str) -> tuple[int, str]:
    """Call the entry point in this process (as the console script would); return (exit code, stderr)."""
    module = importlib.import_module(CLIS[entry][0])
    monkeypatch.setattr(sys, "argv", [entry, *args])
    with pytest.raises(SystemExit) as exc:
        module.main()
    err = capsys.readouterr().err
    return exc.value.code, err


def _one_clear_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("entry", list(CLIS))
def test_unknown_key_is_one_line_and_exit_2(monkeypatch, capsys, entry):
    code, err = _run_main(monkeypatch, capsys, entry, "no_such_key=1")
    assert code == 2
    assert "no_such_key" in _one_clear_line(err)


@pytest.mark.parametrize(
    "entry, args, expect",
    [
        ("pion-rollout", ["policy=nope"], "unknown policy 'nope'; valid: hold, expert"),
        ("pion-rollout", ["init_states=[]"], "init_states is empty"),
        ("pion-rollout", ["task_id=abc"], "task_id"),
        ("pion-eval", ["policy=nope"], "unknown policy 'nope'"),
        ("pion-eval", ["workers=-3"], "workers must be 'auto' or a positive integer"),
        ("pion-eval", ["policy_placement=gpu"], "policy_placement must be"),
        ("pion-gen-demos", ["tasks=abc"], "tasks must be 'all', an int or a list of ints"),
        ("pion-gen-demos", ["env=libero_nope"], "env"),
        ("pion-serve", ["policy=nope"], "unknown policy 'nope'"),
        ("pion-serve", ["policy=scripted_wave", "action_space=libero_osc_delta"], "cannot run in"),
        ("pion-serve", ["policy=hold", "action_space=mars_rover"], "unknown action space 'mars_rover'"),
        ("pion-serve", ["policy=no.such.module:make"], "cannot load policy factory"),
        ("pion-robot", [], "missing value for prompt"),
        ("pion-robot", ["prompt=x", "loop.dry_run=maybe"], "dry_run"),
        ("pion-robot", ["prompt=x", "policy=nope"], "unknown policy 'nope'"),
        ("pion-robot", ["prompt=x", "--fly"], "unknown option '--fly'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(monkeypatch, capsys, entry, args, expect):
    code, err = _run_main(monkeypatch, capsys, entry, *args)
    assert code == 2, err
    assert expect in _one_clear_line(err)


def test_robot_refuses_a_policy_of_another_action_space(monkeypatch, capsys):
    """A LIBERO policy served to the DROID robot CLI: refused at the handshake, before any step, naming both."""
    from deploy.server import PolicyServer
    from vla.policies import HoldStillPolicy

    with PolicyServer(HoldStillPolicy(), "tcp://127.0.0.1:*") as server:
        code, err = _run_main(
            monkeypatch,
            capsys,
            "pion-robot",
            "prompt=x",
            f"policy={server.endpoint}",
            "robot.backend=fake",
            "record.enabled=false",
            "server.timeout_s=5",
        )
    line = _one_clear_line(err)
    assert code == 2 and "libero_osc_delta" in line and "droid_joint_velocity" in line


def test_console_scripts_exit_2_with_one_line():
    """The installed entry points themselves (not only `main`): unknown suite and unknown policy."""
    proc = subprocess.run(
        [str(BIN / "pion-rollout"), "suite=libero_objects", "policy=hold", "video=false"],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    line = _one_clear_line(proc.stderr)
    assert "unknown LIBERO suite 'libero_objects'" in line
    assert "libero_spatial, libero_object, libero_goal, libero_10, libero_90" in line
    proc = subprocess.run(
        [str(BIN / "pion-eval"), "policy=nope"],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2 and "unknown policy 'nope'" in _one_clear_line(proc.stderr)


def _schema(module: str, name: str):
    return getattr(importlib.import_module(module), name)


def _check_same_defaults(schema, node: dict, path: str) -> None:
    hints = typing.get_type_hints(schema)
    fields = {f.name for f in dataclasses.fields(schema)}
    assert set(node) == fields, (
        f"{path}: YAML keys {sorted(set(node) ^ fields)} differ from {schema.__name__}"
    )
    defaults = defaults_of(schema)
    for key, value in node.items():
        if dataclasses.is_dataclass(hints[key]):
            _check_same_defaults(hints[key], value, f"{path}.{key}")
        elif not (isinstance(value, str) and ("${" in value or value == "???")):
            assert value == defaults[key], (
                f"{path}.{key}: YAML {value!r} != {schema.__name__} default {defaults[key]!r}"
            )


@pytest.mark.parametrize("entry, module, config, schema", SCHEMAS)
def test_yaml_and_dataclass_hold_the_same_keys_and_defaults(entry, module, config, schema):
    from omegaconf import OmegaConf

    cls = _schema(module, schema)
    _check_same_defaults(cls, OmegaConf.to_container(compose(config), resolve=False), config)


@pytest.mark.parametrize("entry, module, config, schema", SCHEMAS)
def test_yaml_validates_into_its_dataclass(entry, module, config, schema):
    overrides = ["prompt=x"] if config == "robot" else []
    cfg = load_config(_schema(module, schema), compose(config, overrides), config)
    assert type(cfg).__name__ == schema
    with pytest.raises(ConfigError, match="bogus"):
        load_config(_schema(module, schema), compose(config, [*overrides, "+bogus=1"]), config)


def test_robot_loop_is_dry_run_by_default_in_code_and_yaml():
    from deploy.backends.fake import FakeBackend
    from deploy.cameras import SimCamera
    from deploy.cli.robot import RobotConfig
    from deploy.droid import EXTERIOR_IMAGE, WRIST_IMAGE
    from deploy.policies import DroidHoldStillPolicy
    from deploy.runner import LoopConfig, RobotRunner
    from deploy.safety import SafetyConfig

    assert LoopConfig().dry_run is True and RobotConfig().loop.dry_run is True
    assert load_config(RobotConfig, compose("robot", ["prompt=x"]), "robot").loop.dry_run is True
    backend = FakeBackend()
    cams = {EXTERIOR_IMAGE: SimCamera("exterior", 120, 160, 3), WRIST_IMAGE: SimCamera("wrist", 120, 160, 3)}
    runner = RobotRunner(backend, DroidHoldStillPolicy(), cams, SafetyConfig(), LoopConfig(max_steps=5))
    q0 = backend.read_state().q.copy()
    runner.reset()
    res = runner.run_episode("stay")
    assert res.status == "done" and res.steps == 5 and res.queries == 1  # a local policy, chunks of 8
    assert backend.commands == [] and backend.gripper_commands == []  # nothing was sent to the arm
    np.testing.assert_array_equal(backend.read_state().q, q0)


def test_data_config_points_at_what_gen_demos_writes():
    from omegaconf import OmegaConf

    from envs.cli.gen_demos import GenDemosConfig
    from envs.datagen.merge import dataset_path
    from vla.data.layouts import LAYOUTS

    data = OmegaConf.to_container(OmegaConf.load(Path(__file__).parents[1] / "configs/data/libero.yaml"))
    gen = load_config(GenDemosConfig, compose("gen_demos"), "gen_demos")
    assert set(data) == {"repo_id", "root", "layout"}  # no unread keys (key_style, fps) drift back in
    assert data["root"] == str(dataset_path(Path(gen.out))) and data["layout"] in LAYOUTS


def test_libero_setup_rejects_unknown_arguments():
    """pion-libero-setup is an argparse CLI: usage line plus one error line, exit 2."""
    proc = subprocess.run(
        [str(BIN / "pion-libero-setup"), "--bogus"],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2 and "unrecognized arguments: --bogus" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 2
