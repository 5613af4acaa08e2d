import numpy as np
import pytest

from envs.libero.conventions import (
    GRIPPER_CONVENTIONS,
    gripper_from_libero,
    gripper_to_libero,
    libero_state,
    quat_xyzw_to_axis_angle,
    rotate_180,
)


def test_axis_angle_matches_robosuite():
    from robosuite.utils.transform_utils import quat2axisangle

    rng = np.random.default_rng(0)
    quats = rng.normal(size=(50, 4))
    quats /= np.linalg.norm(quats, axis=1, keepdims=True)
    quats[0] = [0, 0, 0, 1]  # identity: zero rotation, no division by zero
    ours = quat_xyzw_to_axis_angle(quats)
    ref = np.stack([quat2axisangle(q.copy()) for q in quats])
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_state_layout():
    s = libero_state(np.array([1.0, 2, 3]), np.array([0, 0, 0, 1.0]), np.array([0.04, -0.04]))
    np.testing.assert_allclose(s, [1, 2, 3, 0, 0, 0, 0.04, -0.04])


def test_rotate_180_is_both_axes_and_batched():
    img = np.arange(2 * 3 * 4 * 3).reshape(2, 3, 4, 3)
    out = rotate_180(img)
    assert out[0, 0, 0].tolist() == img[0, -1, -1].tolist()
    np.testing.assert_array_equal(rotate_180(out), img)


@pytest.mark.parametrize("conv", GRIPPER_CONVENTIONS)
def test_gripper_roundtrip(conv):
    raw = np.array([-1.0, 1.0, -1.0])
    np.testing.assert_array_equal(gripper_to_libero(gripper_from_libero(raw, conv), conv), raw)


def test_gripper_conventions_values():
    # VLA-Adapter's target: 1 = open, 0 = close; DROID: 0 = open, 1 = closed
    np.testing.assert_array_equal(gripper_from_libero(np.array([-1.0, 1.0]), "open1_close0"), [1.0, 0.0])
    np.testing.assert_array_equal(gripper_from_libero(np.array([-1.0, 1.0]), "close_position"), [0.0, 1.0])
    np.testing.assert_array_equal(gripper_to_libero(np.array([0.9, 0.1]), "open1_close0"), [-1.0, 1.0])
    with pytest.raises(ValueError, match="valid"):
        gripper_to_libero(0.0, "nope")
