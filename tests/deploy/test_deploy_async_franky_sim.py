"""Pause-free execution against franky-sim: with 150 ms of inference latency the overlapping loop commands the
simulated FR3 every period; the synchronous loop pauses at every query (slow: starts the simulator)."""

import numpy as np
import pytest

pytest.importorskip("franky")
pytest.importorskip("franky_sim")

from conftest import sim_cameras  # noqa: E402
from test_deploy_franky_sim import arm, sim_host  # noqa: E402, F401 - module-scoped simulator fixtures

from deploy.delayed import DelayedPolicy  # noqa: E402
from deploy.droid import RESET_JOINTS  # noqa: E402
from deploy.policies import ScriptedWavePolicy  # noqa: E402
from deploy.runner import LoopConfig, RobotRunner  # noqa: E402
from deploy.safety import SafetyConfig  # noqa: E402

PERIOD = 1 / 15


@pytest.mark.slow
def test_overlapping_chunks_leave_no_period_without_a_command_in_franky_sim(arm):  # noqa: F811
    gaps = {}
    for name, loop in {"sync": {}, "async": {"chunk_threshold": 0.5}}.items():
        arm.move_to(RESET_JOINTS, 20.0)
        policy = DelayedPolicy(ScriptedWavePolicy(amplitude=0.2), 0.15)
        cfg = LoopConfig(max_steps=45, dry_run=False, **loop)
        res = RobotRunner(arm, policy, sim_cameras(), SafetyConfig(), cfg).run_episode("wave")
        assert res.status == "done" and res.faults == 0
        gaps[name] = (res.max_command_gap_s, res.blocking_queries, res.queries)
    print(f"longest gap between commands (s), blocking queries, queries: {gaps}")
    assert gaps["async"][0] < PERIOD + 0.035 and gaps["async"][1] == 1
    assert gaps["sync"][0] > 0.15 and gaps["sync"][1] == gaps["sync"][2]
    assert np.isfinite(arm.read_state().q).all()
