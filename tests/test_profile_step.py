"""tools/profile_step.py: op classes from HLO metadata and per-op times from a jax.profiler trace."""

import pathlib
import sys

import jax
import jax.numpy as jnp
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tools"))

import profile_step


@pytest.mark.parametrize(
    ("op_name", "expected"),
    [
        ("jit(train_step)/transpose(jvp(M))/restorer/dec1_0/ffn/dwconv/jit(_pad)", "depthwise 3x3"),
        ("jit(train_step)/jvp(M)/restorer/dec1_0/ffn/in_proj/dot_general", "1x1 (Pointwise)"),
        ("jit(train_step)/jvp(M)/restorer/dec1_0/attn/q_norm/reduce_sum", "layer norm"),
        ("jit(train_step)/jvp(M)/restorer/dec1_0/attn/softmax", "attention (softmax, products)"),
        ("jit(train_step)/jvp(M)/restorer/dec1_0/ffn/erfc", "GELU gate"),
        ("jit(train_step)/jvp(M)/restorer/intro/conv_general_dilated", "dense 3x3 conv"),
        ("jit(train_step)/optax/add", "optimizer"),
        ("jit(train_step)/mean", "other"),
    ],
)
def test_op_class_reads_the_module_path(op_name, expected):
    assert profile_step.op_class(op_name) == expected


def test_traced_times_cover_the_compiled_ops_and_their_metadata():
    def model(x):
        with jax.named_scope("dwconv"):
            y = jnp.sin(x) * 2.0
        return jnp.sum(y @ y)

    x = jnp.ones((128, 128))
    compiled = jax.jit(model).lower(x).compile()
    seconds = profile_step.traced_op_seconds(lambda: compiled(x), steps=2)
    names = profile_step.op_names(compiled)
    assert seconds and all(value >= 0 for value in seconds.values())
    assert set(seconds) <= set(names) | {op for op in seconds if op not in names}
    traced_classes = {profile_step.op_class(names.get(op, "")) for op in seconds}
    assert "depthwise 3x3" in traced_classes  # the sin fusion, named inside the dwconv scope


def test_restore_report_profiles_the_bundled_model_by_op_class():
    # The derain bundle: an RGFormer student, whose ops fall in several classes.
    report = profile_step.restore_report("derain", 32, profile_steps=1, top_count=4)
    assert report["phase"] == "restore" and report["shape"] == "1 x 32^2"
    assert report["config"].startswith("bundled derain model (")
    assert report["wall_seconds_per_step"] > 0 and len(report["top_ops"]) == 4
    shares = [row["share"] for row in report["classes"].values()]
    assert abs(sum(shares) - 1.0) < 1e-6
    assert {"depthwise 3x3", "1x1 (Pointwise)", "layer norm"} <= set(report["classes"])
