"""Tests of restorect_jax.data: folder builders, degradations, the grain pipeline."""

import json
import os
import pickle
import shutil
import sys
from pathlib import Path

import ml_collections
import numpy as np
import pytest
from PIL import Image

from restorect_jax import data, image_ops
from restorect_jax.data import embedded

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _write_png(path: Path, array: np.ndarray) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return array


def _random_image(seed: int, shape=(30, 40, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _clean_folder(folder: Path, count: int = 3) -> dict[str, np.ndarray]:
    """Writes ``count`` 40x30 PNGs (the second one grey); returns name -> expected RGB pixels."""
    expected = {}
    for i in range(count):
        name = f"img_{i}.png"
        if i == 1:
            grey = _write_png(folder / name, _random_image(i, (30, 40)))
            expected[name] = np.repeat(grey[..., None], 3, axis=-1)
        else:
            expected[name] = _write_png(folder / name, _random_image(i))
    return expected


def _id_folder(folder: Path, count: int) -> None:
    """Writes ``count`` constant images; image ``i`` has value ``10 * (i + 1)`` everywhere."""
    for i in range(count):
        _write_png(folder / f"id_{i:02d}.png", np.full((12, 16, 3), 10 * (i + 1), np.uint8))


def _config(tmp_path: Path, **overrides) -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict(
        dict(
            source="folder",
            root=str(tmp_path / "data"),
            tfds_dir=str(tmp_path / "tfds"),
            train_dir="train",
            val_dir="val",
            paired=False,
            lq_subdir="rain",
            gt_subdir="norain",
            train_range=(0, 0),
            val_range=(0, 0),
            degradation="awgn",
            noise_sigma=25.0,
            clip=True,
            lowlight=dict(
                gamma_min=1.5,
                gamma_max=3.0,
                scale_min=0.1,
                scale_max=0.5,
                shot_peak=500.0,
                read_sigma=2.0,
            ),
            patch_size=16,
            val_crop=0,
            val_count=0,
            num_workers=0,
            prefetch=0,
        )
    )
    config.update(overrides)
    return config


def _take(iterator, n: int) -> list[dict[str, np.ndarray]]:
    return [next(iterator) for _ in range(n)]


def _record_ids(batch: dict[str, np.ndarray]) -> list[int]:
    """Recovers the image index of each patch of a batch of ``_id_folder`` images."""
    values = np.rint(batch["gt"][:, 0, 0, 0] * 255).astype(int)
    return [v // 10 - 1 for v in values]


# ---- builders -------------------------------------------------------------------------------


def test_clean_folder_round_trip_is_pixel_exact_without_tensorflow(tmp_path):
    expected = _clean_folder(tmp_path / "imgs")
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    source = data.build_image_folder(tmp_path / "imgs", tmp_path / "tfds").as_data_source("train")
    assert len(source) == 3
    for index, name in enumerate(sorted(expected)):
        record = source[index]
        assert record["name"].decode() == name
        assert record["gt"].dtype == np.uint8 and record["gt"].shape == (30, 40, 3)
        np.testing.assert_array_equal(record["gt"], expected[name])
    # Grain worker processes receive the source pickled.
    unpickled = pickle.loads(pickle.dumps(source))
    np.testing.assert_array_equal(unpickled[2]["gt"], expected["img_2.png"])
    assert "tensorflow" not in sys.modules


def test_building_is_quiet(tmp_path, capfd):
    _clean_folder(tmp_path / "imgs", count=2)
    data.build_image_folder(tmp_path / "imgs", tmp_path / "tfds")
    assert capfd.readouterr() == ("", "")


def test_exif_orientation_is_applied(tmp_path):
    pixels = _random_image(5, (10, 20, 3))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display.
    (tmp_path / "imgs").mkdir()
    Image.fromarray(pixels).save(tmp_path / "imgs" / "rotated.png", exif=exif)
    builder = data.build_image_folder(tmp_path / "imgs", tmp_path / "tfds")
    record = builder.as_data_source("train")[0]
    np.testing.assert_array_equal(record["gt"], np.rot90(pixels, -1))


def test_paired_folder_and_missing_partner(tmp_path):
    root = tmp_path / "pairs"
    names = ["0.png", "1.png"]
    lq = {n: _write_png(root / "rain" / n, _random_image(i)) for i, n in enumerate(names)}
    gt = {n: _write_png(root / "norain" / n, _random_image(9 + i)) for i, n in enumerate(names)}
    source = data.build_image_folder(root, tmp_path / "tfds", paired=True).as_data_source("train")
    assert len(source) == 2
    for index, name in enumerate(names):
        record = source[index]
        assert record["name"].decode() == name
        np.testing.assert_array_equal(record["lq"], lq[name])
        np.testing.assert_array_equal(record["gt"], gt[name])

    _write_png(root / "rain" / "2.png", _random_image(3))
    with pytest.raises(FileNotFoundError, match=r"rain/2\.png.*norain/2\.png"):
        data.build_image_folder(root, tmp_path / "tfds", paired=True)
    with pytest.raises(FileNotFoundError, match=r"data\.lq_subdir"):
        data.build_image_folder(root, tmp_path / "tfds", paired=True, lq_subdir="input")


def test_corrupt_image_error_names_the_file(tmp_path):
    _clean_folder(tmp_path / "imgs", count=2)
    (tmp_path / "imgs" / "broken.png").write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises(ValueError, match="broken.png") as info:
        data.build_image_folder(tmp_path / "imgs", tmp_path / "tfds")
    assert isinstance(info.value, data.CorruptImageError)


def test_missing_folder_names_the_config_key(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"nowhere.*data\.root.*RESTORECT_DATA_DIR"):
        data.build_image_folder(tmp_path / "nowhere", tmp_path / "tfds")
    with pytest.raises(FileNotFoundError, match=r"data\.root"):
        data.resolve_data_root(_config(tmp_path, root=str(tmp_path / "absent")))
    monkeypatch.delenv("RESTORECT_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"data\.root.*RESTORECT_DATA_DIR"):
        data.resolve_data_root(_config(tmp_path, root=""))


def test_resolve_data_root_order(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.setenv("RESTORECT_DATA_DIR", str(tmp_path / "b"))
    assert data.resolve_data_root(_config(tmp_path, root=str(tmp_path / "a"))) == tmp_path / "a"
    assert data.resolve_data_root(_config(tmp_path, root="")) == tmp_path / "b"
    monkeypatch.delenv("RESTORECT_DATA_DIR")
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    fallback = data.resolve_data_root(_config(tmp_path, root=""))
    assert fallback.resolve() == (tmp_path / "shared" / "data").resolve()


def test_changed_folder_gets_a_new_dataset(tmp_path):
    folder = tmp_path / "imgs"
    _clean_folder(folder, count=2)
    first = data.build_image_folder(folder, tmp_path / "tfds")
    again = data.build_image_folder(folder, tmp_path / "tfds")
    assert again.data_dir == first.data_dir

    new_pixels = _write_png(folder / "img_0.png", _random_image(99, (20, 24, 3)))
    os.utime(folder / "img_0.png", ns=(1, 1))  # A different mtime even on coarse clocks.
    changed = data.build_image_folder(folder, tmp_path / "tfds")
    assert changed.data_dir != first.data_dir
    np.testing.assert_array_equal(changed.as_data_source("train")[0]["gt"], new_pixels)
    assert len(first.as_data_source("train")) == 2  # The old dataset is still there, untouched.


def test_embedded_validation_set(tmp_path):
    source = embedded.build_embedded(tmp_path, "val").as_data_source("train")
    assert [source[i]["name"].decode() for i in range(len(source))] == ["camera.png", "coffee.png"]
    camera = source[0]["gt"]
    assert camera.shape == (512, 512, 3) and camera.dtype == np.uint8
    np.testing.assert_array_equal(camera[..., 0], camera[..., 2])  # Grey photo -> 3 equal channels.
    assert "tensorflow" not in sys.modules


# ---- degradations ---------------------------------------------------------------------------


def test_awgn_statistics():
    gt = np.full((128, 128, 3), 0.5, np.float32)
    lq = data.add_gaussian_noise(gt, 25.0, np.random.default_rng(0), clip=False)
    assert lq.dtype == np.float32
    assert abs(float(np.std(lq - gt)) - 25.0 / 255.0) < 0.002
    assert abs(float(np.mean(lq - gt))) < 0.002
    clipped = data.add_gaussian_noise(np.zeros_like(gt), 50.0, np.random.default_rng(0))
    assert clipped.min() >= 0.0 and clipped.max() <= 1.0


def test_blind_awgn_draws_one_sigma_per_image_in_the_range(tmp_path):
    config = _config(tmp_path, noise_sigma=5.0, noise_sigma_max=55.0)
    gt = np.full((64, 64, 3), 0.5, np.float32)
    sigmas = [
        float(np.std(data.degrade(gt, config, np.random.default_rng(i)) - gt)) * 255
        for i in range(40)
    ]
    assert 5.0 - 0.5 < min(sigmas) < 15.0 and 45.0 < max(sigmas) < 55.0 + 1.0
    rng = np.random.default_rng(3)  # sigma is drawn first, then the noise.
    sigma = rng.uniform(5.0, 55.0)
    expected = data.add_gaussian_noise(gt, sigma, rng)
    np.testing.assert_array_equal(data.degrade(gt, config, np.random.default_rng(3)), expected)
    with pytest.raises(ValueError, match="data.noise_sigma_max"):
        data.DegradationSpec.from_config(_config(tmp_path, noise_sigma=30.0, noise_sigma_max=20.0))


def test_lowlight_is_darker_and_poisson_gaussian():
    gt = np.random.default_rng(0).uniform(0.2, 1.0, (128, 128, 3)).astype(np.float32)
    params = data.LowLightParams()
    lq = data.darken_low_light(gt, np.random.default_rng(1), params)
    assert lq.shape == gt.shape and lq.dtype == np.float32
    assert lq.min() >= 0.0 and lq.max() <= 1.0
    assert lq.mean() < params.scale_max * gt.mean()

    rng = np.random.default_rng(1)  # The model draws gamma, then scale, then the noise.
    gamma = rng.uniform(params.gamma_min, params.gamma_max)
    scale = rng.uniform(params.scale_min, params.scale_max)
    dark = scale * gt**gamma
    residual = data.darken_low_light(gt, np.random.default_rng(1), params, clip=False) - dark
    variance = dark.mean() / params.shot_peak + (params.read_sigma / 255) ** 2
    assert abs(residual.mean()) < 0.1 * np.sqrt(variance)
    assert abs(residual.var() / variance - 1) < 0.05


def test_degrade_dispatch_and_config_errors(tmp_path):
    config = _config(tmp_path)
    gt = np.full((8, 8, 3), 0.5, np.float32)
    np.testing.assert_array_equal(
        data.degrade(gt, config, np.random.default_rng(3)),
        data.add_gaussian_noise(gt, 25.0, np.random.default_rng(3)),
    )
    identity = data.degrade(gt, _config(tmp_path, degradation="none"), np.random.default_rng(0))
    np.testing.assert_array_equal(identity, gt)
    with pytest.raises(ValueError, match="data.degradation"):
        data.degrade(gt, _config(tmp_path, degradation="blur"), np.random.default_rng(0))
    bad = _config(tmp_path)
    bad.lowlight.gamma_min = 4.0
    with pytest.raises(ValueError, match="data.lowlight.gamma_min"):
        data.DegradationSpec.from_config(bad)


def test_streak_kernel_is_a_unit_line_at_the_given_angle():
    vertical = data.streak_kernel(10.0, 0.0)
    assert vertical.max() == pytest.approx(1.0)
    columns = vertical.sum(axis=0)
    centre = vertical.shape[1] // 2
    assert columns[centre] > 0.95 * columns.sum()  # One column ...
    assert 9 <= np.count_nonzero(vertical[:, centre] > 0.5) <= 12  # ... about 10 pixels long.
    horizontal = data.streak_kernel(10.0, 90.0)
    np.testing.assert_allclose(horizontal, vertical.T, atol=1e-6)
    diagonal = data.streak_kernel(10.0, 45.0)
    rows, cols = np.nonzero(diagonal > 0.5)
    np.testing.assert_array_equal(rows - rows.mean(), cols - cols.mean())  # Along the diagonal.


def test_rain_only_brightens_without_veil_and_is_seeded():
    gt = np.random.default_rng(0).uniform(0.0, 0.8, (96, 96, 3)).astype(np.float32)
    no_veil = data.RainParams(veil_max=0.0)
    lq = data.add_rain(gt, np.random.default_rng(1), no_veil)
    assert lq.shape == gt.shape and lq.dtype == np.float32
    assert lq.min() >= 0.0 and lq.max() <= 1.0
    assert np.all(lq >= gt - 1e-6)  # Screen blending never darkens.
    streaked = np.any(lq > gt + 1 / 255, axis=-1).mean()
    assert 0.02 < streaked < 0.9  # Streaks cover part of the image, not all of it.
    np.testing.assert_array_equal(lq, data.add_rain(gt, np.random.default_rng(1), no_veil))
    dense = data.RainParams(density_min=0.05, density_max=0.05, veil_max=0.0)
    denser = np.any(data.add_rain(gt, np.random.default_rng(1), dense) > gt + 1 / 255, axis=-1)
    assert denser.mean() > streaked
    veiled = data.RainParams(veil_max=0.9)
    assert data.add_rain(gt, np.random.default_rng(1), veiled).mean() > lq.mean()


def test_rain_config_and_its_errors(tmp_path):
    config = _config(tmp_path, degradation="rain")
    gt = np.full((32, 32, 3), 0.3, np.float32)
    np.testing.assert_array_equal(
        data.degrade(gt, config, np.random.default_rng(2)),
        data.add_rain(gt, np.random.default_rng(2), data.RainParams()),  # Defaults: no data.rain.
    )
    config.rain = {"length_min": 60.0}
    with pytest.raises(ValueError, match="data.rain.length_min"):
        data.DegradationSpec.from_config(config)


def test_dihedral_gives_eight_distinct_transforms():
    image = _random_image(0, (5, 5, 3))
    outputs = {image_ops.dihedral(image, k).tobytes() for k in range(8)}
    assert len(outputs) == 8


# ---- the training pipeline ------------------------------------------------------------------


def test_train_batches_shapes_ranges_and_determinism(tmp_path):
    _clean_folder(tmp_path / "data" / "train", count=4)
    config = _config(tmp_path, patch_size=32)  # Taller than the 30-pixel images: reflect padding.
    batches = _take(data.make_train_iterator(config, batch_size=3, seed=0), 4)
    for batch in batches:
        assert set(batch) == {"lq", "gt"}
        for value in batch.values():
            assert value.shape == (3, 32, 32, 3) and value.dtype == np.float32
            assert value.min() >= 0.0 and value.max() <= 1.0
        assert np.abs(batch["lq"] - batch["gt"]).mean() > 0.03  # Noisy.
    again = _take(data.make_train_iterator(config, batch_size=3, seed=0), 4)
    other = _take(data.make_train_iterator(config, batch_size=3, seed=1), 4)
    for a, b, c in zip(batches, again, other):
        np.testing.assert_array_equal(a["lq"], b["lq"])
        np.testing.assert_array_equal(a["gt"], b["gt"])
        assert not np.array_equal(a["gt"], c["gt"])


def test_iterator_state_round_trip_through_json(tmp_path):
    _clean_folder(tmp_path / "data" / "train", count=4)
    config = _config(tmp_path, prefetch=2)
    reference = _take(data.make_train_iterator(config, batch_size=2, seed=7), 8)

    interrupted = data.make_train_iterator(config, batch_size=2, seed=7)
    _take(interrupted, 5)  # Past the first epoch of 4 records.
    state = json.loads(json.dumps(interrupted.get_state()))
    resumed = data.make_train_iterator(config, batch_size=2, seed=7)
    resumed.set_state(state)
    for expected, batch in zip(reference[5:], _take(resumed, 3)):
        np.testing.assert_array_equal(batch["lq"], expected["lq"])
        np.testing.assert_array_equal(batch["gt"], expected["gt"])


def test_every_epoch_is_a_new_permutation(tmp_path):
    _id_folder(tmp_path / "data" / "train", 6)
    config = _config(tmp_path, degradation="none", patch_size=8)
    batches = _take(data.make_train_iterator(config, batch_size=1, seed=0), 18)
    ids = [_record_ids(b)[0] for b in batches]
    epochs = [ids[0:6], ids[6:12], ids[12:18]]
    for epoch in epochs:
        assert sorted(epoch) == list(range(6))
    assert epochs[0] != epochs[1] and epochs[1] != epochs[2]


def test_shards_partition_the_records(tmp_path):
    _id_folder(tmp_path / "data" / "train", 7)
    config = _config(tmp_path, degradation="none", patch_size=8, train_range=(1, 7))
    seen = []
    for shard in range(3):
        iterator = data.make_train_iterator(
            config, batch_size=2, seed=0, shard_index=shard, shard_count=3
        )
        seen.append({i for batch in _take(iterator, 3) for i in _record_ids(batch)})
    assert seen == [{1, 4}, {2, 5}, {3, 6}]


def test_shards_draw_different_noise(tmp_path):
    for i in range(2):
        _write_png(tmp_path / "data" / "train" / f"{i}.png", np.full((8, 8, 3), 128, np.uint8))
    config = _config(tmp_path, patch_size=8)
    first = [
        next(data.make_train_iterator(config, batch_size=1, seed=0, shard_index=i, shard_count=2))
        for i in range(2)
    ]
    assert not np.array_equal(first[0]["lq"], first[1]["lq"])


def test_same_crop_and_transform_for_lq_and_gt(tmp_path):
    root = tmp_path / "data" / "train"
    for i in range(3):
        gt = _write_png(root / "norain" / f"{i}.png", _random_image(i, (20, 24, 3)))
        _write_png(root / "rain" / f"{i}.png", 255 - gt)
    config = _config(tmp_path, paired=True, degradation="none", patch_size=12)
    for batch in _take(data.make_train_iterator(config, batch_size=3, seed=0), 4):
        np.testing.assert_allclose(batch["lq"], 1.0 - batch["gt"], atol=1e-6)

    for i in range(3):  # Identical LQ and GT: the pairs stay identical.
        shutil.copy(root / "norain" / f"{i}.png", root / "rain" / f"{i}.png")
    for batch in _take(data.make_train_iterator(config, batch_size=3, seed=0), 4):
        np.testing.assert_array_equal(batch["lq"], batch["gt"])

    with pytest.raises(ValueError, match="data.degradation"):
        data.make_train_iterator(_config(tmp_path, paired=True), batch_size=3, seed=0)


def _paired_and_clean_folders(tmp_path: Path) -> None:
    """Paired records with LQ = 255 - GT under data/train, clean images under data/clean."""
    root = tmp_path / "data" / "train"
    for i in range(3):
        gt = _write_png(root / "norain" / f"{i}.png", _random_image(i, (20, 24, 3)))
        _write_png(root / "rain" / f"{i}.png", 255 - gt)
    _clean_folder(tmp_path / "data" / "clean", count=5)


def _is_inverted_pair(batch: dict[str, np.ndarray]) -> list[bool]:
    return [bool(np.allclose(lq, 1 - gt, atol=1e-6)) for lq, gt in zip(batch["lq"], batch["gt"])]


@pytest.mark.parametrize("share", [0.25, 0.75])
def test_paired_data_mixed_with_degraded_clean_images(tmp_path, share):
    _paired_and_clean_folders(tmp_path)
    config = _config(
        tmp_path, paired=True, clean_train_dir="clean", clean_train_share=share, patch_size=8
    )
    batches = _take(data.make_train_iterator(config, batch_size=4, seed=0), 30)
    paired = np.array([flag for batch in batches for flag in _is_inverted_pair(batch)])
    assert abs((1 - paired.mean()) - share) < 0.12  # The clean share of 120 crops.
    for batch in batches:
        for lq, gt, is_pair in zip(batch["lq"], batch["gt"], _is_inverted_pair(batch)):
            if not is_pair:  # A clean image with AWGN (data.degradation) as LQ.
                assert 0.03 < np.abs(lq - gt).mean() < 0.2

    interrupted = data.make_train_iterator(config, batch_size=4, seed=0)
    _take(interrupted, 7)
    state = json.loads(json.dumps(interrupted.get_state()))
    resumed = data.make_train_iterator(config, batch_size=4, seed=0)
    resumed.set_state(state)
    for expected, batch in zip(batches[7:10], _take(resumed, 3)):
        np.testing.assert_array_equal(batch["lq"], expected["lq"])
        np.testing.assert_array_equal(batch["gt"], expected["gt"])


def test_clean_train_dir_needs_paired_data_and_a_degradation(tmp_path):
    _paired_and_clean_folders(tmp_path)
    with pytest.raises(ValueError, match="data.clean_train_dir"):
        data.make_train_iterator(_config(tmp_path, clean_train_dir="clean"), batch_size=1, seed=0)
    with pytest.raises(ValueError, match="data.clean_train_dir"):
        data.make_train_iterator(
            _config(tmp_path, paired=True, degradation="none", clean_train_dir="clean"),
            batch_size=1,
            seed=0,
        )
    with pytest.raises(ValueError, match="data.clean_train_share"):
        data.make_train_iterator(
            _config(tmp_path, paired=True, clean_train_dir="clean", clean_train_share=1.0),
            batch_size=1,
            seed=0,
        )


def test_train_range_errors_name_the_key(tmp_path):
    _clean_folder(tmp_path / "data" / "train", count=3)
    with pytest.raises(ValueError, match="data.train_range"):
        data.make_train_iterator(_config(tmp_path, train_range=(2, 9)), batch_size=1, seed=0)
    with pytest.raises(ValueError, match="data.source"):
        data.make_train_iterator(_config(tmp_path, source="web"), batch_size=1, seed=0)


# ---- validation images ----------------------------------------------------------------------


def test_load_eval_images_is_deterministic(tmp_path):
    expected = _clean_folder(tmp_path / "data" / "val", count=3)
    config = _config(tmp_path, val_count=2)
    first = data.load_eval_images(config, seed=0)
    second = data.load_eval_images(config, seed=0)
    assert [im["name"] for im in first] == ["img_0.png", "img_1.png"]
    for a, b in zip(first, second):
        assert a["lq"].shape == a["gt"].shape == (30, 40, 3) and a["lq"].dtype == np.float32
        np.testing.assert_array_equal(a["lq"], b["lq"])
        np.testing.assert_array_equal(a["gt"], expected[a["name"]] / np.float32(255))
    assert not np.array_equal(first[0]["lq"], data.load_eval_images(config, seed=1)[0]["lq"])

    cropped = data.load_eval_images(_config(tmp_path, val_crop=16, val_range=(1, 3)), seed=0)
    assert [im["name"] for im in cropped] == ["img_1.png", "img_2.png"]
    centre = expected["img_2.png"][7:23, 12:28]  # (30 - 16) // 2 = 7, (40 - 16) // 2 = 12.
    np.testing.assert_array_equal(cropped[1]["gt"], centre / np.float32(255))


@pytest.mark.skipif(
    not (SHARED_DATA / "derain" / "test" / "Rain100H").is_dir(),
    reason="the shared benchmark data is not beside this checkout",
)
def test_real_rain100h_pairs(tmp_path):
    source_root = SHARED_DATA / "derain" / "test" / "Rain100H"
    names = sorted(p.name for p in (source_root / "norain").iterdir())[:3]
    for sub in ("rain", "norain"):
        (tmp_path / "data" / "derain" / sub).mkdir(parents=True)
        for name in names:
            shutil.copy(source_root / sub / name, tmp_path / "data" / "derain" / sub / name)
    config = _config(tmp_path, val_dir="derain", paired=True, degradation="none")
    images = data.load_eval_images(config, seed=0)
    assert [im["name"] for im in images] == names
    for im in images:
        for key, sub in (("lq", "rain"), ("gt", "norain")):
            pixels = np.asarray(Image.open(source_root / sub / im["name"]).convert("RGB"))
            np.testing.assert_array_equal(im[key], pixels / np.float32(255))
    assert "tensorflow" not in sys.modules
