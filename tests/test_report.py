"""tools/report.py: README and docs/ tables rendered from the JSON under tools/results/."""

import importlib.util
import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _load_report_module():
    """tools/report.py as a module (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("report", ROOT / "tools" / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


report = _load_report_module()


def _run_report(*args: str) -> subprocess.CompletedProcess:
    """Runs the tool in a subprocess from the repository root."""
    return subprocess.run(
        [sys.executable, "tools/report.py", *args],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_documents_tables_equal_the_committed_json():
    result = _run_report("--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def _copy_documents(root: pathlib.Path) -> list[pathlib.Path]:
    """README.md and docs/*.md copied under `root`, in the same layout; the copies."""
    copies = []
    for document in report.default_documents(ROOT):
        copy = root / document.relative_to(ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(document.read_text())
        copies.append(copy)
    return copies


def _holding(copies: list[pathlib.Path], table: str) -> pathlib.Path:
    """The one copied document that shows `table`."""
    (found,) = [copy for copy in copies if f"<!-- report:{table} -->" in copy.read_text()]
    return found


def _first_bench_train_row(init_seconds_offset: float = 0.0) -> str:
    """The start of bench_train's first table row, from the committed JSON."""
    first = json.loads((ROOT / "tools/results/bench_train_cpu.json").read_text())["results"][0]
    init = first["init_seconds_including_compile"] + init_seconds_offset
    shape = f"{first['batch_size']} x {first['patch_size']}^2"
    return f"| {first['config']} | {first['params']:,} | {shape} | {init:.2f} |"


def test_a_stale_table_in_a_docs_page_fails_the_check_naming_that_page(tmp_path):
    page = _holding(_copy_documents(tmp_path), "bench_train")
    assert page.parent.name == "docs"
    text = page.read_text()
    row, changed = _first_bench_train_row(), _first_bench_train_row(0.01)
    assert text.count(row) == 1
    page.write_text(text.replace(row, changed))
    result = _run_report("--check", "--root", str(tmp_path))
    assert result.returncode == 1, result.stderr
    assert f"docs/{page.name} table bench_train (as written)" in result.stdout
    assert f"-{changed}" in result.stdout
    assert f"+{row}" in result.stdout
    assert changed in page.read_text()  # --check changes nothing


def test_rewrite_fills_the_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(
        "Speed:\n\n<!-- report:bench_train -->\nstale\n<!-- /report:bench_train -->\n"
    )
    assert _run_report("--partial", "--root", str(tmp_path), str(readme)).returncode == 0
    text = readme.read_text()
    assert _first_bench_train_row() in text
    assert "stale" not in text
    assert _run_report("--check", "--partial", "--root", str(tmp_path)).returncode == 0


def test_unknown_marker_is_a_one_line_error_naming_the_document(tmp_path):
    page = tmp_path / "docs" / "PAGE.md"
    page.parent.mkdir()
    page.write_text("# t\n\n<!-- report:no_such_table -->\n<!-- /report:no_such_table -->\n")
    result = _run_report("--check", "--partial", "--root", str(tmp_path), str(page))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "report.py: docs/PAGE.md: line 3: no renderer for table 'no_such_table'"
    ]


def test_a_registered_table_shown_in_no_document_is_a_one_line_error(tmp_path):
    page = _holding(_copy_documents(tmp_path), "bench_train")
    text = page.read_text()
    start = text.index("<!-- report:bench_train -->")
    end = text.index("<!-- /report:bench_train -->") + len("<!-- /report:bench_train -->")
    page.write_text(text[:start] + text[end:])
    result = _run_report("--check", "--root", str(tmp_path))
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("report.py: README.md, docs/")
    assert line.endswith(": no marker pair for table(s) bench_train")


@pytest.mark.parametrize("same_document", [False, True])
def test_a_table_shown_twice_is_a_one_line_error(tmp_path, same_document):
    block = "<!-- report:bench_train -->\n<!-- /report:bench_train -->\n"
    (tmp_path / "README.md").write_text("# t\n\n" + ("" if same_document else block))
    page = tmp_path / "docs" / "PAGE.md"
    page.parent.mkdir()
    page.write_text("# p\n\n" + block + ("\n" + block if same_document else ""))
    result = _run_report("--check", "--partial", "--root", str(tmp_path))
    assert result.returncode == 2
    first = "docs/PAGE.md line 3" if same_document else "README.md line 3"
    line = 6 if same_document else 3
    expected = (
        f"report.py: docs/PAGE.md: line {line}: table 'bench_train' is already shown at {first};"
        " a table may appear in one document only"
    )
    assert result.stderr.strip().splitlines() == [expected]


def test_picture_links_are_relative_to_the_document(tmp_path):
    block = "<!-- report:sweep_denoise -->\n<!-- /report:sweep_denoise -->\n"
    readme, page = tmp_path / "README.md", tmp_path / "docs" / "PAGE.md"
    page.parent.mkdir()
    readme.write_text(block)
    page.write_text(block.replace("sweep_denoise", "denoiser_curve"))
    assert _run_report("--partial", "--root", str(tmp_path), str(readme), str(page)).returncode == 0
    assert "](tools/results/sweep_denoise_cpu_curve.png)" in readme.read_text()
    assert "](../tools/results/denoiser_curve_cpu.png)" in page.read_text()
    assert report.relink("![a](x.png) [b](#c) [d](https://e)", "../") == (
        "![a](../x.png) [b](#c) [d](https://e)"
    )


def test_leaderboard_renderer_on_tiny_json(tmp_path):
    def evaluation(model: str, psnr: float) -> dict:
        means = {"psnr": psnr, "ssim": 0.75}
        result = {"dataset": "CBSD68", "sigma": 25, "means": means}
        return {"model": model, "command": f"python -m e --workdir {model}", "results": [result]}

    (tmp_path / "eval" / "bundle").mkdir(parents=True)
    (tmp_path / "eval" / "bundle" / "results.json").write_text(
        json.dumps(evaluation("bundle@10", 27.5))
    )
    at = {"nfe": 1, "scores": {"CBSD68": {"psnr": 29.125, "ssim": 0.8}}}
    bench = {
        "command": "python b",
        "rows": {"flow": {"checkpoint": "flow@5", "by_sampler": {"euler:4": at}}},
    }
    (tmp_path / "bench.json").write_text(json.dumps(bench))
    real = {
        "commands": [
            {"rows": ["a"], "command": "python r --rows a"},
            {"rows": ["b"], "command": "python r --rows b"},
        ],
        "rows": [
            {
                "row": "b",
                "model": "long@20",
                "scores": {"CBSD68 σ=25": {"psnr": 30.0, "ssim": 0.85}},
            }
        ],
    }
    (tmp_path / "real.json").write_text(json.dumps(real))
    peers = (
        report.Peer(
            "denoise",
            "CBSD68",
            "**bundled** ({model})",
            "eval/bundle/results.json",
            report.from_eval("CBSD68", 25),
            bold=True,
        ),
        report.Peer(
            "denoise",
            "CBSD68",
            "flow ({model})",
            "bench.json",
            report.from_bench("flow", "euler:4", "CBSD68"),
        ),
        report.Peer(
            "derain",
            "Rain",
            "long ({model})",
            "real.json",
            report.from_real_noise("b", "CBSD68 σ=25"),
        ),
    )
    assert report.render_leaderboard(peers, tmp_path) == [
        "| task | test set | model | PSNR | SSIM |",
        "|---|---|---|---|---|",
        "| denoise | CBSD68 | flow (flow@5) | 29.12 | 0.8000 |",
        "|  |  | **bundled** (bundle@10) | **27.50** | **0.7500** |",
        "| derain | Rain | long (long@20) | 30.00 | 0.8500 |",
        "",
        "Written by: `python b`; `python -m e --workdir bundle@10`; `python r --rows b`",
    ]


def test_every_leaderboard_row_reads_committed_json():
    lines = report.TABLES["leaderboard"](report.RESULTS)
    assert len(lines) == len(report.LEADERBOARD) + 4
    assert sum("**bundled" in line for line in lines) == 3


def _write_eval(folder: pathlib.Path, command: str, results: list[dict]) -> None:
    """A tiny `evaluate` report in folder/results.json."""
    folder.mkdir(parents=True)
    payload = {"model": folder.name, "command": command, "results": results}
    (folder / "results.json").write_text(json.dumps(payload))


def test_eval_renderer_on_hand_written_json(tmp_path):
    means = {"psnr": 29.4567, "ssim": 0.82846, "ciede2000": 3.456}
    _write_eval(
        tmp_path / "model_a",
        "python -m restorect_jax.evaluate --workdir runs/a",
        [{"dataset": "CBSD68", "sigma": 25, "label": "CBSD68 σ=25", "images": 2, "means": means}],
    )
    spec = report.EvalTable(
        "model",
        (
            report.Axis("model A", "model_a"),
            report.Axis("model B (absent)", "model_b"),
        ),
        (
            report.Axis("CBSD68 σ=25", dataset="CBSD68", sigma=25, metrics=("psnr", "ssim")),
            report.Axis("CBSD68 σ=50", dataset="CBSD68", sigma=50, metrics=("psnr",), missing="-"),
            report.Axis("CIEDE2000", dataset="CBSD68", sigma=25, metrics=("ciede2000",)),
        ),
        skip_absent=True,
    )
    assert report.render_eval(spec, tmp_path) == [
        "| model | CBSD68 σ=25 | CBSD68 σ=50 | CIEDE2000 |",
        "|---|---|---|---|",
        "| model A | 29.46 / 0.8285 | - | 3.46 |",
        "",
        "Written by: `python -m restorect_jax.evaluate --workdir runs/a`",
    ]


def test_eval_renderer_without_skip_absent_names_the_missing_json(tmp_path):
    spec = report.EvalTable("model", (report.Axis("x", "absent"),), (report.Axis("c"),))
    with pytest.raises(report.ReportError, match="absent/results.json"):
        report.render_eval(spec, tmp_path)


def test_bench_distill_renderer_reads_the_models_format(tmp_path):
    def entry(params: int, flops: float, speed: float, psnr: float) -> dict:
        return {
            "params": params,
            "flops": flops,
            "images_per_s": speed,
            "scores": {"CBSD68": {"psnr": psnr, "ssim": 0.75, "images": 68}},
        }

    payload = {
        "setting": "restorect overrides: ['loss.flex=0.02']",
        "datasets": ["CBSD68"],
        "models": {
            "teacher": entry(2_000_000, 20e9, 1.0, 29.0),
            "restorer": entry(1_000_000, 10e9, 2.0, 28.5),
            "restorect": entry(500_000, 5e9, 4.0, 28.25),
        },
        "input_scores": {"CBSD68": {"psnr": 20.5, "ssim": 0.39, "images": 68}},
        "gap_to_restorer_db": {"restorect": {"CBSD68": -0.25}},
    }
    path = tmp_path / "bench_distill.json"
    path.write_text(json.dumps(payload))
    lines = report.render_bench_distill(path)
    assert lines[:-1] == [
        "| model | params | GFLOPs @256 | images/s @256 | CBSD68 PSNR / SSIM |",
        "|---|---|---|---|---|",
        "| teacher (sees GT: upper reference) | 2.000M | 20.00 | 1.00 | 29.00 / 0.7500 |",
        (
            "| restorer, teacher size (LQ only) | 1.000M (50.0%) | 10.00 (50.0%) | 2.00 (2.0x)"
            " | 28.50 / 0.7500 |"
        ),
        (
            "| student, `distill=restorect` (λ = 0.02) | 0.500M (25.0%) | 5.00 (25.0%)"
            " | 4.00 (4.0x) | 28.25 / 0.7500 |"
        ),
        "| noisy input |  |  |  | 20.50 / 0.3900 |",
        "",
        "Student PSNR minus the LQ-only restorer's (dB): restorect: CBSD68 -0.25.",
        "",
    ]
    assert lines[-1].startswith("Written by: `") and "tools/bench_distill.py" in lines[-1]


def test_bench_methods_renderer_lists_every_sampler_gap_and_ood_level(tmp_path):
    def at(nfe: int, psnr: float) -> dict:
        return {"nfe": nfe, "flops": nfe * 4e9, "scores": {"CBSD68": {"psnr": psnr, "ssim": 0.8}}}

    payload = {
        "command": "python tools/bench_methods.py --task denoise",
        "datasets": ["CBSD68"],
        "sigma": 25,
        "protocol": "PSNR/SSIM on RGB",
        "setting": "every row 10 steps",
        "rows": {
            "irflow": {
                "label": "IR-Flow",
                "params": 600_000,
                "by_sampler": {"euler:1": at(1, 28.0), "euler:1,0.2,0": at(2, 28.5)},
                "images_per_s": {"euler:1": 8.0, "euler:1,0.2,0": 4.0},
                "seconds_per_512": {"euler:1": 0.5, "euler:1,0.2,0": 1.0},
            },
            "one_step": {
                "label": "baseline",
                "params": 600_000,
                "by_sampler": {"one step": at(1, 28.25)},
                "images_per_s": {"one step": 8.0},
            },
        },
        "gap_to_one_step_db": {"euler:1": {"CBSD68": -0.25}, "euler:1,0.2,0": {"CBSD68": 0.25}},
        "ood": {
            "50": {"irflow": {"euler:1": {"CBSD68": {"psnr": 24.0}}}},
            "15": {"irflow": {"euler:1": {"CBSD68": {"psnr": 31.0}}}},
        },
    }
    path = tmp_path / "bench_methods.json"
    path.write_text(json.dumps(payload))
    lines = report.render_with_command(report.methods_table, path)
    assert lines[:4] == [
        (
            "| model | sampler | NFE | params | GFLOPs @256 | images/s @256 | s @512"
            " | CBSD68 PSNR / SSIM |"
        ),
        "|---|---|---|---|---|---|---|---|",
        "| IR-Flow | euler:1 | 1 | 0.600M | 4.00 | 8.00 | 0.50 | 28.00 / 0.8000 |",
        "| IR-Flow | euler:1,0.2,0 | 2 | 0.600M | 8.00 | 4.00 | 1.00 | 28.50 / 0.8000 |",
    ]
    assert "IR-Flow minus the one-step baseline, PSNR (dB): euler:1: CBSD68 -0.25; " in "\n".join(
        lines
    )
    assert "| model | sampler | sigma 15 | sigma 50 |" in lines
    assert "| IR-Flow | euler:1 | 31.00 | 24.00 |" in lines
    assert lines[-1] == "Written by: `python tools/bench_methods.py --task denoise`"


def test_bench_slkd_renderer_gives_fractions_of_teacher_a_and_gains_over_the_student(tmp_path):
    def row(label: str, params: int, flops: float, psnr: float, gap: float) -> dict:
        return {
            "label": label,
            "params": params,
            "params_fraction": params / 2_000_000,
            "flops_fraction": flops / 20e9,
            "psnr_gap_db": {"CBSD68": gap},
            "images_per_s": {"default": 4.0},
            "seconds_per_512": {"default": 0.25},
            "by_sampler": {
                "default": {
                    "nfe": 1,
                    "flops": flops,
                    "scores": {"CBSD68": {"psnr": psnr, "ssim": 0.8}},
                }
            },
        }

    rows = {
        "teacher_a": row("Teacher A", 2_000_000, 20e9, 30.0, 0.0),
        "student": row("alone", 200_000, 3e9, 28.0, -2.0),
        "slkd": row("SLKD", 200_000, 3e9, 28.5, -1.5),
        "drl": row("DRL", 200_000, 3e9, 28.25, -1.75),
        "irl": row("IRL", 200_000, 3e9, 27.75, -2.25),
        "feature_mse": row("MSE", 200_000, 3e9, 28.0, -2.0),
    }
    payload = {
        "command": "python tools/bench_slkd.py --task denoise",
        "datasets": ["CBSD68"],
        "protocol": "PSNR/SSIM on RGB",
        "setting": "students 10 steps",
        "rows": rows,
    }
    path = tmp_path / "bench_slkd.json"
    path.write_text(json.dumps(payload))
    lines = report.render_with_command(report.slkd_table, path)
    assert lines[0] == (
        "| model | params (of A) | GFLOPs @256 (of A) | images/s @256 | s @512"
        " | CBSD68 PSNR / SSIM | PSNR gap to A (dB) |"
    )
    assert "| SLKD | 0.200M (10%) | 3.00 (15%) | 4.00 | 0.25 | 28.50 / 0.8000 | -1.50 |" in lines
    assert (
        "Minus the student trained alone, PSNR (dB): slkd: CBSD68 +0.50; drl: CBSD68 +0.25; "
        "irl: CBSD68 -0.25; feature_mse: CBSD68 +0.00."
    ) in lines
    assert lines[-1] == "Written by: `python tools/bench_slkd.py --task denoise`"


def test_bench_fluxir_renderer_gives_rl_gains_and_each_costs_breakpoint(tmp_path):
    def at(nfe: int, psnr: float) -> dict:
        return {"nfe": nfe, "flops": nfe * 4e9, "scores": {"CBSD68": {"psnr": psnr, "ssim": 0.8}}}

    def row(label: str, by_sampler: dict) -> dict:
        return {
            "label": label,
            "params": 600_000,
            "by_sampler": by_sampler,
            "images_per_s": {key: 2.0 for key in by_sampler},
            "seconds_per_512": {key: 1.0 for key in by_sampler},
        }

    payload = {
        "command": "python tools/bench_fluxir.py --task denoise",
        "datasets": ["CBSD68"],
        "protocol": "PSNR/SSIM on RGB",
        "setting": "every row 10 steps",
        "rows": {
            "base": row("base", {"euler:1": at(1, 20.0), "euler:10": at(10, 26.0)}),
            "rl": row("rl", {"euler:1": at(1, 20.5), "euler:10": at(10, 25.75)}),
            "two_step_displacement": row("2-step", {"euler:1,0.75,0": at(2, 27.0)}),
        },
        "rl_minus_base_db": {"euler:1": {"CBSD68": 0.5}, "euler:10": {"CBSD68": -0.25}},
        "tstar_minus_uniform_db": {"displacement": {"CBSD68": 1.5}},
        "breakpoint_search": {"displacement": {"best_t": 0.75, "json": "b.json"}},
    }
    path = tmp_path / "bench_fluxir.json"
    path.write_text(json.dumps(payload))
    lines = report.render_with_command(report.fluxir_table, path)
    assert "| 2-step | euler:1,0.75,0 | 2 | 0.600M | 8.00 | 2.00 | 1.00 | 27.00 / 0.8000 |" in lines
    assert (
        "Base + RL minus the base, PSNR (dB): euler:1: CBSD68 +0.50; euler:10: CBSD68 -0.25."
        in lines
    )
    assert (
        "2-step students at t* minus at t = 0.5, PSNR (dB): displacement cost, t* = 0.75 "
        "(b.json): CBSD68 +1.50."
    ) in lines
    assert lines[-1] == "Written by: `python tools/bench_fluxir.py --task denoise`"


def test_denoiser_curve_renderer_states_the_slope_over_the_last_quadrupling(tmp_path):
    points = [
        {
            "step": step,
            "wall_hours": step / 3600,
            "cpu_hours": step / 1800,
            "psnr": psnr,
            "ssim": 0.8,
            "train_loss": 0.03,
        }
        for step, psnr in ((500, 28.0), (1000, 29.0), (2000, 29.5), (4000, 29.8))
    ]
    payload = {
        "command": "python tools/run_curve.py --pack p --out o",
        "validation": "denoise/train/CBSD432 records [400, 432]",
        "points": points,
    }
    path = tmp_path / "denoiser_curve_cpu.json"
    path.write_text(json.dumps(payload))
    lines = report.render_denoiser_curve(path)
    assert lines[:3] == [
        "| step | CPU hours | wall hours | held-out PSNR | SSIM |",
        "|---|---|---|---|---|",
        "| 500 | 0.28 | 0.14 | 28.00 | 0.8000 |",
    ]
    assert "Slope at the end: +0.80 dB from step 1000 to 4000 (4.0x)." in "\n".join(lines)
    assert lines[-1] == "Written by: `python tools/run_curve.py --pack p --out o`"
    report.draw_denoiser_curve(path)
    assert path.with_suffix(".png").stat().st_size > 1000


def test_sweep_renderer_sorts_by_psnr_and_links_the_curve(tmp_path):
    def row(name: str, psnr: float) -> dict:
        return {
            "candidate": name,
            "params": 850_000,
            "macs_per_pixel": 211_000,
            "seconds_per_512": 0.94,
            "batch_size": 8,
            "patch_size": 64,
            "steps": 1700,
            "cpu_minutes": 30.2,
            "wall_minutes": 16.0,
            "cbsd68_sigma25": {"psnr": psnr, "ssim": 0.86},
        }

    path = tmp_path / "sweep_denoise_cpu.json"
    path.write_text(
        json.dumps(
            {
                "command": "python tools/sweep_denoise.py",
                "rows": [row("time_unet", 29.5), row("unshuffle_cnn", 30.4)],
            }
        )
    )
    lines = report.render_sweep_denoise(path)
    assert lines[2].startswith(
        "| unshuffle_cnn | 0.85M | 0.211 | 0.94 | 8 x 64² | 1700 | 30 (16) |"
    )
    assert lines[3].startswith("| time_unet |")
    assert "sweep_denoise_cpu_curve.png" in lines[-3]


def test_real_noise_renderer_puts_each_set_in_a_column_and_marks_missing_ones(tmp_path):
    def scores(psnr):
        return {"psnr": psnr, "ssim": 0.9, "images": 100, "seconds_per_image": 1.0}

    payload = {
        "commands": [
            {"rows": ["input"], "command": "python tools/bench_real_noise.py --rows input"},
            {"rows": ["bm3d"], "command": "python tools/bench_real_noise.py --rows bm3d"},
        ],
        "protocol": "RGB PSNR / SSIM",
        "rows": [
            {
                "row": "input",
                "model": "input",
                "scores": {"PolyU": scores(35.97), "CBSD68": scores(20.5)},
            },
            {"row": "bm3d", "model": "CBM3D", "scores": {"PolyU": scores(38.1)}},
        ],
    }
    path = tmp_path / "real_noise_cpu.json"
    path.write_text(json.dumps(payload))
    lines = report.render_real_noise(path)
    assert lines[:4] == [
        "| row | model | PolyU PSNR / SSIM | CBSD68 PSNR / SSIM |",
        "|---|---|---|---|",
        "| input | input | 35.97 / 0.9000 | 20.50 / 0.9000 |",
        "| bm3d | CBM3D | 38.10 / 0.9000 | – |",
    ]
    assert lines[-1].count("`python tools/bench_real_noise.py") == 2


def test_degradation_cost_renderer_gives_the_share_of_a_train_step(tmp_path):
    payload = {
        "command": "python tools/bench_degradation.py",
        "batch": "16 x 64^2",
        "train_step_cpu_seconds": 2.0,
        "train_step_source": "a curve",
        "rows": [{"degradation": "camera", "ms_per_batch": 30.0, "share_of_train_step": 0.015}],
    }
    path = tmp_path / "bench_degradation_cpu.json"
    path.write_text(json.dumps(payload))
    lines = report.render_bench_degradation(path)
    assert lines[2] == "| camera | 30.0 | 1.50% |"
    assert "Train step: 2.00 CPU-seconds (a curve)." in lines


def test_startup_renderer_puts_each_checkout_in_a_column(tmp_path):
    def checkout(label, seconds):
        return {
            "label": label,
            "commit": "abc1234",
            "command": f"python b --label {label}",
            "seconds": {"import x": seconds},
        }

    path = tmp_path / "bench_startup_cpu.json"
    path.write_text(json.dumps({"checkouts": [checkout("before", 3.5), checkout("after", 2.0)]}))
    lines = report.render_bench_startup(path)
    assert lines[0] == "| seconds | before (abc1234) | after (abc1234) |"
    assert lines[2] == "| import x | 3.50 | 2.00 |"
