"""Make a checkpoint directory of this stack loadable by lerobot (`--policy.path=<dir>`), in place.

    pion-lerobot-export outputs/train/<run>/checkpoints/step_1500

Adds what lerobot needs next to our files, changing none of them: the `type: pion_vla` key in
config.json (our loader ignores unknown keys), and `policy_preprocessor.json` /
`policy_postprocessor.json` (`processor_pion_vla.py`). Running it twice is harmless.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vla.models import checkpoint


def export_checkpoint(path: str | Path, device: str = "cpu") -> Path:
    """Add lerobot's files to the checkpoint at `path` after checking it loads; returns `path`."""
    from vla.interop.lerobot.configuration_pion_vla import POLICY_TYPE, PionVLAConfig
    from vla.interop.lerobot.processor_pion_vla import make_pion_vla_pre_post_processors

    path = Path(path)
    model, _ = checkpoint.from_pretrained(path)  # every check of our loader, before anything is written
    ours = json.loads((path / checkpoint.CONFIG_FILE).read_text())
    config = PionVLAConfig(
        model_type=ours["model_type"], model=ours["model"], processor=ours["processor"], device=device
    )
    config.validate_features()
    pre, post = make_pion_vla_pre_post_processors(config)
    pre.save_pretrained(path)
    post.save_pretrained(path)
    (path / checkpoint.CONFIG_FILE).write_text(json.dumps({"type": POLICY_TYPE, **ours}, indent=2))
    del model
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="pion-lerobot-export",
        description="Add lerobot's config key and processor files to a Pion checkpoint directory (in place), so "
        "`lerobot-eval --policy.path=<dir>` loads it as policy type pion_vla.",
    )
    ap.add_argument("checkpoint", help="a checkpoint directory written by pion-train / save_pretrained")
    ap.add_argument("--device", default="cpu", help="device recorded in lerobot's preprocessor (default cpu)")
    args = ap.parse_args(argv)
    try:
        print(export_checkpoint(args.checkpoint, device=args.device))
    except (checkpoint.CheckpointError, ValueError, OSError) as e:
        print(f"pion-lerobot-export: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
