"""Command line: `python -m restorect_jax.main --config configs/<name>.py --workdir DIR`.

Any config field can be overridden, e.g. `--config.train.num_steps=10`. Re-running the same
command resumes from the newest checkpoint in DIR. On multi-host TPU/GPU jobs pass
`--distributed` to call `jax.distributed.initialize()` first.
"""

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from restorect_jax import train

_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and samples.")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize().")
config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=True)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if _DISTRIBUTED.value:
        jax.distributed.initialize()
    logging.info(
        "JAX process %d/%d, devices: %s", jax.process_index(), jax.process_count(), jax.devices()
    )
    result = train.train_and_evaluate(flags.FLAGS.config, _WORKDIR.value)
    if result["preempted"]:
        # 128 + SIGTERM, as if the signal had ended the process: schedulers see an unfinished job.
        raise SystemExit(143)


if __name__ == "__main__":
    app.run(main)
