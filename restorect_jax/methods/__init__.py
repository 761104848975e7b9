"""Training methods, by config name (`config.method`)."""

from restorect_jax.methods.base import Method, model_from_config
from restorect_jax.methods.restorect import RestoRectMethod
from restorect_jax.methods.teacher import TeacherMethod

_METHODS: dict[str, type[Method]] = {
    "teacher": TeacherMethod,
    "restorect": RestoRectMethod,
}


def get_method(name: str) -> type[Method]:
    """The Method class registered as `name` (the value of `config.method`)."""
    if name not in _METHODS:
        raise ValueError(f"config.method={name!r} is unknown; known methods: {sorted(_METHODS)}")
    return _METHODS[name]


__all__ = ["Method", "RestoRectMethod", "TeacherMethod", "get_method", "model_from_config"]
