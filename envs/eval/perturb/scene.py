"""Scene perturbations applied to a freshly reset LIBERO env: camera, light, background, robot init, layout.

Model edits (camera, light, materials) survive `env.reset()` (`LiberoEnv` resets softly, no model rebuild),
so `restore` puts the pristine values back before every episode of a worker's env. Each function reads
the live `env.raw.sim`, changes it, and returns a short description for the results file. Robot and layout changes move bodies, so the caller settles the
scene afterwards with wait steps.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

SCENE_MATERIAL_WORDS = ("floor", "table", "wall", "living_room", "kitchen", "ground", "plane", "study")


PRISTINE_FIELDS = (
    "cam_pos",
    "cam_quat",
    "cam_fovy",
    "light_pos",
    "light_dir",
    "light_diffuse",
    "light_specular",
    "light_ambient",
    "mat_rgba",
    "mat_texrepeat",
)


def restore(env) -> None:
    """Undo every model edit of earlier episodes: snapshot the pristine values the first time, restore after."""
    import mujoco

    m, d = _model(env)
    saved = env.__dict__.get("_pion_pristine")
    if saved is None:
        env.__dict__["_pion_pristine"] = {f: getattr(m, f).copy() for f in PRISTINE_FIELDS}
        return
    for f, v in saved.items():
        getattr(m, f)[...] = v
    # Recompute camera and light poses only. A full mj_forward would also move every body's rendered pose
    # from the last step's kinematics to the integrated state (a sub-step later), so a clean episode after
    # a perturbed one differed from a fresh one by up to 45 grey levels on ~2% of wrist pixels.
    mujoco.mj_camlight(m, d)


def _model(env):
    return env.raw.sim.model._model, env.raw.sim.data._data


def camera(env, severity: int, rng: np.random.Generator, cam: str = "agentview") -> str:
    """Orbit the third-person camera around the point it looks at (azimuth, elevation) and change its FOV."""
    import mujoco

    m, d = _model(env)
    cid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, cam)
    az = rng.choice([-1, 1]) * rng.uniform(0.6, 1.0) * 4.0 * severity  # degrees
    el = rng.choice([-1, 1]) * rng.uniform(0.6, 1.0) * 2.0 * severity
    fov = 1 + rng.choice([-1, 1]) * 0.03 * severity
    q = m.cam_quat[cid]
    r_cam = Rotation.from_quat([q[1], q[2], q[3], q[0]])  # mujoco (w, x, y, z) -> scipy (x, y, z, w)
    pos = m.cam_pos[cid].copy()
    forward = r_cam.apply([0, 0, -1])  # cameras look down their -z axis
    t = (
        (0.9 - pos[2]) / forward[2] if forward[2] < -1e-3 else 1.0
    )  # where the view axis meets the table height
    target = pos + forward * max(t, 0.3)
    right = r_cam.apply([1, 0, 0])
    rot = Rotation.from_rotvec(np.deg2rad(az) * np.array([0, 0, 1.0])) * Rotation.from_rotvec(
        np.deg2rad(el) * right
    )
    m.cam_pos[cid] = target + rot.apply(pos - target)
    x, y, z, w = (rot * r_cam).as_quat()
    m.cam_quat[cid] = [w, x, y, z]
    m.cam_fovy[cid] = m.cam_fovy[cid] * fov
    mujoco.mj_camlight(m, d)  # cameras/lights only: see restore()
    return f"camera azimuth {az:+.1f} deg, elevation {el:+.1f} deg, fov x{fov:.2f}"


def light(env, severity: int, rng: np.random.Generator) -> str:
    """Scale intensity, tint colour and tilt the direction of every scene light."""
    import mujoco

    m, d = _model(env)
    gain = 1 + rng.choice([-1, 1]) * 0.14 * severity
    tint = 1 + rng.uniform(-0.08, 0.08, 3) * severity
    tilt = Rotation.from_rotvec(rng.normal(size=3) / np.sqrt(3) * np.deg2rad(7 * severity))
    for i in range(m.nlight):
        m.light_diffuse[i] = np.clip(m.light_diffuse[i] * gain * tint, 0, 1.5)
        m.light_specular[i] = np.clip(m.light_specular[i] * gain, 0, 1.5)
        m.light_dir[i] = tilt.apply(m.light_dir[i])
    m.light_ambient[:] = np.clip(m.light_ambient + 0.03 * severity * (gain - 0.9), 0, 1)
    mujoco.mj_camlight(m, d)  # cameras/lights only: see restore()
    return f"light gain x{gain:.2f}, tint {np.round(tint, 2).tolist()}, tilt {7 * severity} deg"


def background(env, severity: int, rng: np.random.Generator) -> str:
    """Recolour the floor, table and wall materials (tint toward a random colour) and change texture repeat."""
    import mujoco

    m, _ = _model(env)
    names = []
    colour = rng.uniform(0.1, 1.0, 3)
    alpha = 0.13 * severity
    for i in range(m.nmat):
        name = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_MATERIAL, i) or ""
        if any(w in name.lower() for w in SCENE_MATERIAL_WORDS) and "leg" not in name:
            m.mat_rgba[i, :3] = (1 - alpha) * m.mat_rgba[i, :3] + alpha * colour * 1.5
            m.mat_texrepeat[i] = m.mat_texrepeat[i] * (1 + 0.25 * rng.integers(1, severity + 1))
            names.append(name)
    return f"background tint {np.round(colour, 2).tolist()} alpha {alpha:.2f} on {names}"


def robot_init(env, severity: int, rng: np.random.Generator) -> str:
    """Offset the arm's joint positions (gripper untouched); ~0.03 rad x severity per joint, random signs."""
    import mujoco

    m, d = _model(env)
    robot = env.raw.robots[0]
    idx = np.asarray(robot._ref_joint_pos_indexes)
    delta = rng.choice([-1, 1], size=len(idx)) * rng.uniform(0.5, 1.0, len(idx)) * 0.03 * severity
    d.qpos[idx] += delta
    d.qvel[idx] = 0
    mujoco.mj_forward(m, d)
    return f"arm joints offset {np.round(delta, 3).tolist()} rad"


def layout(env, severity: int, rng: np.random.Generator) -> str:
    """Move the objects the task does not name (distractors) by ~1.5 cm x severity, keeping 7 cm clearances."""
    import mujoco

    m, d = _model(env)
    inner = env.raw.env
    keep = set(getattr(inner, "obj_of_interest", []))
    objs = {name: obj for name, obj in inner.objects_dict.items()}
    xy = {}
    for name, obj in objs.items():
        if obj.joints:
            jid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, obj.joints[0])
            xy[name] = (jid, m.jnt_qposadr[jid])
    moved = []
    for name, (jid, adr) in xy.items():
        if name in keep or m.jnt_type[jid] != mujoco.mjtJoint.mjJNT_FREE:
            continue
        others = np.array([d.qpos[a : a + 2] for n, (_, a) in xy.items() if n != name] or np.zeros((0, 2)))
        for _ in range(30):
            ang = rng.uniform(0, 2 * np.pi)
            new = d.qpos[adr : adr + 2] + 0.015 * severity * rng.uniform(0.7, 1.0) * np.array(
                [np.cos(ang), np.sin(ang)]
            )
            if len(others) == 0 or np.min(np.linalg.norm(others - new, axis=1)) > 0.07:
                d.qpos[adr : adr + 2] = new
                d.qpos[adr + 2] += 0.005  # drop from just above to avoid initial penetration
                moved.append(name)
                break
    d.qvel[:] = 0
    mujoco.mj_forward(m, d)
    return f"moved {moved} by ~{1.5 * severity:.1f} cm"
