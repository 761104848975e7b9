"""Times `python -m restorect_jax.restore` on a 512x512 and a 12-megapixel photo: JSON + table.

    RESTORECT_DATA_DIR=../shared/data python tools/bench_restore.py --task denoise --steps 4

The photos are a real Kodak24 image (noisy, AWGN sigma 25), centre-cropped to 512x512 and
upscaled (bicubic) to 4000x3000 for the 12 MP case. Each run is a fresh process under
`/usr/bin/time -v`: the wall time includes start-up and compiles, the peak resident memory is
the process's. Three runs per photo, each with its own persistent compilation cache
(`JAX_COMPILATION_CACHE_DIR`): the first call (an empty cache: everything compiles), a later call
(the cache the first one filled, as for a user's second command), and a first call given the
image twice; the per-image time after warm-up is that run's extra wall time over the first
call's (its second image reuses the compiled tiles and skips the start-up).
"""

import os
import pathlib
import re
import subprocess
import sys
import tempfile

import numpy as np
from absl import app, flags
from PIL import Image

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from bench_common import write_report

_TASK = flags.DEFINE_string("task", "denoise", "bundled student")
_STEPS = flags.DEFINE_integer("steps", 4, "ODE steps")
_TILE = flags.DEFINE_integer("tile", 512, "restore --tile")
_OVERLAP = flags.DEFINE_integer("overlap", 32, "restore --overlap")
_OUT = flags.DEFINE_string("out", "tools/results/bench_restore_cpu", "output path prefix")

REPO = pathlib.Path(__file__).resolve().parents[1]


def make_photos(folder: pathlib.Path) -> dict[str, pathlib.Path]:
    data_root = pathlib.Path(os.environ.get("RESTORECT_DATA_DIR", REPO.parent / "shared" / "data"))
    source = min((data_root / "denoise" / "test" / "Kodak24").glob("*.png"))
    clean = Image.open(source).convert("RGB")
    rng = np.random.default_rng(0)
    photos = {}
    for name, size in {"512x512": (512, 512), "12MP_4000x3000": (4000, 3000)}.items():
        resized = np.asarray(clean.resize(size, Image.BICUBIC), np.float32)
        noisy = np.clip(resized + rng.normal(0, 25, resized.shape), 0, 255).astype(np.uint8)
        photos[name] = folder / f"{name}.png"
        Image.fromarray(noisy).save(photos[name])
    return photos


def timed_restore(
    inputs: list[pathlib.Path], output: pathlib.Path, cache: pathlib.Path
) -> dict[str, float]:
    """Wall seconds and peak resident MB of one restore process using compilation cache `cache`."""
    command = [
        "/usr/bin/time",
        "-v",
        sys.executable,
        "-m",
        "restorect_jax.restore",
        f"--task={_TASK.value}",
        f"--steps={_STEPS.value}",
        f"--tile={_TILE.value}",
        f"--overlap={_OVERLAP.value}",
        f"--output={output}",
        *map(str, inputs),
    ]
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(cache)}
    result = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO, env=env)
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", result.stderr)
    hours, minutes, seconds = (float(g) if g else 0.0 for g in wall.groups())
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)[1])
    return {"wall_s": hours * 3600 + minutes * 60 + seconds, "peak_rss_mb": peak_kb / 1024}


def bench_photo(photo: pathlib.Path, folder: pathlib.Path) -> dict[str, float]:
    """The three runs of the module docstring for one photo."""
    first = timed_restore([photo], folder / "first", folder / f"{photo.stem}_cache")
    later = timed_restore([photo], folder / "later", folder / f"{photo.stem}_cache")
    copy = folder / f"{photo.stem}_copy.png"
    copy.write_bytes(photo.read_bytes())
    twice = timed_restore([photo, copy], folder / "twice", folder / f"{photo.stem}_cache_twice")
    return {
        **first,
        "wall_s_warm_cache": later["wall_s"],
        "seconds_per_image_after_warmup": twice["wall_s"] - first["wall_s"],
    }


def main(argv) -> None:
    del argv
    report = {
        "command": " ".join(["python tools/bench_restore.py", *sys.argv[1:]]),
        "task": _TASK.value,
        "steps": _STEPS.value,
        "tile": _TILE.value,
        "rows": {},
    }
    with tempfile.TemporaryDirectory() as scratch:
        folder = pathlib.Path(scratch)
        for name, photo in make_photos(folder).items():
            report["rows"][name] = bench_photo(photo, folder)
    lines = [
        f"restore --task {_TASK.value} --steps {_STEPS.value} --tile {_TILE.value}",
        "",
        (
            "| photo | wall s, first call (compiles) | wall s, later call (cached) "
            "| s per image after warm-up | peak RSS MB |"
        ),
        "|---|---|---|---|---|",
    ]
    for name, row in report["rows"].items():
        lines.append(
            f"| {name} | {row['wall_s']:.1f} | {row['wall_s_warm_cache']:.1f} "
            f"| {row['seconds_per_image_after_warmup']:.1f} | {row['peak_rss_mb']:.0f} |"
        )
    write_report(pathlib.Path(_OUT.value), report, lines)


if __name__ == "__main__":
    app.run(main)
