"""tools/bench_ops.py runs end to end and reports every form of every hot op."""

import json
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_bench_ops_writes_a_row_per_op_form_and_level(tmp_path):
    out = tmp_path / "ops"
    args = ["--levels=8:8,16:4", "--reps=1", "--matmul_size=64", f"--out={out}"]
    result = subprocess.run(
        [sys.executable, "tools/bench_ops.py", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["peak"]["xla_gflops"] > 0 and report["peak"]["numpy_gflops"] > 0
    assert len(report["ops"]) == 2 * 5  # 2 levels x (3 depthwise + 2 pointwise forms)
    assert {row["shape"] for row in report["ops"]} == {"4x8x8x8", "4x4x4x16"}
    for row in report["ops"]:
        assert row["forward_ms"] > 0 and row["grad_ms"] > 0 and row["grad_gflops"] > 0
    assert "| depthwise 3x3 | shift-add, shift-add gradient | 4x8x8x8 |" in (
        out.with_suffix(".md").read_text()
    )
