"""A workdir's `config.json`: written when its run starts, checked whenever it resumes.

A run's model is fixed by the keys in `MODEL_KEYS`: resuming with any of them changed would
train another network on top of the old one's checkpoints, so it is refused in one line naming
the keys. Other keys (the step count, the learning rate, the data) may change between resumes:
the new config becomes `config.json` and the old one is kept beside it as
`config_until_step_<N>.json`, so nothing is lost.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Mapping
from typing import Any

import ml_collections

from restorect_jax import config_lib, safe_files

CONFIG_FILE = "config.json"

# Top-level keys and sections that decide the network a checkpoint holds.
MODEL_KEYS = ("method", "model")


class RunConfigError(ValueError):
    """A workdir whose run cannot continue with the given config; the message says why."""


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` as `{"a.b": 1}` (lists and tuples compared as lists)."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = list(value) if isinstance(value, (list, tuple)) else value
    return flat


def changed_model_keys(saved: Mapping[str, Any], config: Mapping[str, Any]) -> list[str]:
    """The `MODEL_KEYS` entries whose values differ between two configs (as plain dicts).

    A key only one config has is not counted: an older run's config.json lacks keys added
    since, whose defaults keep the old behaviour. A real change of the network still shows
    when its checkpoint's parameter shapes are compared (`checkpoint.Checkpointer`).
    """
    old, new = flatten(saved), flatten(config)
    model = [key for key in old.keys() & new.keys() if key.split(".")[0] in MODEL_KEYS]
    return sorted(key for key in model if old[key] != new[key])


def _newest_step(checkpoints: pathlib.Path) -> int:
    steps = [int(p.name) for p in checkpoints.glob("*") if p.is_dir() and p.name.isdigit()]
    return max(steps, default=0)


def record(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> None:
    """Writes `<workdir>/config.json`, or checks the one there against `config`.

    Raises RunConfigError naming the model keys that differ, or an unreadable config.json.
    """
    path = workdir / CONFIG_FILE
    text = config.to_json_best_effort(indent=2)
    if not path.exists():
        safe_files.write_text_new(path, text)
        return
    saved_text = path.read_text()
    try:
        saved = config_lib.config_from_json(saved_text).to_dict()
    except json.JSONDecodeError as error:
        raise RunConfigError(
            f"{path}: not readable JSON ({error.msg}, line {error.lineno})"
        ) from None
    changed = changed_model_keys(saved, json.loads(text))
    if changed:
        old, new = flatten(saved), flatten(json.loads(text))
        differences = ", ".join(f"{key} {old[key]!r} -> {new[key]!r}" for key in changed)
        raise RunConfigError(
            f"workdir {workdir} holds a run of another model ({differences}); resume it with "
            f"its own config ({path}) or train in a new --workdir"
        )
    if saved_text == text:
        return
    # The old config is kept under a new name first; only then does the new one replace it.
    kept = workdir / f"config_until_step_{_newest_step(workdir / 'checkpoints')}.json"
    safe_files.write_text_new(kept, saved_text, on_taken="number")
    safe_files.write_text_new(path, text, overwrite=True)
