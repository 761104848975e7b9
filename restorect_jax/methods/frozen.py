"""Frozen models by name: any finished run, read as its method's model and EMA params.

A method that learns from other models names them in its config, `config.frozen = {name:
workdir}` (a RestoRect student: `frozen.teacher`; SLKD: two teachers); `load_frozen` reads one
run's `config.json`, builds its method for inference and returns the newest checkpoint's EMA
params. The params enter the train step as an argument and never get a gradient.
"""

from __future__ import annotations

import dataclasses
import pathlib

import ml_collections

from restorect_jax.config_lib import config_from_json
from restorect_jax.methods.base import Method, PyTree


@dataclasses.dataclass
class FrozenModel:
    """A loaded run: its config, its method (built for inference) and its EMA params."""

    config: ml_collections.ConfigDict
    method: Method
    params: PyTree


def load_frozen(name: str, workdir: str | pathlib.Path) -> FrozenModel:
    """The run in `workdir` as the frozen model `config.frozen.<name>`.

    Raises FileNotFoundError / ValueError naming `config.frozen.<name>` when the folder holds no
    finished run.
    """
    from restorect_jax import checkpoint as checkpoint_lib  # Orbax: only runs need it
    from restorect_jax import methods  # here: the registry imports the methods

    key = f"config.frozen.{name}={str(workdir)!r}"
    workdir = pathlib.Path(workdir).expanduser()
    config_path = workdir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{key}: no config.json there; train that run first")
    config = config_from_json(config_path.read_text())
    try:
        method = methods.get_method(config.method)(config, inference=True)
    except ValueError as err:
        raise ValueError(f"{key}: {err}") from None
    try:
        _, state = checkpoint_lib.load_state(workdir / "checkpoints")
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{key}: {error}") from error
    return FrozenModel(config, method, state["ema_params"])
