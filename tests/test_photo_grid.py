"""tools/photo_grid.py: the docs' before/after picture of real noisy photos."""

import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tools import photo_grid

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _pairs(folder: pathlib.Path, count: int, side: int = 40) -> pathlib.Path:
    rng = np.random.default_rng(0)
    for sub in ("real", "mean"):
        (folder / sub).mkdir(parents=True)
    for index in range(count):
        ramp = np.linspace(60, 190, side)
        clean = np.stack([ramp[:, None] + 0 * ramp, ramp[None, :] + 0 * ramp[:, None]], -1)
        clean = np.concatenate([clean, clean[..., :1]], -1).astype(np.uint8)  # smooth gradients
        noisy = np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(folder / "real" / f"p{index}.png")
        Image.fromarray(clean).save(folder / "mean" / f"p{index}.png")
    return folder


def test_pairs_are_taken_in_name_order_and_bad_indices_are_named(tmp_path):
    folder = _pairs(tmp_path / "set", 3)
    assert [noisy.name for noisy, _ in photo_grid.pair_files(folder, [2, 0])] == [
        "p2.png",
        "p0.png",
    ]
    with pytest.raises(photo_grid.GridError, match=r"--images 3: .* has 3 pairs \(0-2\)"):
        photo_grid.pair_files(folder, [3])
    (folder / "mean" / "p1.png").unlink()
    with pytest.raises(photo_grid.GridError, match="no mean/p1.png"):
        photo_grid.pair_files(folder, [1])
    with pytest.raises(photo_grid.GridError, match="no real/ folder"):
        photo_grid.pair_files(tmp_path, [0])


def test_centre_crop_takes_the_middle():
    image = np.arange(6 * 8).reshape(6, 8, 1)
    np.testing.assert_array_equal(photo_grid.centre_crop(image, 2)[..., 0], [[19, 20], [27, 28]])
    assert photo_grid.centre_crop(image, 10).shape == (6, 8, 1)


def test_each_row_is_noisy_restored_reference(tmp_path):
    from restorect_jax import inference, writers

    pairs = photo_grid.pair_files(_pairs(tmp_path / "set", 2), [0, 1])
    model = inference.load_model(task="denoise")
    rows = photo_grid.restored_rows(model, pairs, 32)
    assert len(rows) == 2 and all(len(row) == 3 for row in rows)
    noisy, restored, reference = rows[1]
    assert noisy.shape == restored.shape == reference.shape == (32, 32, 3)
    np.testing.assert_array_equal(
        reference, photo_grid.image_io.read_image(pairs[1][1]).pixels[4:36, 4:36]
    )
    # The denoiser moves the noisy crop towards its reference.
    assert np.abs(restored - reference).mean() < np.abs(noisy - reference).mean()
    grid = writers.image_grid(rows)
    assert grid.shape == (2 * 32 + 4, 3 * 32 + 2 * 4, 3)


def test_an_existing_picture_is_refused_before_any_work(tmp_path):
    out = tmp_path / "grid.png"
    out.write_bytes(b"kept")
    command = [
        sys.executable,
        str(ROOT / "tools" / "photo_grid.py"),
        "--task=denoise",
        f"--out={out}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 1 and "--overwrite" in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and out.read_bytes() == b"kept"
