"""A task-level scripted expert: one skill per BDDL goal predicate, run one after the other.

LIBERO goals are conjunctions (`libero_10`: "put both the alphabet soup and the tomato sauce in the
basket" is two `in` predicates; "put the bowl in the bottom drawer and close it" is an `in` and a
`close`). The expert maps each predicate to a skill (`skill_for`), orders them so that one never
undoes or blocks another (`order_goals`), and runs them in turn. A skill is any object with

    reset()  -> None         plan from the current, settled scene (called when the skill starts)
    act()    -> np.ndarray   one 7-D OSC delta action (raw gripper convention, -1 open / +1 close)
    done     -> bool         its motion is finished (the predicate may or may not hold)
    phase    -> str          diagnostics

A skill whose predicate already holds when its turn comes is skipped; a finished skill whose
predicate does not hold is not retried (the episode runs out its step budget, and the env's
success check decides). Routing (`skill_for`): `on` a table region for an object wider than the
fingers -> `push.PushSkill`; other `in`/`on` -> `PickPlaceExpert`; `open`/`close` of a drawer ->
`articulated.DrawerSkill`; `open`/`close` of anything else (a hinged door) -> `door.DoorSkill`;
`turnon`/`turnoff` -> `articulated.KnobSkill`. Placing into a drawer
gets an implicit `open` of it first (`with_implicit_opens`). Binding, as for every expert: `TaskExpert(env)`, `expert.reset()` after
every `env.reset()`, then `env.step(expert.act())`.
"""

from __future__ import annotations

import numpy as np

from envs.experts.articulated import DrawerSkill, KnobSkill
from envs.experts.control import GRIPPER_OPEN
from envs.experts.door import DoorSkill
from envs.experts.grasp import MAX_OPENING
from envs.experts.pick_place import PickPlaceExpert
from envs.experts.push import PushSkill
from envs.experts.scene import Goal, Scene, UnsupportedTaskError

# Order of execution by relation: open things first, put things in/on, then close them; switching a
# stove on first keeps the knob reachable before pots stand on the burner.
_RELATION_ORDER = {"open": 0, "turnon": 1, "turnoff": 1, "in": 2, "on": 2, "close": 3}


def with_implicit_opens(scene: Scene, goals: list[Goal]) -> list[Goal]:
    """Add an `open` of every drawer that a goal puts something into ("open the top drawer and put the
    bowl inside" only says `in ... top_region`). Skipped at run time when the drawer is already open."""
    opened = {g.region for g in goals if g.relation == "open"}
    extra = []
    for g in goals:
        if g.is_pick_place and g.region not in opened and _is_drawer(scene, g):
            extra.append(Goal("open", g.target, None, g.region, ("open", g.region)))
            opened.add(g.region)
    return extra + goals


def order_goals(goals: list[Goal]) -> list[Goal]:
    """Stable sort of a conjunction into an executable order (see `_RELATION_ORDER`)."""
    return sorted(goals, key=lambda g: _RELATION_ORDER[g.relation])


def _is_drawer(scene: Scene, goal: Goal) -> bool:
    """Whether a goal's part is a drawer: a region site carrying a slide joint (cabinet levels)."""
    site = scene.domain.object_sites_dict.get(goal.region)
    joints = list(getattr(site, "joints", None) or [])
    return bool(joints) and scene.model.jnt_type[scene.model.joint_name2id(joints[0])] == 2


def _is_push(scene: Scene, goal: Goal) -> bool:
    """`on` a region of the table itself (target None) for an object too wide to grasp (a plate)."""
    if goal.relation != "on" or goal.target is not None:
        return False
    return bool(min(scene.extent(goal.obj).size[:2]) > MAX_OPENING)


def skill_for(env, goal: Goal):
    """The skill that achieves one goal predicate in `env`."""
    if _is_push(Scene(env.raw), goal):
        return PushSkill(env, goal)  # the object stays on the table: slide it there
    if goal.is_pick_place:
        return PickPlaceExpert(env, goal)
    if goal.relation in ("open", "close") and _is_drawer(Scene(env.raw), goal):
        return DrawerSkill(env, goal)
    if goal.relation in ("open", "close"):
        return DoorSkill(env, goal)  # a hinged door (microwave); raises if it is none
    if goal.relation in ("turnon", "turnoff"):
        return KnobSkill(env, goal)
    raise UnsupportedTaskError(f"no scripted skill for {goal.predicate} yet")


class TaskExpert:
    def __init__(self, env) -> None:
        self.env = env
        self.scene = Scene(env.raw)
        self.goals = order_goals(with_implicit_opens(self.scene, self.scene.goals()))
        self.skills = [skill_for(env, g) for g in self.goals]  # raises early for unsupported goals
        self.current = 0
        self._started = False

    @property
    def phase(self) -> str:
        if self.current >= len(self.skills):
            return "hold"
        return f"{self.goals[self.current].relation}#{self.current}:{self.skills[self.current].phase}"

    def reset(self) -> None:
        """Plan from the settled scene; call after every `env.reset()`."""
        self.scene = Scene(self.env.raw)  # a hard reset may rebuild the MuJoCo model
        self.current, self._started = 0, False

    def _advance(self) -> None:
        """Move to the first skill still to run, starting (planning) it on the current scene."""
        while self.current < len(self.skills):
            skill = self.skills[self.current]
            if not self._started:
                if self.scene.holds(self.goals[self.current]):
                    self.current += 1
                    continue
                skill.reset()
                self._started = True
            if not skill.done:
                return
            self.current, self._started = self.current + 1, False

    def act(self) -> np.ndarray:
        self._advance()
        if self.current >= len(self.skills):  # all done: hold still, gripper open
            action = np.zeros(7, dtype=np.float32)
            action[6] = GRIPPER_OPEN
            return action
        return self.skills[self.current].act()
