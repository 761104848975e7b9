"""SLKD (METHODS 3): the quality extractors against the metrics' numpy internals, each loss term,
gradients and frozen teachers, and a smoke run that trains, resumes and restores."""

import hashlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.data
from conftest import init_params, save_run, train_twice_and_check_resume

from configs import restorer_smoke, slkd_smoke
from restorect_jax import checkpoint as checkpoint_lib
from restorect_jax import inference, methods, quality_features
from restorect_jax.metrics import no_reference


def _camera() -> np.ndarray:
    """A natural grey image on the [0, 255] scale, float64: the top-left 128x128 of
    scikit-image's embedded camera (sky, with a few textured blocks)."""
    return skimage.data.camera()[:128, :128].astype(np.float64)


@pytest.mark.parametrize("c", [1.0, 1.0 / 255.0])
def test_mscn_equals_the_metrics_map(c):
    grey = _camera()
    scale = 1.0 if c == 1.0 else 1.0 / 255.0  # PIQE's [0, 255] or BRISQUE's [0, 1] scale
    expected = no_reference.mscn_map(grey * scale, c)
    with jax.enable_x64(True):
        got = quality_features.mscn(jnp.asarray(grey * scale)[None, ..., None], c)
        got = np.asarray(got)[0, ..., 0]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # In float32 (training) the map stays close wherever the local contrast is not tiny.
    got32 = np.asarray(
        quality_features.mscn(jnp.asarray(grey * scale, jnp.float32)[None, ..., None], c)
    )
    assert np.median(np.abs(got32[0, ..., 0] - expected)) < 1e-3


def test_piqe_blocks_and_active_mask_equal_the_metrics():
    normalised = no_reference.mscn_map(_camera(), 1.0)
    _, variance, active = no_reference.piqe_blocks(normalised, 16)
    assert 0 < active.sum() < active.size  # the image has both kinds of block
    got_variance, got_active = quality_features.piqe_block_stats(
        jnp.asarray(normalised, jnp.float32)[None, ..., None], 16, 0.1
    )
    np.testing.assert_array_equal(np.asarray(got_active).reshape(-1), active)
    np.testing.assert_allclose(np.asarray(got_variance).reshape(-1), variance, rtol=1e-5)


def test_paired_products_are_neighbour_products_with_zero_border():
    x = jax.random.normal(jax.random.PRNGKey(0), (1, 9, 8, 2))
    features = quality_features.brisque_features(x, 0.1, pairs=True)
    assert features.shape == (1, 9, 8, 10)
    b = np.asarray(features[..., :2])
    right, upper_right = np.asarray(features[..., 2:4]), np.asarray(features[..., 8:10])
    np.testing.assert_allclose(right[:, :, :-1], b[:, :, :-1] * b[:, :, 1:], rtol=1e-6)
    np.testing.assert_array_equal(right[:, :, -1], 0.0)
    np.testing.assert_allclose(upper_right[:, 1:, :-1], b[:, 1:, :-1] * b[:, :-1, 1:], rtol=1e-6)
    np.testing.assert_array_equal(upper_right[:, 0], 0.0)


def test_piqe_features_are_active_variance_times_edge_strength():
    """By hand for a 2x2-block map: one flat block (inactive) and three random ones."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 16, 16, 1)).astype(np.float32)
    x[:, :8, :8] = 0.5  # flat: MSCN ~ 0 there (the Gaussian reaches a little over the edge)
    got = np.asarray(quality_features.piqe_features(jnp.asarray(x), 0.1, 8, threshold=0.1))
    normalised = no_reference.mscn_map(x[0, ..., 0], 0.1)
    for i in range(2):
        for j in range(2):
            block = normalised[8 * i : 8 * i + 8, 8 * j : 8 * j + 8]
            variance = block.var(ddof=1)
            borders = (block[0], block[-1], block[:, 0], block[:, -1])
            edge = np.mean([np.abs(np.diff(b)).mean() for b in borders])
            expected = variance * edge if variance > 0.1 else 0.0
            np.testing.assert_allclose(got[0, i, j, 0], expected, rtol=2e-4, atol=1e-6)
    assert got[0, 0, 0, 0] == 0.0


# --- the method ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def teacher_runs(tmp_path_factory):
    """Teacher A (a tiny restorer) and Teacher B (the same without the global residual)."""
    root = tmp_path_factory.mktemp("teachers")
    runs = {}
    for name, residual in (("teacher_a", True), ("teacher_b", False)):
        config = restorer_smoke.get_config()
        config.model.global_residual = residual
        save_run(root / name, config, init_params(config))
        runs[name] = str(root / name)
    return runs


def _config(teacher_runs, variant="slkd"):
    config = slkd_smoke.get_config(variant)
    for name in config.frozen:  # only the teachers the variant uses
        config.frozen[name] = teacher_runs[name]
    methods.validate(config)
    return config


def _batch(size=32):
    rng = np.random.default_rng(0)
    gt = rng.uniform(size=(2, size, size, 3)).astype(np.float32)
    lq = np.clip(gt + rng.normal(0, 0.1, gt.shape), 0, 1).astype(np.float32)
    return {"lq": jnp.asarray(lq), "gt": jnp.asarray(gt)}


@pytest.fixture(scope="module")
def slkd(teacher_runs):
    """(config, method, params) of the default SLKD smoke student, initialised once."""
    config = _config(teacher_runs)
    method = methods.get_method("slkd")(config)
    return config, method, jax.jit(method.init_params)(jax.random.PRNGKey(0), _batch())


def test_kl_term_by_hand(slkd):
    _, method, _ = slkd
    teacher = jnp.asarray([0.0, 0.2, 0.4, 0.1]).reshape(1, 2, 2, 1)
    student = jnp.asarray([0.3, 0.3, 0.0, 0.1]).reshape(1, 2, 2, 1)
    p = np.exp(np.asarray(teacher).ravel() / 0.1)
    p /= p.sum()
    q = np.exp(np.asarray(student).ravel() / 0.1)
    q /= q.sum()
    np.testing.assert_allclose(
        method.kl_term(teacher, student), np.sum(p * np.log(p / q)), rtol=1e-5
    )
    assert float(method.kl_term(teacher, teacher)) == pytest.approx(0.0, abs=1e-7)


def test_loss_is_the_weighted_sum_and_feature_terms_match_by_hand(slkd):
    config, method, params = slkd
    batch = _batch()
    frozen = method.frozen_params()
    total, terms = jax.jit(lambda p, f: method.loss(p, f, batch, None))(params, frozen)
    assert set(terms) == {"l1", "kl", "nc", "et"}
    weights = config.slkd
    np.testing.assert_allclose(total, sum(weights[k] * v for k, v in terms.items()), rtol=1e-6)

    # L_NC by hand: the converted student encoder maps and Teacher A's, through numpy MSCN.
    student = method.model.apply(params["student"], batch["lq"])
    converted = method._converters(batch)["teacher_a"].apply(
        params["converters"]["teacher_a"], student.features
    )
    teacher_a = method.teachers["teacher_a"]
    teacher = teacher_a.method.model.apply(frozen["teacher_a"], batch["lq"]).features

    def np_mscn(x):
        x = np.asarray(x, np.float64)
        return np.stack(
            [
                np.stack([no_reference.mscn_map(x[b, ..., k], 0.1) for k in range(x.shape[-1])], -1)
                for b in range(x.shape[0])
            ]
        )

    expected = sum(
        np.mean(np.abs(np_mscn(converted[level]) - np_mscn(teacher[level])))
        for level in ("enc1", "enc2", "enc3")
    )
    np.testing.assert_allclose(terms["nc"], expected, rtol=1e-3)


@pytest.mark.parametrize(
    "variant, expected_terms, teachers",
    [
        ("drl", {"l1", "kl", "nc"}, {"teacher_a"}),
        ("irl", {"l1", "et"}, {"teacher_b"}),
        ("feature_mse", {"l1", "kl", "nc", "et"}, {"teacher_a", "teacher_b"}),
    ],
)
def test_ablation_switches(teacher_runs, variant, expected_terms, teachers):
    """Each variant computes its terms and loads (and needs converters for) only its teachers."""
    config = _config(teacher_runs, variant)
    assert set(config.frozen) == teachers
    method = methods.get_method("slkd")(config)
    batch = _batch()
    params = method.init_params(jax.random.key(0), batch)
    assert set(method.teachers) == set(params["converters"]) == teachers
    _, terms = method.loss(params, method.frozen_params(), batch, None)
    assert set(terms) == expected_terms


def test_gradients_reach_the_student_and_both_converters(slkd):
    _, method, params = slkd
    batch = _batch()
    loss = lambda p, frozen: method.loss(p, frozen, batch, None)[0]
    grads = jax.jit(jax.grad(loss))(params, method.frozen_params())
    for part in (
        grads["student"],
        grads["converters"]["teacher_a"],
        grads["converters"]["teacher_b"],
    ):
        leaves = jax.tree.leaves(part)
        assert all(np.all(np.isfinite(g)) for g in leaves)
        assert any(np.any(g != 0) for g in leaves)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("slkd.tau", 0.0, "> 0"),
        ("slkd.features", "cosine", "one of"),
        ("slkd.encoder_levels", ("enc9",), "subset"),
        ("slkd.piqe_block", 12, "divide"),
        ("frozen.teacher_a", "", "finished run"),
    ],
)
def test_config_errors_name_the_key(teacher_runs, key, value, message):
    config = _config(teacher_runs)
    section, name = key.split(".")
    config[section][name] = value
    with pytest.raises(ValueError, match=rf"config\.{key}.*{message}"):
        methods.validate(config)


def _tree_digest(folder) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.mark.slow  # 60-100 s; losses and gradients have fast tests above, resume in test_train
def test_smoke_run_trains_resumes_keeps_teachers_and_restores(teacher_runs, tmp_path):
    import pathlib

    before = {name: _tree_digest(pathlib.Path(run)) for name, run in teacher_runs.items()}
    config = _config(teacher_runs)
    straight, a = train_twice_and_check_resume(config, tmp_path)
    # The student and converters moved; the teachers' runs are untouched.
    _, first = checkpoint_lib.load_state(straight / "checkpoints", 2)
    assert any(
        np.any(x != y)
        for x, y in zip(jax.tree.leaves(first["params"]), jax.tree.leaves(a["params"]))
    )
    assert {name: _tree_digest(pathlib.Path(run)) for name, run in teacher_runs.items()} == before

    model = inference.load_run(straight)
    image = np.random.default_rng(0).uniform(size=(1, 24, 16, 3)).astype(np.float32)
    out = model.predict(image)
    assert out.shape == image.shape and np.all(np.isfinite(out))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"piqe_block": 4}, "at least twice"),  # 1 x 1 blocks at dec3 (stride 4): var of 1 = NaN
        ({"mscn_c": 0.0}, "> 0"),
    ],
)
def test_settings_that_would_give_nan_are_refused(teacher_runs, overrides, message):
    config = _config(teacher_runs)
    config.slkd.update(overrides)
    with pytest.raises(ValueError, match=message):
        methods.validate(config)
    # Without the IRL quality term the PIQE block size does not matter.
    if "piqe_block" in overrides:
        config.slkd.features = "mse"
        methods.validate(config)
