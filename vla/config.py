"""Every CLI's configuration: compose configs/<name>.yaml with the command-line overrides (Hydra syntax),
validate it into the CLI's dataclass, run; bad input of any kind is one line on stderr and exit status 2.

    @hydra_cli("rollout", schema=RolloutConfig)
    def main(cfg: RolloutConfig) -> None: ...

Validation (`load_config`): unknown keys, missing keys (`???`), values of the wrong type and the
dataclass's own `__post_init__` checks all raise `ConfigError` naming the key. The YAML documents each
option and holds the same defaults as the dataclass (tests/test_cli_errors.py checks they agree).
Library code raises exceptions; only `hydra_cli` turns them into exit codes. PION_DEBUG=1 shows the traceback.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = Path(os.environ.get("PION_CONFIG_DIR", REPO_ROOT / "configs"))

# Exceptions that mean "bad input" (unknown suite, missing assets, bad config value, unreachable server):
# a CLI prints the message and exits with status 2 instead of a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    FileNotFoundError,
    NotImplementedError,
    ConnectionError,
)


class ConfigError(ValueError):
    """A configuration does not match its dataclass (unknown / missing key, wrong type, bad value)."""


def check_keys(schema: type, d: Any, label: str) -> None:
    """Raise ValueError naming every key of `d` that is not a field of the dataclass `schema`."""
    known = {f.name for f in dataclasses.fields(schema)}
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"unknown {label} keys {sorted(unknown)}; expected a subset of {sorted(known)}")


def load_config(schema: type, cfg: Any, name: str = "config") -> Any:
    """Validate a composed config (DictConfig or dict) into an instance of the dataclass `schema`."""
    from omegaconf import OmegaConf
    from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

    try:
        data = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else cfg
        merged = OmegaConf.merge(OmegaConf.structured(schema), data)
        missing = sorted(OmegaConf.missing_keys(merged))
        if missing:
            raise ConfigError(
                f"{name}: missing value for {', '.join(missing)} (set it on the command line: key=value)"
            )
        return OmegaConf.to_object(merged)
    except ConfigError:
        raise
    except MissingMandatoryValue as e:
        raise ConfigError(f"{name}: missing value for {e.full_key}") from None
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or getattr(e, "key", None)
        msg = str(getattr(e, "msg", e)).splitlines()[0]
        raise ConfigError(f"{name}: {'key ' + repr(key) + ': ' if key else ''}{msg}") from None
    except (TypeError, ValueError) as e:  # __post_init__ checks
        raise ConfigError(f"{name}: {e}") from None


def defaults_of(schema: type) -> dict[str, Any]:
    """The dataclass defaults of `schema` as plain values (nested dataclasses as dicts); MISSING left out."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(schema):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
            out[f.name] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
    return out


def build_from(target: type, source: Any, **overrides: Any) -> Any:
    """`target(**fields)` taking every field of the dataclass `target` that `source` has (by name), then
    `overrides`: configs handed from a CLI dataclass to a library dataclass without copying keys by hand."""
    names = {f.name for f in dataclasses.fields(target) if f.init}
    values = {n: getattr(source, n) for n in names if hasattr(source, n)}
    return target(**{**values, **overrides})


def compose(config_name: str, overrides: Sequence[str] = ()):
    """configs/<config_name>.yaml (with its defaults list) plus Hydra-syntax overrides -> DictConfig."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.utils import setup_globals
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if not CONFIG_DIR.is_dir():
        raise FileNotFoundError(f"config dir {CONFIG_DIR} not found; set PION_CONFIG_DIR")
    setup_globals()  # ${now:...} and friends
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return hydra_compose(config_name=config_name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as e:
        text = str(e).split("Config search path")[0]
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        raise ConfigError(f"{config_name}: {' '.join(lines[:12])}") from None


def _usage(config_name: str, doc: str | None) -> str:
    from omegaconf import OmegaConf

    text = (doc or "").strip()
    cfg = OmegaConf.to_yaml(compose(config_name)) if CONFIG_DIR.is_dir() else ""
    return (
        f"{text}\n\nUsage: key=value overrides of configs/{config_name}.yaml (Hydra syntax), "
        f"e.g. a.b=3 'list=[1,2]'.\n\nConfiguration ({CONFIG_DIR / (config_name + '.yaml')}):\n{cfg}"
    )


def hydra_cli(
    config_name: str, schema: type | None = None, user_errors: tuple[type[BaseException], ...] = ()
) -> Callable[[Callable], Callable[[], None]]:
    """Turn `fn(cfg)` into a `[project.scripts]` entry point configured from `configs/<config_name>.yaml`.

    `fn` gets the dataclass instance when `schema` is given, else the DictConfig. Arguments are Hydra
    overrides (`key=value`, `+key=value`, `group=option`); `hydra.*` overrides are accepted and ignored
    (no run directory is created, the working directory never changes); `--help` prints the config,
    `--cfg job` the composed config with the overrides applied.
    """
    errors = USER_ERRORS + tuple(user_errors)

    def wrap(fn: Callable) -> Callable[[], None]:
        @functools.wraps(fn)
        def main(argv: Sequence[str] | None = None) -> None:
            args = list(sys.argv[1:] if argv is None else argv)
            try:
                if "--help" in args or "-h" in args:
                    print(_usage(config_name, fn.__doc__))
                    return
                show = "--cfg" in args  # Hydra's `--cfg job`: print the composed config and exit
                if show:
                    i = args.index("--cfg")
                    args = args[:i] + args[i + 2 if i + 1 < len(args) and "=" not in args[i + 1] else i + 1 :]
                overrides = [a for a in args if not a.lstrip("+~").startswith("hydra.")]
                flags = [a for a in overrides if a.startswith("-")]
                if flags:
                    raise ConfigError(
                        f"{config_name}: unknown option {flags[0]!r}; arguments are key=value overrides"
                    )
                cfg = compose(config_name, overrides)
                if show:
                    from omegaconf import OmegaConf

                    print(OmegaConf.to_yaml(cfg))
                    return
                fn(load_config(schema, cfg, config_name) if schema is not None else cfg)
            except errors as e:
                if os.environ.get("PION_DEBUG"):
                    raise
                print(f"error: {e}", file=sys.stderr)
                raise SystemExit(2) from None

        return main

    return wrap
