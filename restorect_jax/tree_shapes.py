"""Comparing the parameter shapes of two pytrees by path: a run, a bundle, a checkpoint's
metadata or `init_from` weights against what a config builds."""

from __future__ import annotations

from typing import Any

import jax


def shapes_by_path(tree: Any) -> dict[str, tuple]:
    """`{keystr(path): shape}` of every leaf (arrays, abstract arrays, Orbax array metadata)."""
    return {
        jax.tree_util.keystr(path): tuple(getattr(leaf, "shape", ()) or ())
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
    }


def first_difference(
    wanted: dict[str, tuple], found: dict[str, tuple]
) -> tuple[str, Any, Any] | None:
    """`(path, shape in found or "missing", shape in wanted or "nothing")` of the first path
    (in sorted order) whose shape differs between two `shapes_by_path` maps; None when they
    agree."""
    for path in sorted(wanted.keys() | found.keys()):
        if wanted.get(path) != found.get(path):
            return path, found.get(path, "missing"), wanted.get(path, "nothing")
    return None
