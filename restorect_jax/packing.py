"""A training run's whole state in one file, to carry a long run across sessions and machines.

A pack is an uncompressed tar holding:
  manifest.json    format version, step, run name, sha256 of state.msgpack;
  config.json      the run's config;
  metrics.jsonl    its scalars so far (training curve, wall and CPU seconds);
  state.msgpack    the `train.TrainState` at the newest checkpoint: step, params, EMA params
                   and optimiser state, float32 as trained (`flax.serialization`);
  data_state.json  the data iterator's position of every process at that step;
  copies.msgpack   a method's frozen copies of its params, where it has any.

`unpack` writes a run folder whose one checkpoint holds exactly that state, so re-running the
training command there resumes bit-exactly where the packed run stood. The size is about
16 bytes per parameter (params, EMA and Adam's two moments).
"""

from __future__ import annotations

import hashlib
import io
import json
import pathlib
import tarfile
from typing import Any

import flax.serialization
import jax
import ml_collections
import numpy as np

from restorect_jax import checkpoint as checkpoint_lib
from restorect_jax import config_lib, sharding, train

FORMAT = "restorect_jax.pack/1"
MEMBERS = ("manifest.json", "config.json", "state.msgpack", "data_state.json")


class PackError(ValueError):
    """A pack that cannot be written or read; the message names the file and why."""


def _abstract_state(config: ml_collections.ConfigDict) -> tuple[Any, Any, train.StepFunctions]:
    """(abstract train state, abstract frozen copies or None, step functions) of `config`,
    on this machine's devices (nothing is compiled)."""
    mesh = sharding.create_mesh(config.mesh)
    steps = train.build_step_functions(config, mesh, train.example_batch())
    copies = train.FrozenCopies(steps.method, steps.abstract_state, sharding.replicated(mesh))
    return steps.abstract_state, copies.abstract() if copies.every else None, steps


def _zeros_like(abstract: Any) -> Any:
    return jax.tree.map(lambda leaf: np.zeros(leaf.shape, leaf.dtype), abstract)


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def pack(workdir: pathlib.Path, out: pathlib.Path) -> int:
    """Writes the newest checkpoint of the run in `workdir` to the pack `out`; returns its step.

    `out` is written through a temporary file beside it and must not exist yet.
    """
    config_path = workdir / "config.json"
    if not config_path.is_file():
        raise PackError(f"--workdir {workdir}: no config.json (not a training run)")
    if out.exists():
        raise PackError(f"--out {out}: exists; choose another name or remove it")
    config = config_lib.config_from_json(config_path.read_text())
    abstract, abstract_copies, steps = _abstract_state(config)
    checkpointer = checkpoint_lib.Checkpointer(workdir / "checkpoints", keep=10**6, async_save=False)
    try:
        restored = checkpointer.restore_newest(
            checkpoint_lib.abstract_with_shardings(abstract, steps.state_sharding), abstract_copies
        )
    finally:
        checkpointer.close()
    if restored is None:
        raise PackError(f"--workdir {workdir}: no checkpoint that restores")
    step, state, data_state, copies = restored
    state_bytes = flax.serialization.to_bytes(jax.device_get(state))
    manifest = {
        "format": FORMAT,
        "run": workdir.name,
        "step": int(step),
        "state_sha256": hashlib.sha256(state_bytes).hexdigest(),
    }
    metrics = workdir / "metrics.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with tarfile.open(partial, "w") as tar:
        _add(tar, "manifest.json", json.dumps(manifest, indent=2).encode())
        _add(tar, "config.json", config_path.read_bytes())
        _add(tar, "state.msgpack", state_bytes)
        _add(tar, "data_state.json", json.dumps(data_state).encode())
        if metrics.is_file():
            _add(tar, "metrics.jsonl", metrics.read_bytes())
        if copies:
            _add(tar, "copies.msgpack", flax.serialization.to_bytes(jax.device_get(copies)))
    partial.rename(out)
    return int(step)


def _read_members(path: pathlib.Path) -> dict[str, bytes]:
    try:
        with tarfile.open(path) as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    except (OSError, tarfile.TarError) as error:
        raise PackError(f"--pack {path}: {error}") from None
    missing = [name for name in MEMBERS if name not in members]
    if missing:
        raise PackError(f"--pack {path}: not a run pack (no {', '.join(missing)})")
    manifest = json.loads(members["manifest.json"])
    if manifest.get("format") != FORMAT:
        raise PackError(f"--pack {path}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    if hashlib.sha256(members["state.msgpack"]).hexdigest() != manifest["state_sha256"]:
        raise PackError(f"--pack {path}: state.msgpack does not match its checksum (damaged)")
    return members


def unpack(path: pathlib.Path, workdir: pathlib.Path) -> int:
    """Makes `workdir` (new or empty) the packed run at its packed step; returns the step."""
    if workdir.exists() and any(workdir.iterdir()):
        raise PackError(f"--workdir {workdir}: exists and is not empty")
    members = _read_members(path)
    config = config_lib.config_from_json(members["config.json"].decode())
    abstract, abstract_copies, _ = _abstract_state(config)
    try:
        state = flax.serialization.from_bytes(_zeros_like(abstract), members["state.msgpack"])
        copies = None
        if abstract_copies is not None and "copies.msgpack" in members:
            copies = flax.serialization.from_bytes(
                _zeros_like(abstract_copies), members["copies.msgpack"]
            )
    except (ValueError, KeyError) as error:
        raise PackError(f"--pack {path}: its state does not fit its config ({error})") from None
    step = int(state.step)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_bytes(members["config.json"])
    if "metrics.jsonl" in members:
        (workdir / "metrics.jsonl").write_bytes(members["metrics.jsonl"])
    data_state = json.loads(members["data_state.json"])
    checkpointer = checkpoint_lib.Checkpointer(workdir / "checkpoints", keep=2, async_save=False)
    try:
        checkpointer.save(step, state, data_state, copies)
    finally:
        checkpointer.close()
    return step
