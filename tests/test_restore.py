"""Photo I/O, tiled restoration and `python -m restorect_jax.restore`."""

import importlib.resources
import json
import pathlib
import re
import signal
import subprocess
import sys
import time

import numpy as np
import png
import pytest
import tifffile
from conftest import run_module
from PIL import Image

from restorect_jax import (
    data,
    exported,
    image_io,
    inference,
    noise_level,
    safe_files,
    tiling,
    writers,
)

REPO = pathlib.Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(0)


def _smooth(shape, dtype=np.uint8) -> np.ndarray:
    peak = np.iinfo(dtype).max
    base = np.cumsum(RNG.normal(0, peak / 40, shape), axis=0) + peak / 2
    return np.clip(base, 0, peak).astype(dtype)


# --- image I/O -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "mode", "shape"),
    [
        (".png", "RGB", (20, 30, 3)),
        (".png", "L", (20, 30)),
        (".png", "RGBA", (20, 30, 4)),
        (".png", "LA", (20, 30, 2)),
        (".bmp", "RGB", (20, 30, 3)),
        (".tif", "RGB", (20, 30, 3)),
        (".webp", "RGB", (20, 30, 3)),
    ],
)
def test_8_bit_images_round_trip_with_alpha_kept(tmp_path, suffix, mode, shape):
    pixels = _smooth(shape)
    source = tmp_path / f"in{suffix}"
    options = {"lossless": True} if suffix == ".webp" else {}
    Image.fromarray(pixels, mode).save(source, **options)
    image = image_io.read_image(source)
    channels = 1 if mode in ("L", "LA") else 3
    assert image.bit_depth == 8 and image.pixels.shape == (20, 30, channels)
    assert (image.alpha is not None) == mode.endswith("A")
    image_io.write_image(tmp_path / f"out{suffix}", image.pixels, image)
    written = np.asarray(Image.open(tmp_path / f"out{suffix}"))
    np.testing.assert_array_equal(written, np.asarray(Image.open(source)))


def test_16_bit_png_and_tiff_stay_16_bit_with_alpha(tmp_path):
    rgba = _smooth((18, 22, 4), np.uint16)
    with open(tmp_path / "in.png", "wb") as file:
        png.Writer(22, 18, greyscale=False, alpha=True, bitdepth=16).write(
            file, rgba.reshape(18, -1)
        )
    tifffile.imwrite(tmp_path / "in.tif", rgba[..., :3], photometric="rgb")
    grey = _smooth((18, 22), np.uint16)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    for name, expected in [("in.png", rgba), ("in.tif", rgba[..., :3]), ("grey.png", grey)]:
        image = image_io.read_image(tmp_path / name)
        assert image.bit_depth == 16
        image_io.write_image(tmp_path / f"out_{name}", image.pixels, image)
        again = image_io.read_image(tmp_path / f"out_{name}")
        stored = np.round(again.pixels * 65535).astype(np.uint16)
        if again.alpha is not None:
            stored = np.concatenate([stored, again.alpha[..., None]], -1)
        np.testing.assert_array_equal(stored.reshape(expected.shape), expected)
        assert again.bit_depth == 16


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_rotated_input_comes_out_upright(tmp_path, orientation):
    upright = _smooth((24, 40, 3))
    stored = {3: np.rot90(upright, 2), 6: np.rot90(upright, 1), 8: np.rot90(upright, -1)}
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(np.ascontiguousarray(stored[orientation])).save(
        tmp_path / "in.png", exif=exif.tobytes()
    )
    image = image_io.read_image(tmp_path / "in.png")
    np.testing.assert_array_equal(np.round(image.pixels * 255).astype(np.uint8), upright)
    image_io.write_image(tmp_path / "out.png", image.pixels, image)
    with Image.open(tmp_path / "out.png") as written:
        assert written.getexif().get(0x0112, 1) == 1 and written.size == (40, 24)


def test_bad_files_raise_errors_naming_them(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "noise.jpg").write_bytes(RNG.bytes(500))
    Image.fromarray(_smooth((64, 64, 3))).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    for name in ("empty.png", "noise.jpg", "truncated.png"):
        with pytest.raises(image_io.ImageReadError, match=name):
            image_io.read_image(tmp_path / name)


# --- tiling ----------------------------------------------------------------------------------


def test_ramps_of_neighbouring_tiles_sum_to_one():
    left = tiling.ramp(64, 16, taper_start=False, taper_end=True)
    right = tiling.ramp(64, 16, taper_start=True, taper_end=False)
    np.testing.assert_allclose(left[-16:] + right[:16], 1.0, atol=1e-6)
    assert tiling.tile_starts(100, 64, 16) == [0, 36]
    assert tiling.tile_starts(64, 64, 16) == [0]


def test_tiling_reproduces_a_pointwise_model_exactly():
    image = RNG.random((70, 90, 3)).astype(np.float32)
    out = tiling.restore_tiled(image, lambda x: x * 0.5 + 0.1, tile=32, overlap=8)
    np.testing.assert_allclose(out, image * 0.5 + 0.1, atol=1e-6)


@pytest.fixture(scope="module")
def student(student_run) -> inference.LoadedModel:
    return inference.load_run(student_run)


def test_tiled_output_agrees_with_untiled_and_blending_hides_the_seams():
    """A network sees each tile's borders (zero padding; attention and norms see whole tiles),
    so tiles cannot be bit-equal to one pass. Require 40 dB between the two, and the overlap's
    ramps to beat hard cuts (overlap 0) clearly: 10 dB closer to the one pass and a quarter of
    the worst pixel error. The bundled denoiser on a noisy image (a random-init model is no
    test: its output is noise), with one noise level for the whole image, as `restore` reads
    it."""
    model = inference.load_bundle(inference.WEIGHTS_DIR / "denoise")
    clean = _smooth((128, 160, 3)) / 255.0
    noisy = np.clip(clean + RNG.normal(0, 25 / 255, clean.shape), 0, 1).astype(np.float32)
    level = float(noise_level.estimate_sigma(noisy[None])[0])  # of the whole image

    def predict(batch: np.ndarray) -> np.ndarray:
        return model.predict(batch, noise_level=level)

    whole = tiling.restore_pixels(noisy, predict, model.stride, tile=512, overlap=16)
    blended = tiling.restore_pixels(noisy, predict, model.stride, tile=64, overlap=16)
    cut = tiling.restore_pixels(noisy, predict, model.stride, tile=64, overlap=0)

    def psnr(image: np.ndarray) -> float:
        return float(-10 * np.log10(np.mean((whole - image) ** 2)))

    assert psnr(blended) >= 40.0
    assert psnr(blended) >= psnr(cut) + 10.0
    assert np.abs(whole - blended).max() <= np.abs(whole - cut).max() / 4


_TASK_DEGRADATIONS = {
    "denoise": data.DegradationSpec("awgn", noise_sigma=25.0),
    "derain": data.DegradationSpec("rain"),
    "lowlight": data.DegradationSpec("lowlight"),
}


def _psnr(image: np.ndarray, reference: np.ndarray) -> float:
    return float(-10 * np.log10(np.mean((np.clip(image, 0, 1) - reference) ** 2)))


@pytest.mark.parametrize("task", inference.TASKS)
def test_each_bundled_student_restores_its_degradation(task):
    """Every task has a bundle, trained for that task, that improves a photo it never saw
    (scikit-image's coffee, not in any training set) degraded by its task's model."""
    model = inference.load_bundle(inference.WEIGHTS_DIR / task)
    assert model.task == task
    photo = np.asarray(Image.open(importlib.resources.files("skimage.data") / "coffee.png"))
    clean = photo[100:228, 200:328].astype(np.float32) / 255
    degraded = data.degrade(clean, _TASK_DEGRADATIONS[task], np.random.default_rng(0))
    restored = model.predict(degraded[None])[0]
    assert _psnr(restored, clean) > _psnr(degraded, clean) + 3.0


def test_bundle_round_trip_predicts_the_same(student, tmp_path):
    inference.save_bundle(student, tmp_path / "bundle")
    bundled = inference.load_bundle(tmp_path / "bundle")
    batch = RNG.random((1, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(bundled.predict(batch), student.predict(batch))


# --- command line ----------------------------------------------------------------------------


def _restore_cli(args: list[str]):
    return run_module("restorect_jax.restore", args)


def test_folder_with_a_corrupt_file_restores_the_others(student_run, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray(_smooth((40, 50, 3))).save(inputs / "a.png")
    Image.fromarray(_smooth((33, 47))).save(inputs / "b.jpg")
    (inputs / "c.png").write_bytes(b"not an image")
    result = _restore_cli([f"--workdir={student_run}", str(inputs), f"--output={tmp_path / 'out'}"])
    assert result.returncode == 1
    assert "c.png" in result.stderr and "restored 2 of 3" in result.stdout
    assert "Traceback" not in result.stderr
    assert np.asarray(Image.open(tmp_path / "out" / "a.png")).shape == (40, 50, 3)
    assert np.asarray(Image.open(tmp_path / "out" / "b.jpg")).shape == (33, 47)

    before = (inputs / "a.png").read_bytes()
    again = _restore_cli([f"--workdir={student_run}", str(inputs / "a.png"), f"--output={inputs}"])
    assert again.returncode == 0 and f"-> {inputs / 'a_2.png'} (the name was taken)" in again.stdout
    assert (inputs / "a.png").read_bytes() == before  # its own input is kept


@pytest.mark.parametrize(
    "task, level",
    [("denoise", 25 / 255), ("derain", None)],
    ids=["noise-map denoiser", "flow student"],
)
def test_exported_model_matches_the_in_process_model(tmp_path, task, level):
    result = run_module(
        "restorect_jax.export", [f"--task={task}", f"--output={tmp_path / 'model.stablehlo'}"]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    run_exported = exported.load_exported(tmp_path / "model.stablehlo")
    model = inference.load_bundle(inference.WEIGHTS_DIR / task)

    def predict(batch: np.ndarray) -> np.ndarray:
        return model.predict(batch, noise_level=level)

    for shape in [(1, 64, 64, 3), (2, 37, 53, 3)]:  # The second needs padding to the stride.
        images = RNG.random(shape).astype(np.float32)
        # What `restore` computes: the library's padding, the model, the crop.
        expected = np.stack(
            [tiling.restore_pixels(image, predict, model.stride, 512, 32) for image in images]
        )
        np.testing.assert_allclose(run_exported(images, noise_level=level), expected, atol=1e-5)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--steps=0"], "--steps 0: must be an integer in [1, 1000]"),
        (["--steps=-1"], "--steps -1: must be an integer in [1, 1000]"),
        (["--sampler=euler:99999999999"], "--sampler: sampler 'euler:99999999999': sampler steps"),
        (["--sampler=euler:1,0.5,0.7,0"], "strictly decreasing"),
    ],
)
def test_bad_sampler_flags_are_refused_before_any_image(tmp_path, flags, message):
    photo = tmp_path / "photo.png"
    Image.fromarray(_smooth((16, 16, 3))).save(photo)
    result = _restore_cli(["--task=denoise", *flags, str(photo), f"--output={tmp_path / 'out'}"])
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


# --- bad input: nothing lost, one line per problem ---------------------------------------------


def _photo(path: pathlib.Path, shape=(24, 32, 3)) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_smooth(shape)).save(path)
    return path


def test_outputs_never_replace_an_input_or_a_file_and_never_collide(tmp_path):
    a, b = _photo(tmp_path / "a" / "x.png"), _photo(tmp_path / "b" / "x.png")
    c = _photo(tmp_path / "c" / "x.png")
    (tmp_path / "b" / "x_3.png").write_text("someone else's file")
    jobs = image_io.plan_outputs([a, b, c], tmp_path / "b", overwrite=False)
    # b/x.png is an input and b/x_3.png an unrelated file: both are kept.
    assert [j.target.name for j in jobs] == ["x_2.png", "x_4.png", "x_5.png"]
    with_overwrite = image_io.plan_outputs([a, b], tmp_path / "b", overwrite=True)
    assert [j.target for j in with_overwrite] == [tmp_path / "b" / "x_2.png", b]
    out = image_io.plan_outputs([a, b, c], tmp_path / "out", overwrite=False)
    assert [j.target.name for j in out] == ["x.png", "x_2.png", "x_3.png"]


def test_a_name_taken_at_write_time_moves_on_unless_overwriting(tmp_path):
    image = image_io.read_image(_photo(tmp_path / "p.png"))
    taken = tmp_path / "out.png"
    taken.write_text("someone else's file")
    written = image_io.write_image(taken, image.pixels, image)
    assert written == tmp_path / "out_2.png" and taken.read_text() == "someone else's file"
    assert image_io.write_image(taken, image.pixels, image, overwrite=True) == taken
    assert image_io.read_image(taken).pixels.shape == image.pixels.shape
    with pytest.raises(safe_files.FileTakenError, match="out.png exists"):
        image_io.write_image(taken, image.pixels, image, on_taken="error")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.png", "out_2.png", "p.png"]


def test_cli_keeps_every_input_and_names_renamed_outputs(tmp_path):
    a, b = _photo(tmp_path / "a" / "x.png"), _photo(tmp_path / "b" / "x.png")
    before = b.read_bytes()
    result = _restore_cli(["--task=denoise", str(a), str(b), f"--output={tmp_path / 'b'}"])
    assert result.returncode == 0, result.stderr
    assert b.read_bytes() == before  # the input is untouched
    assert f"{a} -> {tmp_path / 'b' / 'x_2.png'}" in result.stdout
    assert f"{b} -> {tmp_path / 'b' / 'x_3.png'}" in result.stdout
    assert "restored 2 of 2" in result.stdout and (tmp_path / "b" / "x_3.png").is_file()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--overlap=-8"], "--overlap -8: must be >= 0"),
        (["--tile=21"], "--tile 21: must be a positive multiple of 2"),  # the denoiser's stride
        (["--tile=64", "--overlap=32"], "more than twice --overlap 32"),
    ],
)
def test_bad_tiling_is_refused(tmp_path, flags, message):
    photo = _photo(tmp_path / "p.png")
    result = _restore_cli(["--task=denoise", *flags, str(photo), f"--output={tmp_path / 'o'}"])
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_output_that_is_a_file_or_read_only_is_refused_before_any_work(tmp_path, monkeypatch):
    photo = _photo(tmp_path / "p.png")
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    result = _restore_cli(["--task=denoise", str(photo), f"--output={blocker}"])
    assert result.returncode == 2 and "is a file, not a folder" in result.stderr

    # A folder that refuses writes (as a read-only one does for any user but root, who runs CI
    # here): the check names the flag and the reason before anything is restored.
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(writers.tempfile, "TemporaryFile", refuse)
    with pytest.raises(writers.FolderError, match="--output .*locked: cannot write there"):
        writers.ensure_writable_folder(tmp_path / "locked", "--output")


def test_multipage_tiff_is_an_error_and_planar_16_bit_tiff_is_read(tmp_path):
    pages = _smooth((2, 16, 16, 3))
    tifffile.imwrite(tmp_path / "pages.tif", pages, photometric="rgb")
    with pytest.raises(image_io.ImageReadError, match="2 pages"):
        image_io.read_image(tmp_path / "pages.tif")
    rgb16 = _smooth((3, 20, 24), np.uint16)  # channels first: planar-separate
    tifffile.imwrite(tmp_path / "planar.tif", rgb16, photometric="rgb", planarconfig="separate")
    image = image_io.read_image(tmp_path / "planar.tif")
    assert image.pixels.shape == (20, 24, 3) and image.bit_depth == 16
    np.testing.assert_array_equal(
        np.round(image.pixels * 65535).astype(np.uint16), np.moveaxis(rgb16, 0, -1)
    )


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_png_transparency_key_is_kept_as_alpha(tmp_path, mode):
    pixels = _smooth((12, 14, 3) if mode == "RGB" else (12, 14))
    key = tuple(int(v) for v in pixels[0, 0]) if mode == "RGB" else int(pixels[0, 0])
    Image.fromarray(pixels, mode).save(tmp_path / "keyed.png", transparency=key)
    image = image_io.read_image(tmp_path / "keyed.png")
    assert image.alpha is not None and image.alpha[0, 0] == 0 and image.alpha.max() == 255
    image_io.write_image(tmp_path / "out.png", image.pixels, image)
    written = np.asarray(Image.open(tmp_path / "out.png"))
    np.testing.assert_array_equal(written[..., -1], image.alpha)


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    image = image_io.read_image(_photo(tmp_path / "p.png"))

    def interrupted(path, *args, **kwargs):
        pathlib.Path(path).write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(image_io, "_write8", interrupted)
    with pytest.raises(KeyboardInterrupt):
        image_io.write_image(tmp_path / "out.png", image.pixels, image)
    assert [path.name for path in tmp_path.iterdir()] == ["p.png"]


@pytest.mark.parametrize(
    "damage", [b"", b"not a model", None], ids=["empty", "garbage", "truncated"]
)
def test_damaged_exported_model_names_the_file(tmp_path, damage):
    model = tmp_path / "model.stablehlo"
    if damage is None:
        result = run_module("restorect_jax.export", ["--task=denoise", f"--output={model}"])
        assert result.returncode == 0, result.stderr[-1000:]
        model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    else:
        model.write_bytes(damage)
        exported.metadata_path(model).write_text('{"stride": 8}')
    with pytest.raises(exported.ExportedModelError, match=re.escape(str(model))):
        exported.load_exported(model)
    exported.metadata_path(model).write_text("{broken")
    with pytest.raises(exported.ExportedModelError, match=re.escape(str(model) + ".json")):
        exported.load_exported(model)


@pytest.mark.parametrize("stop, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_sigterm_stops_with_one_line_and_no_partial_file(tmp_path, stop, code):
    inputs = tmp_path / "in"
    for index in range(8):
        _photo(inputs / f"{index}.png", (384, 512, 3))
    out = tmp_path / "out"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "restorect_jax.restore",
            "--task=denoise",
            str(inputs),
            f"--output={out}",
        ],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    while process.poll() is None and not (out.is_dir() and any(out.glob("*.png"))):
        time.sleep(0.05)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr[-2000:]
    assert "interrupted: restored" in stderr and "Traceback" not in stderr
    restored = sorted(path.name for path in out.iterdir())
    assert not [name for name in restored if name.endswith(".partial")]
    assert 1 <= len(restored) < 8  # stopped part way, every written file complete
    for name in restored:
        assert Image.open(out / name).size == (512, 384)


def test_cli_keeps_compiled_programs_in_the_bundles_cache(tmp_path):
    photo = _photo(tmp_path / "p.png")
    env = {"PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"}
    env["HOME"] = str(tmp_path)  # the bundle's cache is ~/.cache/restorect_jax/jax_cache
    result = run_module(
        "restorect_jax.restore",
        ["--task=denoise", str(photo), f"--output={tmp_path / 'o'}"],
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert any((tmp_path / ".cache" / "restorect_jax" / "jax_cache").iterdir())


def test_a_legal_long_input_name_is_written(tmp_path):
    image = image_io.read_image(_photo(tmp_path / "p.png"))
    target = tmp_path / ("n" * 250 + ".png")  # 254 bytes: legal; `<name>.partial` would not be
    assert image_io.write_image(target, image.pixels, image) == target
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(["p.png", target.name])


def test_two_runs_into_one_folder_lose_nothing(tmp_path):
    inputs = tmp_path / "in"
    for index in range(3):
        _photo(inputs / f"{index}.png", (48, 64, 3))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "restorect_jax.restore", "--task=denoise", str(inputs)]
    env = {"PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"}
    runs = [
        subprocess.Popen(
            [*command, f"--output={out}"], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    reports = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], reports
    assert all("restored 3 of 3" in report for report in reports)
    written = sorted(path.name for path in out.iterdir())
    assert written == sorted(f"{i}{tag}.png" for i in range(3) for tag in ("", "_2")), written
    for name in written:
        assert image_io.read_image(out / name).pixels.shape == (48, 64, 3)


def test_export_keeps_an_existing_output_unless_overwrite(tmp_path):
    model = tmp_path / "model.stablehlo"
    model.write_bytes(b"someone's file")
    result = run_module("restorect_jax.export", ["--task=denoise", f"--output={model}"])
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"--output {model}: {model} exists (pass --overwrite" in result.stderr
    assert model.read_bytes() == b"someone's file"
    model.unlink()
    exported.metadata_path(model).write_text("{}")
    result = run_module("restorect_jax.export", ["--task=denoise", f"--output={model}"])
    assert result.returncode == 2 and f"{model}.json exists" in result.stderr
    assert not model.exists()


def test_restore_imports_no_training_machinery():
    code = (
        "import sys, restorect_jax.restore\n"
        "heavy = {'tensorflow_datasets', 'grain', 'orbax', 'tensorboardX', 'matplotlib', 'cv2'}\n"
        "print(sorted(heavy & {name.split('.')[0] for name in sys.modules}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout


def test_a_bundle_reads_its_parameter_shapes_from_the_cache_once_traced(tmp_path, monkeypatch):
    monkeypatch.setattr(inference, "PARAM_SHAPES_CACHE", str(tmp_path / "shapes"))
    first = inference.load_model(task="denoise")
    assert len(list((tmp_path / "shapes").iterdir())) == 1

    def traced_again(method):
        raise AssertionError("the shapes were traced again")

    monkeypatch.setattr(inference, "_traced_shapes", traced_again)
    again = inference.load_model(task="denoise")
    assert again.name == first.name
    cached = next((tmp_path / "shapes").iterdir())
    shapes = json.loads(cached.read_text())
    key = next(iter(shapes))
    cached.write_text(json.dumps({**shapes, key: [1, 2, 3]}))  # the config now builds another shape
    with pytest.raises(inference.ModelLoadError, match=re.escape(f"parameter {key} is")):
        inference.load_model(task="denoise")
