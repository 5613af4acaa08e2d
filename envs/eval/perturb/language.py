"""Instruction paraphrases at severity 1..5: synonyms -> restructuring -> framing -> distracting context.

Rule-based and deterministic by the generator, so no LLM is needed at evaluation time. The meaning
(which object, where) is kept; only the wording a language-conditioned policy sees changes.
"""

from __future__ import annotations

import re

import numpy as np

_SYNONYMS = [
    (r"\bpick up\b", ["grab", "take", "lift"]),
    (r"\bplace\b", ["put", "set", "drop"]),
    (r"\bput\b", ["place", "set"]),
    (r"\bopen\b", ["pull open"]),
    (r"\bclose\b", ["shut", "push closed"]),
    (r"\bturn on\b", ["switch on"]),
    (r"\bturn off\b", ["switch off"]),
    (r"\bin the\b", ["into the", "inside the"]),
    (r"(?<!turn )(?<!switch )\bon the\b", ["onto the", "on top of the"]),
]
_PICK_PLACE = re.compile(
    r"^pick up the (?P<obj>.+?) and (?:place|put) it (?P<rel>in|on|into|onto) the (?P<tgt>.+)$"
)
_FRAMES = ["please {}", "{}, please", "robot, {}", "can you {}?", "your task: {}", "I need you to {}"]
_CONTEXT = [
    "there are several items in front of you. ",
    "take your time and be careful. ",
    "look at the scene first. ",
    "ignore the other objects. ",
]


def paraphrase(instruction: str, severity: int, rng: np.random.Generator) -> str:
    """A paraphrase of `instruction`; higher severity changes it more."""
    if not 1 <= severity <= 5:
        raise ValueError(f"language severity must be 1..5, got {severity}")
    text = instruction.strip().lower()
    m = _PICK_PLACE.match(text)
    if severity >= 2 and m:
        rel = "into" if m["rel"] in ("in", "into") else "onto"
        forms = [
            f"move the {m['obj']} {rel} the {m['tgt']}",
            f"put the {m['obj']} {rel} the {m['tgt']}",
            f"the {m['obj']} goes {m['rel']} the {m['tgt']}",
            f"get the {m['obj']} {rel} the {m['tgt']}",
        ]
        text = forms[rng.integers(len(forms))]
    else:
        for pattern, words in _SYNONYMS:
            if re.search(pattern, text):
                text = re.sub(pattern, words[rng.integers(len(words))], text, count=1)
                if severity == 1:
                    break
    if severity >= 3:
        text = _FRAMES[rng.integers(len(_FRAMES))].format(text)
    if severity >= 4:
        text = _CONTEXT[rng.integers(len(_CONTEXT))] + text
    if severity >= 5:
        text = (
            text
            + " "
            + ["and then stop.", "then hold still.", "without knocking anything over."][rng.integers(3)]
        )
    if text == instruction.strip().lower():  # nothing matched: at least reframe it
        text = "please " + text
    return text
