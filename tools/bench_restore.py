"""Times `python -m restorect_jax.restore` on a 512x512 and a 12-megapixel photo: JSON + table.

    RESTORECT_DATA_DIR=../shared/data python tools/bench_restore.py --task denoise --steps 4

The photos are a real Kodak24 image (noisy, AWGN sigma 25), centre-cropped to 512x512 and
upscaled (bicubic) to 4000x3000 for the 12 MP case. Each run is a fresh process under
`/usr/bin/time -v`: the wall time includes start-up and compiles, the peak resident memory is
the process's. The per-image time after warm-up is the extra wall time of a second process given
the image twice: its second image reuses the compiled tiles and skips the start-up.
"""

import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import numpy as np
from absl import app, flags
from PIL import Image

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


def timed_restore(inputs: list[pathlib.Path], output: pathlib.Path) -> dict[str, float]:
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
    result = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO)
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", result.stderr)
    hours, minutes, seconds = (float(g) if g else 0.0 for g in wall.groups())
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)[1])
    return {"wall_s": hours * 3600 + minutes * 60 + seconds, "peak_rss_mb": peak_kb / 1024}


def main(argv) -> None:
    del argv
    report = {"task": _TASK.value, "steps": _STEPS.value, "tile": _TILE.value, "rows": {}}
    with tempfile.TemporaryDirectory() as scratch:
        folder = pathlib.Path(scratch)
        photos = make_photos(folder)
        for name, photo in photos.items():
            once = timed_restore([photo], folder / "once")
            copy = folder / f"{name}_copy.png"
            copy.write_bytes(photo.read_bytes())
            twice = timed_restore([photo, copy], folder / "twice")
            report["rows"][name] = {
                **once,
                "seconds_per_image_after_warmup": twice["wall_s"] - once["wall_s"],
            }
    out = pathlib.Path(_OUT.value)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    lines = [
        f"restore --task {_TASK.value} --steps {_STEPS.value} --tile {_TILE.value}",
        "",
        "| photo | wall s (one image, with start-up) | s per image after warm-up | peak RSS MB |",
        "|---|---|---|---|",
    ]
    for name, row in report["rows"].items():
        lines.append(
            f"| {name} | {row['wall_s']:.1f} | {row['seconds_per_image_after_warmup']:.1f} "
            f"| {row['peak_rss_mb']:.0f} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    app.run(main)
