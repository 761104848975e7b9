"""A training command line checked before absl parses it, so that a `--config` that cannot load
or an override key it lacks is one line naming the flag (absl's own errors are tracebacks).

Kept apart from `restorect_jax.main`, which defines absl flags: importing this module defines
none.
"""

from __future__ import annotations

import difflib
import sys

from restorect_jax import config_keys, config_lib


def _flag_value(argv: list[str], name: str) -> str | None:
    """The value of the last `--name=V` or `--name V` in argv (the one absl keeps), or None."""
    value = None
    for index, arg in enumerate(argv):
        if arg.startswith(f"--{name}="):
            value = arg.split("=", 1)[1]
        elif arg == f"--{name}" and index + 1 < len(argv):
            value = argv[index + 1]
    return value


def check_training_command(argv: list[str]) -> str | None:
    """The one-line error of a --config that cannot load or an override key it lacks, or None.

    Runs before absl parses the flags (whose errors are tracebacks). A config file outside the
    checkout that imports `configs.*` gets its checkout's root on `sys.path`.
    """
    path = _flag_value(argv, "config")
    if path is None:
        return None
    file, _ = config_lib.split_config_spec(path)
    if (file.resolve().parent / "__init__.py").is_file():
        sys.path.insert(0, str(file.resolve().parent.parent))
    try:
        config = config_lib.load_config_file(path)
    except Exception as error:  # noqa: BLE001 (any failure of the user's config file)
        return f"--config {path}: {type(error).__name__}: {error}"
    for arg in argv:
        if not arg.startswith("--config."):
            continue
        key = arg.removeprefix("--config.").partition("=")[0]
        if not _has(config, key):
            return f"--config.{key}: config.{key} does not exist in {path}{_suggest(config, key)}"
    return None


def _has(config, key: str) -> bool:
    try:
        config_keys.lookup(config, key)
    except ValueError:
        return False
    return True


def _suggest(config, key: str) -> str:
    """ "; did you mean ...?" with the closest existing keys beside `key`, or "". A key that
    older configs kept outside the method's section (`distill`, `loss.flex`) names its new
    place (`restorect.distill`, `train.phase1_steps` -> `restorect.phase1_steps`)."""
    parent, _, leaf = key.rpartition(".")
    method = config.get("method", "")
    for moved in (f"{method}.{key}", f"{method}.{leaf}"):
        if method and _has(config, moved):
            return f"; did you mean {moved}?"
    node = config_keys.lookup(config, parent) if parent and _has(config, parent) else config
    prefix = f"{parent}." if node is not config else ""
    close = difflib.get_close_matches(leaf, [str(name) for name in node], n=3)
    return f"; did you mean {', '.join(prefix + name for name in close)}?" if close else ""
