"""The benchmark datasets and `python -m restorect_jax.evaluate`, on tiny images made here."""

import json
import pathlib

import jax.numpy as jnp
import numpy as np
import pytest
from absl import flags
from conftest import init_params, run_module, save_run
from PIL import Image

from configs import smoke
from restorect_jax import data, evaluate, inference
from restorect_jax.data import benchmarks
from restorect_jax.image_ops import dihedral, pad_to_multiple

REPO = pathlib.Path(__file__).resolve().parents[1]


def _write_images(folder: pathlib.Path, count: int, size: tuple[int, int], mode: str, seed: int):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (size[0], size[1]) if mode == "L" else (size[0], size[1], 3)
    for index in range(count):
        smooth = np.cumsum(rng.normal(0, 8, shape), axis=0) + 128
        Image.fromarray(np.clip(smooth, 0, 255).astype(np.uint8), mode).save(
            folder / f"{index:02d}.png"
        )


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> pathlib.Path:
    """A data root with tiny CBSD68 (colour), Set12 (grey), Rain100H (pairs) and DICM (no GT)."""
    root = tmp_path_factory.mktemp("data")
    _write_images(root / "denoise/test/CBSD68", 3, (40, 56), "RGB", seed=0)
    _write_images(root / "denoise/test/Set12", 2, (48, 48), "L", seed=1)
    _write_images(root / "derain/test/Rain100H/norain", 2, (32, 40), "RGB", seed=2)
    _write_images(root / "derain/test/Rain100H/rain", 2, (32, 40), "RGB", seed=3)
    _write_images(root / "lowlight/test/DICM", 2, (36, 28), "RGB", seed=4)
    return root


def test_awgn_sets_store_fixed_seeded_noise(data_root, tmp_path):
    first = benchmarks.load_benchmark("CBSD68", data_root, tmp_path / "a", sigma=25)
    again = benchmarks.load_benchmark("cbsd68", data_root, tmp_path / "b", sigma=25)
    other = benchmarks.load_benchmark("CBSD68", data_root, tmp_path / "a", sigma=50)
    assert [r["name"] for r in first] == ["00.png", "01.png", "02.png"]
    for a, b, c in zip(first, again, other):
        np.testing.assert_array_equal(a["lq"], b["lq"])  # Same seed, rebuilt elsewhere.
        assert a["lq"].dtype == np.float32 and a["lq"].shape == (40, 56, 3)
        noise = (a["lq"] - a["gt"]) * 255
        assert abs(noise.std() - 25) < 1.0 and abs(noise.mean()) < 1.0
        assert abs((c["lq"] - c["gt"]).std() * 255 - 50) < 2.0
    assert first[0]["lq"].min() < 0 or first[0]["lq"].max() > 1  # Stored unclipped.


def test_grey_paired_and_no_ground_truth_sets(data_root, tmp_path):
    grey = benchmarks.load_benchmark("Set12", data_root, tmp_path, sigma=15)
    assert grey[0]["gt"].shape == (48, 48, 1) and grey[0]["lq"].shape == (48, 48, 1)
    rain = benchmarks.load_benchmark("Rain100H", data_root, tmp_path)
    source = np.asarray(Image.open(data_root / "derain/test/Rain100H/rain/01.png"))
    np.testing.assert_array_equal(np.round(rain[1]["lq"] * 255).astype(np.uint8), source)
    dicm = benchmarks.load_benchmark("DICM", data_root, tmp_path)
    assert set(dicm[0]) == {"name", "lq"}


def test_lowlight_set_stores_seeded_darkening_of_cbsd68(data_root, tmp_path):
    dark = benchmarks.load_benchmark("CBSD68-lowlight", data_root, tmp_path / "a")
    again = benchmarks.load_benchmark("CBSD68-lowlight", data_root, tmp_path / "b")
    for index, (a, b) in enumerate(zip(dark, again)):
        np.testing.assert_array_equal(a["lq"], b["lq"])  # Same seed, rebuilt elsewhere.
        expected = data.darken_low_light(
            a["gt"], np.random.default_rng([benchmarks.NOISE_SEED, index]), data.LowLightParams()
        )
        np.testing.assert_allclose(a["lq"], expected, atol=1e-6)
        assert a["lq"].mean() < 0.5 * a["gt"].mean()


def test_rain100h_heldout_is_pairs_80_to_99_in_file_name_order(data_root, tmp_path):
    root = tmp_path / "data"
    for sub, seed in (("norain", 5), ("rain", 6)):
        folder = root / "derain/test/Rain100H" / sub
        folder.mkdir(parents=True)
        for index, value in enumerate(np.random.default_rng(seed).integers(0, 256, 100)):
            pixels = np.full((8, 8, 3), value, np.uint8)
            Image.fromarray(pixels).save(folder / f"{index + 1}.png")  # 1.png .. 100.png
    names = sorted(f"{i}.png" for i in range(1, 101))
    heldout = benchmarks.load_benchmark("Rain100H-heldout", root, tmp_path / "tfds")
    assert [r["name"] for r in heldout] == names[80:]
    full = benchmarks.load_benchmark("Rain100H", root, tmp_path / "tfds")
    for a, b in zip(heldout, full[80:]):
        np.testing.assert_array_equal(a["lq"], b["lq"])
        np.testing.assert_array_equal(a["gt"], b["gt"])
    with pytest.raises(ValueError, match="Rain100H-heldout takes records 80..99 but .* has 2"):
        benchmarks.load_benchmark("Rain100H-heldout", data_root, tmp_path / "small")


def test_missing_dataset_and_bad_sigma_name_the_problem(data_root, tmp_path):
    with pytest.raises(FileNotFoundError, match="Kodak24.*RESTORECT_DATA_DIR"):
        benchmarks.load_benchmark("Kodak24", data_root, tmp_path, sigma=25)
    with pytest.raises(ValueError, match="give a noise sigma"):
        benchmarks.load_benchmark("CBSD68", data_root, tmp_path)
    with pytest.raises(ValueError, match="unknown dataset 'Urban100'"):
        benchmarks.get_benchmark("Urban100")


@pytest.mark.parametrize("k", range(8))
def test_dihedral_inverse_and_padding(k):
    image = np.arange(5 * 7 * 2, dtype=np.float32).reshape(5, 7, 2)
    np.testing.assert_array_equal(dihedral(dihedral(image, k), k, inverse=True), image)
    # numpy and jax arrays, with or without a batch axis, transform alike
    np.testing.assert_array_equal(
        np.asarray(dihedral(jnp.asarray(image)[None], k))[0], dihedral(image, k)
    )
    padded = pad_to_multiple(image, 4)
    np.testing.assert_array_equal(np.asarray(pad_to_multiple(jnp.asarray(image), 4)), padded)
    assert padded.shape == (8, 8, 2)
    np.testing.assert_array_equal(padded[:5, :7], image)
    np.testing.assert_array_equal(padded[5, :7], image[3])  # Reflected about the last row.


def _run(argv: list[str]) -> pathlib.Path:
    """`evaluate.evaluate` with these flags (parsed afresh)."""
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["evaluate", *argv])
    return evaluate.evaluate(flags.FLAGS.config)


def test_input_baseline_scores_the_noise_level(data_root, tmp_path):
    out = _run(
        [
            "--baseline=input",
            "--datasets=CBSD68,Set12",
            "--sigma=25",
            "--metrics=psnr",
            "--noquantize",
            f"--data_root={data_root}",
            f"--tfds_dir={tmp_path / 'tfds'}",
            f"--output={tmp_path / 'out'}",
        ]
    )
    report = json.loads((out / "results.json").read_text())
    records = benchmarks.load_benchmark("CBSD68", data_root, tmp_path / "tfds", sigma=25)
    expected = np.mean([-10 * np.log10(np.mean((r["lq"] - r["gt"]) ** 2)) for r in records])
    cbsd = report["results"][0]
    assert cbsd["label"] == "CBSD68 σ=25"
    np.testing.assert_allclose(cbsd["means"]["psnr"], expected, atol=1e-3)
    assert abs(cbsd["means"]["psnr"] - 20 * np.log10(255 / 25)) < 0.3  # Tiny images: noisy mean.
    rows = (out / "CBSD68_sigma25.csv").read_text().splitlines()
    assert rows[0].startswith("image,restore_seconds,psnr") and len(rows) == 4
    assert (out / "CBSD68_sigma25_grid.png").is_file() and (
        out / "Set12_sigma25_grid.png"
    ).is_file()
    assert "PSNR" in (out / "results.md").read_text()


def test_grid_images_zero_writes_no_grid(data_root, tmp_path):
    out = _run(
        [
            "--baseline=input",
            "--datasets=CBSD68",
            "--metrics=psnr",
            "--grid_images=0",
            f"--data_root={data_root}",
            f"--tfds_dir={tmp_path / 'tfds'}",
            f"--output={tmp_path / 'out'}",
        ]
    )
    assert (out / "CBSD68_sigma25.csv").is_file() and (out / "results.json").is_file()
    assert not list(out.glob("*_grid.png"))


def test_requests_that_cannot_be_met_are_refused(data_root, tmp_path):
    common = [f"--data_root={data_root}", f"--tfds_dir={tmp_path}", f"--output={tmp_path}"]
    with pytest.raises(evaluate.EvaluationError, match="dataset DICM: psnr needs ground truth"):
        _run(["--baseline=input", "--datasets=DICM", "--metrics=psnr", *common])
    with pytest.raises(evaluate.EvaluationError, match="Kodak24: folder .* is missing"):
        _run(["--baseline=input", "--datasets=Kodak24", *common])
    with pytest.raises(evaluate.EvaluationError, match="workdir .* does not exist"):
        _run([f"--workdir={tmp_path / 'nothing'}", *common])


def test_flow_student_writes_tables_grids_and_steps_plot(student_run, data_root, tmp_path):
    out = _run(
        [
            f"--workdir={student_run}",
            "--datasets=CBSD68",
            "--metrics=psnr,ssim",
            "--steps_sweep=1,2",
            "--max_images=2",
            f"--data_root={data_root}",
            f"--tfds_dir={tmp_path}",
            f"--output={tmp_path / 'out'}",
        ]
    )
    report = json.loads((out / "results.json").read_text())
    assert report["model"] == "student@3"
    assert set(report["results"][0]["psnr_by_steps"]) == {"1", "2"}
    assert np.isfinite(report["results"][0]["means"]["psnr"])
    assert (out / "CBSD68_sigma25_steps.png").is_file()


def test_checkpoint_of_another_config_is_refused(student_run, data_root, tmp_path):
    config_file = tmp_path / "wider.py"
    config_file.write_text(
        "from configs import restorect_smoke\n\n"
        "def get_config():\n"
        "    config = restorect_smoke.get_config()\n"
        "    config.model.width = 8\n"
        "    return config\n"
    )
    result = run_module(
        "restorect_jax.evaluate",
        [
            f"--checkpoint={student_run / 'checkpoints' / '3'}",
            f"--config={config_file}",
            "--datasets=CBSD68",
            f"--data_root={data_root}",
            f"--tfds_dir={tmp_path}",
        ],
    )
    assert result.returncode == 2
    assert "with the given config: parameter" in result.stderr
    assert "Traceback" not in result.stderr


def test_privileged_teacher_is_refused_on_sets_without_ground_truth(data_root, tmp_path):
    config = smoke.get_config()
    save_run(tmp_path / "teacher", config, init_params(config))
    with pytest.raises(evaluate.EvaluationError, match="reads the ground truth.*DICM has none"):
        _run(
            [
                f"--workdir={tmp_path / 'teacher'}",
                "--datasets=DICM",
                f"--data_root={data_root}",
                f"--tfds_dir={tmp_path}",
            ]
        )


SHARED_DATA = REPO.parent / "shared" / "data"
needs_shared_data = pytest.mark.skipif(
    not (SHARED_DATA / "derain" / "test" / "Rain100H").is_dir(),
    reason="the shared benchmark data is not beside this checkout",
)


@needs_shared_data
def test_rain100h_input_row_matches_the_papers_13_55_db_on_y(tmp_path):
    """Deraining tables print 13.55 dB (Y) for the Rain100H inputs; these 480x320 crops of the
    481x321 originals are expected within 0.1 dB of it."""
    out = _run(
        [
            "--baseline=input",
            "--datasets=Rain100H",
            "--metrics=psnr,ssim",
            f"--data_root={SHARED_DATA}",
            f"--tfds_dir={tmp_path}",
            f"--output={tmp_path / 'out'}",
        ]
    )
    result = json.loads((out / "results.json").read_text())["results"][0]
    assert result["images"] == 100 and result["protocol"].startswith("PSNR/SSIM on Y")
    assert abs(result["means"]["psnr"] - 13.55) < 0.1


@needs_shared_data
def test_no_reference_metrics_read_their_models_from_data_root(tmp_path, monkeypatch):
    monkeypatch.delenv("RESTORECT_DATA_DIR", raising=False)
    out = _run(
        [
            "--baseline=input",
            "--datasets=DICM",
            "--max_images=2",
            f"--data_root={SHARED_DATA}",
            f"--tfds_dir={tmp_path}",
            f"--output={tmp_path / 'out'}",
        ]
    )
    means = json.loads((out / "results.json").read_text())["results"][0]["means"]
    assert set(means) == {"niqe", "brisque", "piqe"}
    assert all(np.isfinite(value) for value in means.values())


def test_shipped_model_and_the_cbm3d_rows_beside_it(data_root, tmp_path):
    """`--task` scores the shipped model directly (no run folder); `--baseline bm3d` adds the
    classical reference to the same report, and it beats the noisy input."""
    common = [f"--data_root={data_root}", f"--tfds_dir={tmp_path}", "--datasets=CBSD68"]
    out = _run(
        [
            "--task=denoise",
            "--baseline=bm3d",
            "--metrics=psnr",
            f"--output={tmp_path / 'out'}",
            *common,
        ]
    )
    report = json.loads((out / "results.json").read_text())
    assert report["sampler"] is None  # the shipped denoiser is no flow model
    by_model = {r["model"]: r["means"]["psnr"] for r in report["results"]}
    shipped = inference.load_bundle(inference.WEIGHTS_DIR / "denoise").name
    assert set(by_model) == {shipped, "CBM3D"}
    assert (out / "baseline_bm3d" / "CBSD68_sigma25.csv").is_file()
    inputs = _run(["--baseline=input", "--metrics=psnr", f"--output={tmp_path / 'in'}", *common])
    input_psnr = json.loads((inputs / "results.json").read_text())["results"][0]["means"]["psnr"]
    assert by_model["CBM3D"] > input_psnr + 3.0
    # A bundle folder passed as --workdir is read as a bundle, with the same scores.
    again = _run(
        [
            f"--workdir={inference.WEIGHTS_DIR / 'denoise'}",
            "--metrics=psnr",
            f"--output={tmp_path / 'again'}",
            *common,
        ]
    )
    rerun = json.loads((again / "results.json").read_text())["results"][0]["means"]["psnr"]
    np.testing.assert_allclose(rerun, by_model[shipped], atol=1e-9)


@pytest.mark.parametrize(
    "flag, message", [("--sampler=euler:0", "--sampler"), ("--steps=-1", "--steps -1")]
)
def test_bad_sampler_flags_are_one_line_errors(data_root, tmp_path, flag, message):
    result = run_module(
        "restorect_jax.evaluate",
        ["--task=denoise", flag, "--datasets=CBSD68", f"--data_root={data_root}"],
    )
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--max_images=-1", "--max_images -1: must be >= 0"),
        ("--sigma=-5", "--sigma -5: must be integers in [0, 255]"),
        ("--sigma=25,abc", "--sigma 25,abc: must be integers"),
        ("--crop_border=-5", "--crop_border -5: must be >= 0"),
        ("--crop_border=10000", "--crop_border 10000: leaves nothing of CBSD68's 40x56 image"),
    ],
)
def test_bad_numeric_flags_are_refused_before_any_image(data_root, tmp_path, flag, message):
    with pytest.raises(evaluate.EvaluationError) as error:
        _run(
            [
                "--baseline=input",
                "--datasets=CBSD68",
                flag,
                f"--data_root={data_root}",
                f"--tfds_dir={tmp_path / 'tfds'}",
                f"--output={tmp_path / 'out'}",
            ]
        )
    assert str(error.value).startswith(message) and "\n" not in str(error.value)
    assert not list((tmp_path / "out").glob("*.csv"))


def test_outputs_of_an_earlier_evaluation_are_kept_unless_overwrite(data_root, tmp_path):
    args = [
        "--baseline=input",
        "--datasets=CBSD68",
        "--metrics=psnr",
        f"--data_root={data_root}",
        f"--tfds_dir={tmp_path / 'tfds'}",
    ]
    out = tmp_path / "out"
    _run([*args, f"--output={out}"])
    before = (out / "results.json").read_text()
    with pytest.raises(evaluate.EvaluationError, match="--output .*results.json.*--overwrite"):
        _run([*args, "--sigma=15", f"--output={out}"])
    assert (out / "results.json").read_text() == before
    _run([*args, "--sigma=15", f"--output={out}", "--overwrite"])
    assert json.loads((out / "results.json").read_text())["results"][0]["sigma"] == 15
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(evaluate.EvaluationError, match="--output .*file.txt: is a file"):
        _run([*args, f"--output={blocker}"])


def test_sigterm_part_way_is_reported_like_ctrl_c(data_root, tmp_path, monkeypatch, capsys):
    from restorect_jax import signals

    finished = evaluate._evaluate_plan

    def second_set_terminated(restorer, plan, *args):
        if plan[1] == 50:
            raise signals.Terminated
        return finished(restorer, plan, *args)

    monkeypatch.setattr(evaluate, "_evaluate_plan", second_set_terminated)
    flags.FLAGS.unparse_flags()
    flags.FLAGS(
        [
            "evaluate",
            "--baseline=input",
            "--datasets=CBSD68",
            "--sigma=25,50",
            "--metrics=psnr",
            f"--data_root={data_root}",
            f"--tfds_dir={tmp_path / 'tfds'}",
            f"--output={tmp_path / 'out'}",
        ]
    )
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["evaluate"])
    assert exit_info.value.code == 143
    assert "interrupted: scored 1 of 2 sets and noise levels" in capsys.readouterr().err
    assert (tmp_path / "out" / "CBSD68_sigma25.csv").is_file()
    assert not (tmp_path / "out" / "results.json").exists()
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".partial")]
