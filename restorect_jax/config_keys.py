"""Reading and checking single config keys, with errors that name the key.

A leaf module: config validation, the methods and the models all use it, and it imports
nothing of the project.
"""

from collections.abc import Callable
from typing import Any, TypeVar

import ml_collections

T = TypeVar("T")


def require(condition: bool, key: str, value: Any, expectation: str) -> None:
    """Raises ValueError `config.<key>=<value>: <expectation>` unless `condition` holds."""
    if not condition:
        raise ValueError(f"config.{key}={value!r}: {expectation}")


def parsed(key: str, value: Any, parse: Callable[[Any], T]) -> T:
    """`parse(value)`, its ValueError raised again as `config.<key>: <reason>`."""
    try:
        return parse(value)
    except ValueError as err:
        raise ValueError(f"config.{key}: {err}") from None


def lookup(config: ml_collections.ConfigDict, key: str) -> Any:
    """`config.<key>` for a dotted key; ValueError naming it when it is missing."""
    node = config
    for part in key.split("."):
        if part not in node:
            raise ValueError(f"config.{key} is missing")
        node = node[part]
    return node
