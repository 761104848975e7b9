"""The model registry: module classes by config name, each backbone with its `BackboneSpec`.

Helper modules (building blocks such as the decomposition network) are registered without a
spec: `get_model` builds them, but a config cannot name one as its `config.model`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import flax.linen as nn
import ml_collections

from restorect_jax.config_keys import require
from restorect_jax.models.backbones import BackboneSpec

ModuleT = TypeVar("ModuleT", bound=type[nn.Module])
ModelConfig = ml_collections.ConfigDict | Mapping[str, Any]

_REGISTRY: dict[str, type[nn.Module]] = {}
_BACKBONES: dict[str, BackboneSpec] = {}
_NOT_FIELDS = ("parent", "name")  # every Linen module's, set by Flax


def register_model(name: str, spec: BackboneSpec | None = None) -> Callable[[ModuleT], ModuleT]:
    """Class decorator adding a module class to the registry under `name` (must be new), with
    its backbone contract `spec` (None: a helper module, not a backbone)."""

    def register(cls: ModuleT) -> ModuleT:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered ({_REGISTRY[name].__name__})")
        _REGISTRY[name] = cls
        if spec is not None:
            _BACKBONES[name] = spec
        return cls

    return register


def get_model(name: str, **kwargs) -> nn.Module:
    """Builds the registered module `name` with the given fields."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](**kwargs)


def backbone_names() -> tuple[str, ...]:
    """The registered models that are backbones (have a spec), sorted."""
    return tuple(sorted(_BACKBONES))


def backbone_spec(name: str) -> BackboneSpec:
    """The spec of the backbone registered as `name`; ValueError naming `config.model.name`."""
    require(
        name in _BACKBONES,
        "model.name",
        name,
        f"must name a registered backbone, one of {backbone_names()}",
    )
    return _BACKBONES[name]


def backbone_of(module: nn.Module) -> BackboneSpec:
    """The spec of a built backbone (found by its class)."""
    for name, cls in _REGISTRY.items():
        if type(module) is cls and name in _BACKBONES:
            return _BACKBONES[name]
    raise ValueError(f"{type(module).__name__} is not a registered backbone")


def module_fields(module: nn.Module) -> dict[str, Any]:
    """A built module's fields by name (what a spec's stride, inputs and checks read)."""
    return {
        field.name: getattr(module, field.name)
        for field in dataclasses.fields(module)
        if field.name not in _NOT_FIELDS
    }


def _as_tuples(value: Any) -> Any:
    """Lists (as JSON gives them back) as tuples, nested ones too."""
    return tuple(_as_tuples(v) for v in value) if isinstance(value, list | tuple) else value


def _config_kwargs(model_config: ModelConfig) -> dict[str, Any]:
    """The config's fields, `name` aside, lists as tuples (so a saved `config.json` works)."""
    return {key: _as_tuples(value) for key, value in dict(model_config).items() if key != "name"}


def model_fields(model_config: ModelConfig) -> dict[str, Any]:
    """The fields of the module `model_config` builds: its defaults under the config's values.

    ValueError naming `config.model.<key>` for a key that is no field of the module, or a field
    without default that the config leaves out.
    """
    backbone_spec(model_config["name"])  # names config.model.name when it is no backbone
    cls = _REGISTRY[model_config["name"]]
    known = {f.name: f for f in dataclasses.fields(cls) if f.name not in _NOT_FIELDS}
    given = _config_kwargs(model_config)
    for key, value in given.items():
        require(
            key in known, f"model.{key}", value, f"is no field of {cls.__name__}: {sorted(known)}"
        )
    fields = {}
    for name, field in known.items():
        if name in given:
            fields[name] = given[name]
        elif field.default is not dataclasses.MISSING:
            fields[name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            fields[name] = field.default_factory()
        else:
            require(False, f"model.{name}", None, f"{cls.__name__} needs it (no default)")
    return fields


def check_model_config(model_config: ModelConfig) -> tuple[BackboneSpec, dict[str, Any]]:
    """The backbone's spec and fields for `config.model`, after its own checks (ValueError naming
    the first `config.model.<key>` whose value cannot work)."""
    fields = model_fields(model_config)
    spec = backbone_spec(model_config["name"])
    spec.check(fields)
    return spec, fields


def model_from_config(model_config: ModelConfig) -> nn.Module:
    """The registry model named `model_config["name"]`, built with the config's other fields.

    Lists (as JSON gives them back) become tuples, so a saved `config.json` works too.
    """
    return get_model(model_config["name"], **_config_kwargs(model_config))
