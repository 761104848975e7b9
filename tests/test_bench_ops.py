"""The speed benchmarks run end to end: tools/bench_ops.py (every form of every hot op) and
tools/bench_dncnn.py (the bundled denoiser beside a DnCNN)."""

import json
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def run_tool(script: str, *args: str) -> None:
    """Runs `tools/<script>` with `args` on the CPU in a fresh process; fails on a non-zero exit."""
    result = subprocess.run(
        [sys.executable, f"tools/{script}", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_bench_ops_writes_a_row_per_op_form_and_level(tmp_path):
    out = tmp_path / "ops"
    args = ["--levels=8:8,16:4", "--reps=1", "--matmul_size=64", f"--out={out}"]
    run_tool("bench_ops.py", *args)
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["peak"]["xla_gflops"] > 0 and report["peak"]["numpy_gflops"] > 0
    # 2 levels x (3 depthwise + 2 pointwise + 2 L2-norm + 2 layer-norm forms)
    assert len(report["ops"]) == 2 * 9
    assert {row["shape"] for row in report["ops"]} == {"4x8x8x8", "4x4x4x16"}
    for row in report["ops"]:
        assert row["forward_ms"] > 0 and row["grad_ms"] > 0 and row["grad_gflops"] > 0
    assert "| depthwise 3x3 | shift-add, shift-add gradient (DepthwiseConv3x3) | 4x8x8x8 |" in (
        out.with_suffix(".md").read_text()
    )


def test_bench_dncnn_times_both_models_and_counts_dncnn_flops_by_hand(tmp_path):
    out = tmp_path / "dncnn"
    run_tool(
        "bench_dncnn.py",
        "--size=32",
        "--reps=1",
        "--matmul_size=64",
        f"--out={out}",
    )
    report = json.loads(out.with_suffix(".json").read_text())
    bundled, dncnn = report["rows"]
    # 17 layers: 3->64 conv with bias, 15 x (64->64 conv + BatchNorm scale and bias), 64->3 conv.
    assert dncnn["params"] == (27 * 64 + 64) + 15 * (576 * 64 + 2 * 64) + (576 * 3 + 3)
    # The hand count is an interior pixel's; XLA skips the taps on the zero padding (a fraction
    # (3n - 2)^2 / (3n)^2 of the taps remain on an n x n image) and adds ReLUs, BatchNorms, biases.
    valid_taps = (3 * 32 - 2) ** 2 / (3 * 32) ** 2
    assert 1.0 <= dncnn["flops_per_pixel"] / (dncnn["hand_flops_per_pixel"] * valid_taps) < 1.01
    assert bundled["params"] > 0 and 0 < bundled["flops_per_pixel"] < dncnn["flops_per_pixel"]
    for row in report["rows"]:
        assert row["seconds"] > 0 and row["gflops"] > 0
    assert "s per image" in out.with_suffix(".md").read_text()


def test_bench_xla_flags_reports_a_refused_flag_set_with_its_error():
    sys.path.insert(0, str(REPO / "tools"))
    import bench_xla_flags

    row = bench_xla_flags.run_set("smoke", [], 1, "--xla_cpu_no_such_flag=true")
    assert "no_such_flag" in row["error"]
    report = {"command": "c", "rows": [{"description": "bad", "xla_flags": "--x", **row}]}
    assert bench_xla_flags.markdown(report)[-1].startswith("| bad | `--x` | refused: ")
