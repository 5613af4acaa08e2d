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
success check decides). Binding, as for every expert: `TaskExpert(env)`, `expert.reset()` after
every `env.reset()`, then `env.step(expert.act())`.
"""

from __future__ import annotations

import numpy as np

from envs.experts.control import GRIPPER_OPEN
from envs.experts.pick_place import PickPlaceExpert
from envs.experts.scene import Goal, Scene, UnsupportedTaskError

# Order of execution by relation: open things first, put things in/on, then close them; switching a
# stove on first keeps the knob reachable before pots stand on the burner.
_RELATION_ORDER = {"open": 0, "turnon": 1, "turnoff": 1, "in": 2, "on": 2, "close": 3}


def order_goals(goals: list[Goal]) -> list[Goal]:
    """Stable sort of a conjunction into an executable order (see `_RELATION_ORDER`)."""
    return sorted(goals, key=lambda g: _RELATION_ORDER[g.relation])


def skill_for(env, goal: Goal):
    """The skill that achieves one goal predicate in `env`."""
    if goal.is_pick_place:
        return PickPlaceExpert(env, goal)
    raise UnsupportedTaskError(f"no scripted skill for {goal.predicate} yet")


class TaskExpert:
    def __init__(self, env) -> None:
        self.env = env
        self.scene = Scene(env.raw)
        self.goals = order_goals(self.scene.goals())
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
