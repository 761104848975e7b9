"""Renders the results tables of README.md and docs/*.md from JSON under tools/results/.

    python tools/report.py                    # rewrite every table between its markers
    python tools/report.py --check            # change nothing: print a diff per stale table, exit 1
    python tools/report.py docs/RESULTS.md    # only the named documents (with --partial)

A table sits between the lines `<!-- report:NAME -->` and `<!-- /report:NAME -->`; NAME picks
its renderer in `TABLES`, which reads only committed JSON. Under each table is the command that
writes its JSON ("Written by: ..."): the one the JSON records, else the first command in the
writing tool's docstring. Every registered table is shown in exactly one of the documents
(README.md and docs/*.md, or the paths given): a table shown twice, or, without --partial, in
none, is an error. Links a renderer writes (pictures under tools/results/) are made relative to
the document's folder. A marker with no renderer, a marker without its closing pair, or a table
whose JSON is missing is a one-line error naming the document, exit status 2.
"""

import argparse
import ast
import dataclasses
import difflib
import functools
import json
import os
import pathlib
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / "tools" / "results"

_OPEN = re.compile(r"^(?P<indent>[ \t]*)<!-- report:(?P<name>[^ ]+) -->[ \t]*$", re.MULTILINE)
_COMMAND = re.compile(r"^(\w+=\S+\s+)*(python|bash)\s")

# Decimal places per evaluate metric, as the README prints them.
METRIC_FORMATS = {
    "psnr": "{:.2f}",
    "ssim": "{:.4f}",
    "ms_ssim": "{:.4f}",
    "lpips_alex": "{:.4f}",
    "lpips_vgg": "{:.4f}",
    "ciede2000": "{:.2f}",
    "niqe": "{:.2f}",
    "brisque": "{:.2f}",
    "piqe": "{:.2f}",
}


class ReportError(Exception):
    """A one-line error: unknown marker, unclosed marker or missing JSON."""


def load_json(path: pathlib.Path) -> Any:
    """The parsed JSON file at `path`; a ReportError naming it when it is missing."""
    if not path.is_file():
        raise ReportError(f"missing JSON {_shown(path)}")
    return json.loads(path.read_text())


def _shown(path: pathlib.Path) -> str:
    """`path` relative to the repository when it lies inside it."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def docstring_command(tool: pathlib.Path) -> str:
    """The first shell command in `tool`'s module docstring, continuation lines joined."""
    docstring = ast.get_docstring(ast.parse(tool.read_text())) or ""
    lines = iter(docstring.splitlines())
    for line in lines:
        if _COMMAND.match(line.strip()):
            command = line.strip()
            while command.endswith("\\"):
                command = command[:-1] + " " + next(lines, "").strip()
            return " ".join(command.split("#", 1)[0].split())
    raise ReportError(f"no command in the docstring of {_shown(tool)}")


def written_by(commands: Sequence[str]) -> str:
    """The line under a table naming the command(s) that wrote its JSON, each once."""
    unique = list(dict.fromkeys(commands))
    return "Written by: " + "; ".join(f"`{command}`" for command in unique)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A markdown table's lines."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


# --- plan_memory ----------------------------------------------------------------------------------


def _plan_row(plan: dict) -> tuple[tuple, list[str]]:
    """A plan_memory JSON's sort key and table row (its phase that needs the most memory)."""
    phase = max(plan["phases"].values(), key=lambda p: p["total_bytes"])
    mesh = plan["mesh"]
    name = "paper" if plan["overrides"] else pathlib.Path(plan["config"]).stem
    label = f"{name} ({plan['params'] / 1e6:.2f}M)" + (", FSDP" if plan["shard_params"] else "")
    key = (name == "paper", mesh["data"] * mesh["model"] > 1, plan["shard_params"])
    row = [
        label,
        f"{mesh['data']}x{mesh['model']}",
        str(plan["batch_size"]),
        str(plan["patch_size"]),
        f"{phase['total_bytes'] / 1e9:.1f}",
        f"{plan['state_bytes_per_device'] / 1e6:.0f}",
        f"{phase['flops_per_device'] / 1e9:.0f}",
    ]
    return key + (plan["patch_size"], plan["batch_size"]), row


def render_plan_memory(paths: Sequence[pathlib.Path]) -> list[str]:
    """The memory plan table: one row per `tools/plan_memory.py` JSON."""
    if not paths:
        raise ReportError(f"missing JSON {_shown(RESULTS / 'plan_memory')}/*.json")
    rows = sorted(_plan_row(load_json(path)) for path in paths)
    header = [
        "teacher (params)",
        "mesh (data x model)",
        "batch",
        "patch",
        "GB per device",
        "state MB per device",
        "GFLOP/step per device",
    ]
    command = docstring_command(REPO / "tools" / "plan_memory.py")
    return markdown_table(header, [row for _, row in rows]) + ["", written_by([command])]


# --- GPU lease bench ------------------------------------------------------------------------------

_LEASE_LABELS = {
    "teacher": "teacher (`{config}`)",
    "student": "RestoRect student (with the frozen teacher's forward)",
}


def render_gpu_lease(path: pathlib.Path) -> list[str]:
    """Train-step speed on the GPU lease: the `bench` entries of train_gpu.py's results.json."""
    rows = []
    for name, bench in load_json(path)["bench"].items():
        label = _LEASE_LABELS[name].format(config=pathlib.Path(bench["config"]).stem)
        rows.append(
            [
                label,
                f"{bench['params']:,}",
                f"{bench['init_seconds_including_compile']:.1f}",
                f"{bench['train_step_compile_seconds']:.1f}",
                f"{bench['model_steps_per_sec']:.2f}",
                f"{bench['gflop_per_step']:.1f}",
                f"{bench['achieved_tflops']:.2f}",
                f"{bench['fraction_of_peak']:.2%}",
            ]
        )
    header = ["model", "params", "init + compile s", "train-step compile s", "steps/s"]
    header += ["GFLOP/step (XLA)", "TFLOP/s", "of 790 (bf16 peak)"]
    command = docstring_command(REPO / "tools" / "device" / "train_gpu.py")
    return markdown_table(header, rows) + ["", written_by([command])]


# --- bench_distill --------------------------------------------------------------------------------


def _distill_labels(setting: str) -> dict[str, str]:
    """Row labels of the distillation table; the RestoRect row names its FLEX weight if set."""
    flex = re.search(r"loss\.flex=([0-9.e-]+)", setting)
    return {
        "teacher": "teacher (sees GT: upper reference)",
        "restorer": "restorer, teacher size (LQ only)",
        "restorect": "student, `distill=restorect`" + (f" (λ = {flex[1]})" if flex else ""),
        "feature_mse": "student, `distill=feature_mse`",
        "none": "student, `distill=none`",
    }


def _distill_normalised(report: dict) -> tuple[list[str], dict, dict]:
    """(datasets, models, input scores) of either bench_distill format.

    The first format has `teacher` and `students` (the input's scores inside each model's);
    the second has `datasets`, `models` and `input_scores`.
    """
    if "models" in report:
        return report["datasets"], report["models"], report["input_scores"]
    teacher = report["teacher"]
    datasets = list(teacher["scores"])
    inputs = {
        d: {"psnr": teacher["scores"][d]["psnr_input"], "ssim": teacher["scores"][d]["ssim_input"]}
        for d in datasets
    }
    return datasets, {"teacher": teacher, **report["students"]}, inputs


def _distill_row(label: str, entry: dict, teacher: dict, datasets: Sequence[str]) -> list[str]:
    """One model's row; sizes and speed relative to the teacher's, except for the teacher."""
    params = f"{entry['params'] / 1e6:.3f}M"
    flops = f"{entry['flops'] / 1e9:.2f}"
    speed = f"{entry['images_per_s']:.2f}"
    if entry is not teacher:
        params += f" ({entry['params'] / teacher['params']:.1%})"
        flops += f" ({entry['flops'] / teacher['flops']:.1%})"
        speed += f" ({entry['images_per_s'] / teacher['images_per_s']:.1f}x)"
    return [label, params, flops, speed] + [_psnr_ssim(entry["scores"], d) for d in datasets]


def distill_table(report: dict) -> list[str]:
    """The distillation benchmark table of `tools/bench_distill.py`'s report (either format),
    and the students' gaps to the LQ-only restorer."""
    datasets, models, inputs = _distill_normalised(report)
    labels = _distill_labels(report.get("setting", ""))
    rows = [_distill_row(labels[n], e, models["teacher"], datasets) for n, e in models.items()]
    rows.append(["noisy input", "", "", ""] + [_psnr_ssim(inputs, d) for d in datasets])
    header = ["model", "params", "GFLOPs @256", "images/s @256"]
    lines = markdown_table(header + [f"{d} PSNR / SSIM" for d in datasets], rows)
    if "gap_to_restorer_db" in report:
        gaps = "; ".join(
            f"{name}: {_gap_text(by_set)}" for name, by_set in report["gap_to_restorer_db"].items()
        )
        lines += ["", f"Student PSNR minus the LQ-only restorer's (dB): {gaps}."]
    return lines


def render_bench_distill(path: pathlib.Path) -> list[str]:
    """`distill_table` of `tools/bench_distill.py`'s JSON, with the command that wrote it."""
    command = docstring_command(REPO / "tools" / "bench_distill.py")
    return distill_table(load_json(path)) + ["", written_by([command])]


# --- bench_methods --------------------------------------------------------------------------------


def _psnr_ssim(scores: dict, dataset: str) -> str:
    return f"{scores[dataset]['psnr']:.2f} / {scores[dataset]['ssim']:.4f}"


def _gap_text(by_set: dict[str, float]) -> str:
    return ", ".join(f"{d} {gap:+.2f}" for d, gap in by_set.items())


def _methods_gaps(report: dict) -> str:
    return "; ".join(
        f"{key}: {_gap_text(by_set)}" for key, by_set in report["gap_to_one_step_db"].items()
    )


def _methods_ood(report: dict) -> list[str]:
    """Out-of-distribution PSNR: one row per (model, sampler), one column per AWGN level."""
    sigmas = sorted(report["ood"], key=int)
    first = report["datasets"][0]
    rows = []
    for row, entry in report["rows"].items():
        for key in report["ood"][sigmas[0]].get(row, {}):
            rows.append(
                [entry["label"], key]
                + [f"{report['ood'][s][row][key][first]['psnr']:.2f}" for s in sigmas]
            )
    heading = (
        f"Out of distribution: trained at sigma {report['sigma']}, {first} PSNR at sigma "
        + ", ".join(sigmas)
        + ":"
    )
    return ["", heading, ""] + markdown_table(
        ["model", "sampler"] + [f"sigma {s}" for s in sigmas], rows
    )


def sampler_table(report: dict) -> list[str]:
    """One row per (model, sampler): NFE, params, GFLOPs, speed, PSNR / SSIM per test set."""
    datasets = report["datasets"]
    rows = []
    for entry in report["rows"].values():
        for key, at in entry["by_sampler"].items():
            seconds = entry.get("seconds_per_512", {}).get(key)
            rows.append(
                [entry["label"], key, str(at["nfe"]), f"{entry['params'] / 1e6:.3f}M"]
                + [f"{at['flops'] / 1e9:.2f}", f"{entry['images_per_s'][key]:.2f}"]
                + ["-" if seconds is None else f"{seconds:.2f}"]
                + [_psnr_ssim(at["scores"], d) for d in datasets]
            )
    header = ["model", "sampler", "NFE", "params", "GFLOPs @256", "images/s @256", "s @512"]
    return markdown_table(header + [f"{d} PSNR / SSIM" for d in datasets], rows)


def methods_table(report: dict) -> list[str]:
    """bench_methods' tables: the sampler table, the gaps to the one-step baseline, the
    out-of-distribution scores and the setting."""
    lines = sampler_table(report)
    lines += ["", f"IR-Flow minus the one-step baseline, PSNR (dB): {_methods_gaps(report)}."]
    if report["ood"]:
        lines += _methods_ood(report)
    return lines + ["", f"Setting: {report['setting']}; {report['protocol']}."]


def render_with_command(table: Callable[[dict], list[str]], path: pathlib.Path) -> list[str]:
    """`table` of a bench's JSON (bench_methods, bench_fluxir, bench_slkd), with the command
    that wrote it (the JSON's `command`)."""
    report = load_json(path)
    return table(report) + ["", written_by([report["command"]])]


# --- bench_fluxir ---------------------------------------------------------------------------------


def fluxir_table(report: dict) -> list[str]:
    """bench_fluxir's table, RL's gain over the base at equal NFE, t* against the uniform
    2-step grid, and the setting."""
    rl = "; ".join(f"{key}: {_gap_text(gap)}" for key, gap in report["rl_minus_base_db"].items())
    tstar = [
        f"{cost} cost, t* = {report['breakpoint_search'][cost]['best_t']:g} "
        f"({report['breakpoint_search'][cost]['json']}): {_gap_text(gap)}"
        for cost, gap in report["tstar_minus_uniform_db"].items()
    ]
    return sampler_table(report) + [
        "",
        f"Base + RL minus the base, PSNR (dB): {rl}.",
        f"2-step students at t* minus at t = 0.5, PSNR (dB): {'; '.join(tstar)}.",
        "",
        f"Setting: {report['setting']}; {report['protocol']}.",
    ]


# --- bench_slkd -----------------------------------------------------------------------------------


def slkd_table(report: dict) -> list[str]:
    """bench_slkd's table: one row per model with its size and cost as fractions of Teacher A,
    its speed, PSNR / SSIM and PSNR gap to Teacher A per test set; SLKD's gain over the student
    trained alone; the setting."""
    datasets = report["datasets"]
    rows = []
    for entry in report["rows"].values():
        at = next(iter(entry["by_sampler"].values()))
        seconds = next(iter(entry.get("seconds_per_512", {}).values()), None)
        rows.append(
            [entry["label"], f"{entry['params'] / 1e6:.3f}M ({entry['params_fraction']:.0%})"]
            + [f"{at['flops'] / 1e9:.2f} ({entry['flops_fraction']:.0%})"]
            + [f"{next(iter(entry['images_per_s'].values())):.2f}"]
            + ["-" if seconds is None else f"{seconds:.2f}"]
            + [_psnr_ssim(at["scores"], d) if d in at["scores"] else "-" for d in datasets]
            + [", ".join(f"{gap:+.2f}" for gap in entry["psnr_gap_db"].values())]
        )
    header = ["model", "params (of A)", "GFLOPs @256 (of A)", "images/s @256", "s @512"]
    header += [f"{d} PSNR / SSIM" for d in datasets] + ["PSNR gap to A (dB)"]

    def psnr(row: str, dataset: str) -> float:
        return next(iter(report["rows"][row]["by_sampler"].values()))["scores"][dataset]["psnr"]

    gains = [
        f"{row}: " + ", ".join(f"{d} {psnr(row, d) - psnr('student', d):+.2f}" for d in datasets)
        for row in ("slkd", "drl", "irl", "feature_mse")
    ]
    return markdown_table(header, rows) + [
        "",
        f"Minus the student trained alone, PSNR (dB): {'; '.join(gains)}.",
        "",
        f"Setting: {report['setting']}; {report['protocol']}.",
    ]


# --- bench_train ----------------------------------------------------------------------------------


def render_bench_train(path: pathlib.Path) -> list[str]:
    """Compile times and steps/s per config, from `tools/bench_train.py`'s JSON."""
    rows = []
    for result in load_json(path)["results"]:
        pipeline = result.get("pipeline_steps_per_sec")
        rows.append(
            [
                result["config"],
                f"{result['params']:,}",
                f"{result['batch_size']} x {result['patch_size']}^2",
                f"{result['init_seconds_including_compile']:.2f}",
                f"{result['train_step_compile_seconds']:.2f}",
                f"{result['model_steps_per_sec']:.2f}",
                "-" if pipeline is None else f"{pipeline:.2f}",
            ]
        )
    header = ["config", "params", "batch x patch", "init+compile s", "step compile s"]
    header += ["steps/s (model)", "steps/s (with data)"]
    report = load_json(path)
    command = report.get("command") or docstring_command(REPO / "tools" / "bench_train.py")
    return markdown_table(header, rows) + ["", written_by([command])]


# --- CPU speed (tools/bench_train.py and profile_step.py per code version, bench_dncnn.py) ---------

# The train-step speed measurements, oldest first: (column label, file-name suffix). Each wrote
# tools/results/bench_train<suffix>_cpu.json and profile_teacher_<shape><suffix>_cpu.json.
STEP_VARIANTS = (
    ("XLA's gradients", "_xla_depthwise_gradient"),
    ("shift-add depthwise gradient", ""),
    ("+ L2 norm as contractions", "_l2_contraction"),
    ("+ written-out 1x1, norm and depthwise-kernel gradients", "_written_gradients"),
)
PROFILE_SHAPES = ("4x48", "1x256")


def _step_variants(res: pathlib.Path) -> list[tuple[str, str]]:
    """The STEP_VARIANTS whose bench_train JSON is committed."""
    return [
        (label, suffix)
        for label, suffix in STEP_VARIANTS
        if (res / f"bench_train{suffix}_cpu.json").exists()
    ]


def _profile(res: pathlib.Path, shape: str, suffix: str) -> dict:
    return load_json(res / f"profile_teacher_{shape}{suffix}_cpu.json")


def render_speed_steps(res: pathlib.Path) -> list[str]:
    """Seconds per train step for each code version (bench_train's model steps/s and
    profile_step's wall time), and the speed-up of the newest over the oldest."""
    variants = _step_variants(res)
    trains = [load_json(res / f"bench_train{suffix}_cpu.json") for _, suffix in variants]
    rows, commands = [], [train["command"] for train in trains]
    for results in zip(*(train["results"] for train in trains), strict=True):
        seconds = [1 / result["model_steps_per_sec"] for result in results]
        shape = f"{results[0]['batch_size']} x {results[0]['patch_size']}^2"
        rows.append([results[0]["config"], shape, seconds])
    for shape in PROFILE_SHAPES:
        profiles = [_profile(res, shape, suffix) for _, suffix in variants]
        commands += [profile["command"] for profile in profiles]
        seconds = [profile["wall_seconds_per_step"] for profile in profiles]
        rows.append(["teacher_denoise (profile_step)", profiles[0]["shape"], seconds])
    table = [
        [config, shape, *(f"{value:.3f}" for value in seconds), f"{seconds[0] / seconds[-1]:.2f}x"]
        for config, shape, seconds in rows
    ]
    header = ["config", "batch x patch", *(f"s/step, {label}" for label, _ in variants)]
    header.append("speed-up")
    return markdown_table(header, table) + ["", written_by(commands)]


def render_profile_teacher(res: pathlib.Path) -> list[str]:
    """The teacher's train step by op class (traced seconds per step) at each shape, for the
    oldest and the newest code version."""
    variants = _step_variants(res)
    columns = [
        (shape, variant) for shape in PROFILE_SHAPES for variant in (variants[0], variants[-1])
    ]
    profiles = [_profile(res, shape, suffix) for shape, (_, suffix) in columns]
    seconds = {
        name: [profile["classes"].get(name, {}).get("seconds", 0.0) for profile in profiles]
        for name in profiles[-1]["classes"]
    }
    rows = [
        [name, *(f"{v:.3f}" for v in values)] for name, values in seconds.items() if any(values)
    ]
    rows.append(["all traced ops", *(f"{p['traced_seconds_per_step']:.3f}" for p in profiles)])
    header = ["op class"] + [
        f"{p['shape']}, {label}" for p, (_, (label, _)) in zip(profiles, columns, strict=True)
    ]
    return markdown_table(header, rows) + ["", written_by([p["command"] for p in profiles])]


def render_bench_xla_flags(path: pathlib.Path) -> list[str]:
    """Steps/s of a config's train step under each XLA:CPU flag set, relative to the defaults."""
    report = load_json(path)
    rows = []
    for row in report["rows"]:
        flags_cell = f"`{row['xla_flags']}`" if row["xla_flags"] else "-"
        if "error" in row:
            rows.append([row["description"], flags_cell, "refused", "-", "-"])
            continue
        rows.append(
            [
                row["description"],
                flags_cell,
                f"{row['train_step_compile_seconds']:.1f}",
                f"{row['model_steps_per_sec']:.3f}",
                f"{row['relative']:.2f}x",
            ]
        )
    header = ["flag set", "XLA_FLAGS", "step compile s", "steps/s", "relative"]
    return markdown_table(header, rows) + ["", written_by([report["command"]])]


def render_bench_dncnn(path: pathlib.Path) -> list[str]:
    """Seconds per image, FLOPs per pixel and achieved GFLOP/s of the bundled denoiser and DnCNN."""
    report = load_json(path)
    rows = [
        [
            row["model"],
            f"{row['params']:,}",
            f"{row['seconds']:.3f}",
            f"{row['flops_per_pixel']:,.0f}",
            f"{row['gflops']:.1f} ({row['fraction_of_peak']:.0%})",
        ]
        for row in report["rows"]
    ]
    header = ["model", "params", f"s per {report['size']}^2 image", "FLOPs/pixel (XLA)"]
    header.append("GFLOP/s (of matmul peak)")
    *models, dncnn = report["rows"]
    ratios = "; ".join(
        f"{dncnn['seconds'] / row['seconds']:.2f}x that of {row['model']}" for row in models
    )
    note = (
        f"XLA fp32 matmul peak in the same run: {report['matmul_gflops']:.0f} GFLOP/s "
        f"({report['machine']}). DnCNN's time per image is {ratios}."
    )
    return markdown_table(header, rows) + ["", note, "", written_by([report["command"]])]


# --- evaluate's reports ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Axis:
    """A row or column of an eval table. A cell takes each field from its row or its column.

    folder: under tools/results/eval/ (its results.json); dataset, sigma: which result of it;
    metrics: shown in the cell joined by " / "; missing: the cell's text when that folder has no
    such result (None: an error); bold: the row's cells in bold.
    """

    label: str
    folder: str | None = None
    dataset: str | None = None
    sigma: int | None = None
    metrics: tuple[str, ...] = ()
    missing: str | None = None
    bold: bool = False


@dataclasses.dataclass(frozen=True)
class EvalTable:
    """An eval table: a corner header, rows and columns; skip_absent drops rows whose folder
    is absent (else an absent folder is an error)."""

    corner: str
    rows: tuple[Axis, ...]
    columns: tuple[Axis, ...]
    skip_absent: bool = False


def eval_means(
    report: dict, dataset: str | None, sigma: int | None, missing_ok: bool = False
) -> dict | None:
    """The means of the (dataset, sigma) result in `evaluate`'s results.json; when there is
    none, None if `missing_ok`, else a ReportError naming the model."""
    found = [r for r in report["results"] if r["dataset"] == dataset and r["sigma"] == sigma]
    if not found and not missing_ok:
        raise ReportError(f"{report['model']} has no result for {dataset} sigma {sigma}")
    return found[0]["means"] if found else None


def _eval_cell(report: dict, row: Axis, column: Axis) -> str:
    """The text of one cell: the metrics of the result that the row and column select."""
    dataset = column.dataset or row.dataset
    sigma = column.sigma if column.sigma is not None else row.sigma
    means = eval_means(report, dataset, sigma, missing_ok=column.missing is not None)
    if means is None:
        return column.missing
    text = " / ".join(
        METRIC_FORMATS.get(m, "{:.4f}").format(means[m]) for m in column.metrics or row.metrics
    )
    return f"**{text}**" if row.bold else text


def render_eval(spec: EvalTable, eval_root: pathlib.Path) -> list[str]:
    """An eval table from the `results.json` of `evaluate` in folders under `eval_root`."""
    rows, commands = [], []
    for row in spec.rows:
        folders = [row.folder or column.folder for column in spec.columns]
        paths = {folder: eval_root / folder / "results.json" for folder in folders}
        if spec.skip_absent and not all(path.is_file() for path in paths.values()):
            continue
        reports = {folder: load_json(path) for folder, path in paths.items()}
        commands += [report["command"] for report in reports.values()]
        cells = [_eval_cell(reports[f], row, c) for f, c in zip(folders, spec.columns)]
        rows.append([row.label] + cells)
    header = [spec.corner] + [column.label for column in spec.columns]
    return markdown_table(header, rows) + ["", written_by(commands)]


def _sigma25_columns(template: str) -> tuple[Axis, ...]:
    """PSNR / SSIM columns of CBSD68 and Kodak24 at sigma 25."""
    return tuple(
        Axis(template.format(dataset), dataset=dataset, sigma=25, metrics=("psnr", "ssim"))
        for dataset in ("CBSD68", "Kodak24")
    )


EVAL_DENOISE_SIGMA25 = EvalTable(
    "model",
    (
        Axis("teacher (sees GT: upper reference)", "teacher_denoise"),
        Axis("restorer, teacher size (LQ only)", "restorer_denoise"),
        Axis("student, distill=restorect (λ = 0.02)", "student_restorect_loss.flex=0.02"),
        Axis("student, distill=feature_mse", "student_feature_mse"),
        Axis("student, distill=none", "student_none"),
        Axis("restorer, student size (LQ only, no priors)", "restorer_denoise_student"),
        Axis("noisy input", "input"),
    ),
    _sigma25_columns("{} σ=25 PSNR / SSIM"),
    skip_absent=True,
)

EVAL_LAMBDA_SWEEP = EvalTable(
    "student",
    (
        Axis("restorect, λ = 0.5 (METHODS' value, the config default)", "student_restorect"),
        Axis("restorect, λ = 0.02", "student_restorect_loss.flex=0.02"),
        Axis("feature_mse (weight 0.5)", "student_feature_mse"),
        Axis("none", "student_none"),
    ),
    _sigma25_columns("{}"),
)

EVAL_DENOISE_BLIND = EvalTable(
    "set",
    tuple(
        Axis(f"{dataset} PSNR / SSIM", dataset=dataset, metrics=("psnr", "ssim"))
        for dataset in ("CBSD68", "Kodak24")
    ),
    tuple(
        Axis(f"sigma {sigma}", folder="student_denoise_blind", sigma=sigma)
        for sigma in (15, 25, 50)
    ),
)

EVAL_DENOISER = EvalTable(
    "set",
    tuple(
        Axis(f"{dataset} PSNR / SSIM", dataset=dataset, metrics=("psnr", "ssim"))
        for dataset in ("CBSD68", "Kodak24", "McMaster")
    ),
    tuple(Axis(f"sigma {sigma}", folder="denoiser", sigma=sigma) for sigma in (15, 25, 50)),
)

EVAL_DERAIN = EvalTable(
    "model",
    (
        Axis("rainy input", "input_derain_lowlight"),
        Axis("teacher (its priors see GT)", "teacher_derain"),
        Axis("**bundled student**, 4 Euler steps", "student_derain", bold=True),
    ),
    tuple(
        Axis(label, dataset="Rain100H-heldout", metrics=(metric,))
        for label, metric in (
            ("PSNR", "psnr"),
            ("SSIM", "ssim"),
            ("LPIPS-Alex", "lpips_alex"),
            ("CIEDE2000", "ciede2000"),
        )
    ),
)

EVAL_LOWLIGHT = EvalTable(
    "model",
    (
        Axis("dark input", "input_derain_lowlight"),
        Axis("teacher (sees GT)", "teacher_lowlight"),
        Axis("**bundled student**, 4 Euler steps", "student_lowlight", bold=True),
    ),
    (
        Axis(
            "CBSD68-lowlight PSNR / SSIM / CIEDE2000",
            dataset="CBSD68-lowlight",
            metrics=("psnr", "ssim", "ciede2000"),
        ),
    )
    + tuple(
        Axis(
            f"{dataset} NIQE / BRISQUE / PIQE",
            dataset=dataset,
            metrics=("niqe", "brisque", "piqe"),
            missing="- (needs GT)",
        )
        for dataset in ("DICM", "LIME")
    ),
)


# --- the shipped denoiser (issue 25) -------------------------------------------------------------


def render_sweep_denoise(path: pathlib.Path) -> list[str]:
    """The architecture sweep at equal CPU time, best first, with its curve."""
    report = load_json(path)
    rows = []
    for row in sorted(report["rows"], key=lambda r: -r["cbsd68_sigma25"]["psnr"]):
        scores = row["cbsd68_sigma25"]
        rows.append(
            [
                row["candidate"],
                f"{row['params'] / 1e6:.2f}M",
                f"{row['macs_per_pixel'] / 1e6:.3f}",
                f"{row['seconds_per_512']:.2f}",
                f"{row['batch_size']} x {row['patch_size']}²",
                str(row["steps"]),
                f"{row['cpu_minutes']:.0f} ({row['wall_minutes']:.0f})",
                f"{scores['psnr']:.2f} / {scores['ssim']:.4f}",
            ]
        )
    header = (
        "candidate",
        "params",
        "M multiply-adds / pixel",
        "s / 512² image",
        "batch x crop",
        "steps",
        "CPU (wall) minutes",
        "CBSD68 σ25 PSNR / SSIM",
    )
    curve = _shown(path.with_name(path.stem + "_curve.png"))
    return [
        *markdown_table(header, rows),
        "",
        f"![held-out PSNR against training CPU minutes]({curve})",
        "",
        written_by([report["command"]]),
    ]


def render_noise_estimate(path: pathlib.Path) -> list[str]:
    """The blind noise-level estimator's error per set and sigma."""
    report = load_json(path)
    rows = [
        [
            row["dataset"],
            str(row["sigma"]),
            f"{row['mean_estimate']:.2f}",
            f"{row['bias']:+.2f}",
            f"{row['mean_abs_error']:.2f}",
            f"{row['max_abs_error']:.2f}",
            f"{row['seconds_per_image']:.3f}",
        ]
        for row in report["rows"]
    ]
    header = ("set", "σ", "mean estimate", "bias", "mean abs error", "max abs error", "s / image")
    return [*markdown_table(header, rows), "", written_by([report["command"]])]


def render_real_noise(path: pathlib.Path) -> list[str]:
    """PolyU's real camera noise (and CBSD68 sigma 25) for the input, models and CBM3D."""
    report = load_json(path)
    labels: list[str] = []
    for row in report["rows"]:
        labels += [label for label in row["scores"] if label not in labels]
    rows = [
        [
            row["row"],
            row["model"],
            *(
                f"{row['scores'][label]['psnr']:.2f} / {row['scores'][label]['ssim']:.4f}"
                if label in row["scores"]
                else "–"
                for label in labels
            ),
        ]
        for row in report["rows"]
    ]
    header = ("row", "model", *(f"{label} PSNR / SSIM" for label in labels))
    lines = [*markdown_table(header, rows), "", report["protocol"] + ".", ""]
    if len(report["commands"]) == 1:
        return [*lines, written_by([report["commands"][0]["command"]])]
    by_rows = [
        f"`{entry['command']}` (rows {', '.join(entry['rows'])})" for entry in report["commands"]
    ]
    return [*lines, "Written by: " + "; ".join(by_rows)]


def render_bench_degradation(path: pathlib.Path) -> list[str]:
    """CPU milliseconds to degrade one training batch, against the train step's CPU seconds."""
    report = load_json(path)
    rows = [
        [
            row["degradation"],
            f"{row['ms_per_batch']:.1f}",
            f"{100 * row['share_of_train_step']:.2f}%",
        ]
        for row in report["rows"]
    ]
    header = ("degradation", f"CPU ms per batch ({report['batch']})", "share of a train step")
    note = (
        f"Train step: {report['train_step_cpu_seconds']:.2f} CPU-seconds "
        f"({report['train_step_source']})."
    )
    return [*markdown_table(header, rows), "", note, "", written_by([report["command"]])]


def render_bench_startup(path: pathlib.Path) -> list[str]:
    """Import and restore start-up seconds, one column per measured checkout."""
    report = load_json(path)
    checkouts = report["checkouts"]
    header = ("seconds", *(f"{c['label']} ({c['commit']})" for c in checkouts))
    rows = [
        [name, *(f"{c['seconds'][name]:.2f}" if name in c["seconds"] else "–" for c in checkouts)]
        for name in checkouts[-1]["seconds"]
    ]
    return [*markdown_table(header, rows), "", written_by([c["command"] for c in checkouts])]


CURVE_ROWS = 12  # the curve table shows at most this many validation points, evenly spread


def curve_slope(points: Sequence[dict]) -> str:
    """The held-out PSNR gained over the last quadrupling of steps, where the curve spans one."""
    last = points[-1]
    earlier = [p for p in points if p["step"] <= last["step"] / 4]
    if not earlier:
        return "the run has not yet quadrupled its first validated step"
    base = earlier[-1]
    gain = last["psnr"] - base["psnr"]
    return f"{gain:+.2f} dB from step {base['step']} to {last['step']} ({last['step'] / base['step']:.1f}x)"


def render_denoiser_curve(path: pathlib.Path) -> list[str]:
    """The long run's curve: held-out PSNR against steps and hours, and its recent slope."""
    report = load_json(path)
    points = report["points"]
    if not points:
        raise ReportError(f"{_shown(path)} has no validation points")
    stride = max(1, -(-len(points) // CURVE_ROWS))
    shown = points[::stride] if points[-1] in points[::stride] else points[::stride] + points[-1:]
    rows = [
        [
            str(p["step"]),
            f"{p['cpu_hours']:.2f}",
            f"{p['wall_hours']:.2f}",
            f"{p['psnr']:.2f}",
            f"{p['ssim']:.4f}",
        ]
        for p in shown
    ]
    header = ("step", "CPU hours", "wall hours", "held-out PSNR", "SSIM")
    picture = _shown(path.with_suffix(".png"))
    return [
        *markdown_table(header, rows),
        "",
        f"Slope at the end: {curve_slope(points)}. Validation: {report['validation']}.",
        "",
        f"![held-out PSNR against training steps]({picture})",
        "",
        written_by([report["command"]]),
    ]


def draw_denoiser_curve(path: pathlib.Path) -> None:
    """`<path>.png`: held-out PSNR against steps (log scale), from the curve JSON."""
    import matplotlib  # only drawing needs it

    matplotlib.use("Agg")
    from matplotlib import pyplot

    points = load_json(path)["points"]
    figure, axes = pyplot.subplots(figsize=(6, 3.5))
    axes.plot([p["step"] for p in points], [p["psnr"] for p in points], "o-", markersize=3)
    axes.set_xscale("log")
    axes.set_xlabel("training step")
    axes.set_ylabel("held-out PSNR (dB)")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path.with_suffix(".png"), dpi=120)
    pyplot.close(figure)


# --- the README's summary: the bundled model of each task against its peers ---------------------


@dataclasses.dataclass(frozen=True)
class Found:
    """What a leaderboard row reads from its JSON: the model's name there, its PSNR / SSIM
    means and the command that wrote the JSON."""

    model: str
    scores: dict
    command: str


@dataclasses.dataclass(frozen=True)
class Peer:
    """One leaderboard row. path: its JSON under tools/results/; read: that JSON -> Found;
    label: the row's text, `{model}` replaced by Found.model; bold: the bundled model's row."""

    task: str
    test_set: str
    label: str
    path: str
    read: Callable[[dict], Found]
    bold: bool = False


def from_eval(dataset: str, sigma: int | None = None) -> Callable[[dict], Found]:
    """Reads one result of `evaluate`'s results.json."""

    def read(report: dict) -> Found:
        return Found(report["model"], eval_means(report, dataset, sigma), report["command"])

    return read


def from_bench(row: str, sampler: str, dataset: str) -> Callable[[dict], Found]:
    """Reads one (row, sampler) of a bench_methods / bench_slkd / bench_fluxir JSON."""

    def read(report: dict) -> Found:
        entry = report["rows"][row]
        scores = entry["by_sampler"][sampler]["scores"][dataset]
        return Found(entry.get("checkpoint", row), scores, report["command"])

    return read


def from_real_noise(row: str, label: str) -> Callable[[dict], Found]:
    """Reads one row of bench_real_noise's JSON, with the command that wrote that row."""

    def read(report: dict) -> Found:
        entry = next((r for r in report["rows"] if r["row"] == row), None)
        if entry is None:
            raise ReportError(f"bench_real_noise has no row {row!r}")
        command = next(c["command"] for c in report["commands"] if row in c["rows"])
        return Found(entry["model"], entry["scores"][label], command)

    return read


def from_sweep() -> Callable[[dict], Found]:
    """Reads the best candidate of sweep_denoise's JSON (CBSD68 at sigma 25), named with its
    steps."""

    def read(report: dict) -> Found:
        entry = max(report["rows"], key=lambda r: r["cbsd68_sigma25"]["psnr"])
        name = f"`{entry['candidate']}`@{entry['steps']}"
        return Found(name, entry["cbsd68_sigma25"], report["command"])

    return read


_DENOISE = ("denoise", "CBSD68 σ=25, RGB")
_DERAIN = ("derain", "Rain100H-heldout, Y")
_LOWLIGHT = ("low light", "CBSD68-lowlight, RGB")
_TEACHER = "RestoRect teacher ({model}; sees the clean image)"


def _timeunet_peers(task: tuple[str, str], dataset: str, note: str) -> tuple[Peer, Peer]:
    """IR-Flow's TimeUNet at 4 Euler steps and the same network as a one-step restorer, from
    the task's bench_methods JSON; `note` ends their labels."""
    path = f"bench_methods_{task[0]}_cpu.json"
    return (
        Peer(
            *task,
            f"IR-Flow TimeUNet ({{model}}{note}), 4 Euler steps",
            path,
            from_bench("irflow", "euler:4", dataset),
        ),
        Peer(
            *task,
            f"the TimeUNet as a one-step restorer ({{model}}{note})",
            path,
            from_bench("one_step", "one step", dataset),
        ),
    )


# The README's summary table: per task, the bundled model and the strongest others measured here.
LEADERBOARD = (
    Peer(
        *_DENOISE,
        "**bundled `denoise`**: blind CNN with a noise-level map, the long run ({model})",
        "eval/denoiser/results.json",
        from_eval("CBSD68", 25),
        bold=True,
    ),
    Peer(
        *_DENOISE,
        "the same long run at an earlier step ({model}; blind), before it stalled",
        "real_noise_cpu.json",
        from_real_noise("workdir:runs/denoiser", "CBSD68 σ=25"),
    ),
    Peer(
        *_DENOISE,
        "the previous `denoise` bundle: blind RestoRect student ({model})",
        "eval/student_denoise_blind/results.json",
        from_eval("CBSD68", 25),
    ),
    Peer(*_DENOISE, "sweep candidate {model} (σ 25 only)", "sweep_denoise_cpu.json", from_sweep()),
    *_timeunet_peers(_DENOISE, "CBSD68", "; σ 25 only"),
    Peer(*_DENOISE, _TEACHER, "eval/teacher_denoise/results.json", from_eval("CBSD68", 25)),
    Peer(
        *_DENOISE,
        "plain restorer, teacher size ({model}; σ 25 only)",
        "eval/restorer_denoise/results.json",
        from_eval("CBSD68", 25),
    ),
    Peer(*_DENOISE, "noisy input", "eval/input/results.json", from_eval("CBSD68", 25)),
    Peer(
        *_DERAIN,
        "**bundled `derain`**: RestoRect student ({model})",
        "eval/student_derain/results.json",
        from_eval("Rain100H-heldout"),
        bold=True,
    ),
    *_timeunet_peers(_DERAIN, "Rain100H-heldout", ""),
    Peer(
        *_DERAIN,
        "SLKD student ({model})",
        "bench_slkd_derain_cpu.json",
        from_bench("slkd", "default", "Rain100H-heldout"),
    ),
    Peer(
        *_DERAIN,
        "plain restorer, teacher size ({model}: SLKD's Teacher A)",
        "bench_slkd_derain_cpu.json",
        from_bench("teacher_a", "default", "Rain100H-heldout"),
    ),
    Peer(*_DERAIN, _TEACHER, "eval/teacher_derain/results.json", from_eval("Rain100H-heldout")),
    Peer(
        *_DERAIN,
        "rainy input",
        "eval/input_derain_lowlight/results.json",
        from_eval("Rain100H-heldout"),
    ),
    Peer(
        *_LOWLIGHT,
        "**bundled `lowlight`**: RestoRect student ({model})",
        "eval/student_lowlight/results.json",
        from_eval("CBSD68-lowlight"),
        bold=True,
    ),
    Peer(*_LOWLIGHT, _TEACHER, "eval/teacher_lowlight/results.json", from_eval("CBSD68-lowlight")),
    Peer(
        *_LOWLIGHT,
        "dark input",
        "eval/input_derain_lowlight/results.json",
        from_eval("CBSD68-lowlight"),
    ),
)


def render_leaderboard(peers: Sequence[Peer], res: pathlib.Path) -> list[str]:
    """Per task, each peer's PSNR / SSIM on the task's test set, highest PSNR first, the task
    and test set named on its first row; the commands that wrote the JSON below."""
    rows, commands, tasks = [], [], list(dict.fromkeys(peer.task for peer in peers))
    for task in tasks:
        found = [
            (peer, peer.read(load_json(res / peer.path))) for peer in peers if peer.task == task
        ]
        found.sort(key=lambda pair: -pair[1].scores["psnr"])
        for index, (peer, at) in enumerate(found):
            cells = [f"{at.scores['psnr']:.2f}", f"{at.scores['ssim']:.4f}"]
            cells = [f"**{cell}**" for cell in cells] if peer.bold else cells
            first = [peer.task, peer.test_set] if index == 0 else ["", ""]
            rows.append(first + [peer.label.format(model=at.model)] + cells)
            commands.append(at.command)
    header = ["task", "test set", "model", "PSNR", "SSIM"]
    return markdown_table(header, rows) + ["", written_by(commands)]


def _render_bench(bench: str, table: Callable[[dict], list[str]], task: str, res: pathlib.Path):
    return render_with_command(table, res / f"bench_{bench}_{task}_cpu.json")


# Marker name -> the table's lines, given the results folder.
TABLES: dict[str, Callable[[pathlib.Path], list[str]]] = {
    "plan_memory": lambda res: render_plan_memory(sorted((res / "plan_memory").glob("*.json"))),
    "gpu_lease1": lambda res: render_gpu_lease(res / "gpu" / "lease1_results.json"),
    "bench_distill": lambda res: render_bench_distill(res / "bench_distill_cpu.json"),
    "bench_train": lambda res: render_bench_train(res / "bench_train_cpu.json"),
    "speed_steps": render_speed_steps,
    "profile_teacher": render_profile_teacher,
    "bench_dncnn": lambda res: render_bench_dncnn(res / "bench_dncnn_cpu.json"),
    "bench_dncnn_denoiser": lambda res: render_bench_dncnn(res / "bench_dncnn_denoiser_cpu.json"),
    "bench_xla_flags": lambda res: render_bench_xla_flags(res / "bench_xla_flags_cpu.json"),
    **{
        f"bench_{bench}_{task}": functools.partial(_render_bench, bench, table, task)
        for bench, table in (
            ("methods", methods_table),
            ("fluxir", fluxir_table),
            ("slkd", slkd_table),
        )
        for task in ("denoise", "derain")
    },
    "eval_denoise_sigma25": lambda res: render_eval(EVAL_DENOISE_SIGMA25, res / "eval"),
    "eval_lambda_sweep": lambda res: render_eval(EVAL_LAMBDA_SWEEP, res / "eval"),
    "eval_denoise_blind": lambda res: render_eval(EVAL_DENOISE_BLIND, res / "eval"),
    "eval_denoiser": lambda res: render_eval(EVAL_DENOISER, res / "eval"),
    "eval_derain": lambda res: render_eval(EVAL_DERAIN, res / "eval"),
    "eval_lowlight": lambda res: render_eval(EVAL_LOWLIGHT, res / "eval"),
    "sweep_denoise": lambda res: render_sweep_denoise(res / "sweep_denoise_cpu.json"),
    "noise_estimate": lambda res: render_noise_estimate(res / "noise_estimate_cpu.json"),
    "denoiser_curve": lambda res: render_denoiser_curve(res / "denoiser_curve_cpu.json"),
    "real_noise": lambda res: render_real_noise(res / "real_noise_cpu.json"),
    "bench_degradation": lambda res: render_bench_degradation(res / "bench_degradation_cpu.json"),
    "bench_startup": lambda res: render_bench_startup(res / "bench_startup_cpu.json"),
    "leaderboard": functools.partial(render_leaderboard, LEADERBOARD),
}
# Tables whose picture `report.py` draws beside their JSON (when the README shows the table,
# and not under --check).
PICTURES: dict[str, Callable[[pathlib.Path], None]] = {
    "denoiser_curve": lambda res: draw_denoiser_curve(res / "denoiser_curve_cpu.json"),
}


# --- documents ------------------------------------------------------------------------------------

_LINK = re.compile(r"\]\((?![a-z]+:|/|#)(?P<target>[^)\s]+)\)")


@dataclasses.dataclass(frozen=True)
class Block:
    """The text between one marker pair: `start`/`end` are offsets into its document, `line`
    the opening marker's line."""

    name: str
    indent: str
    start: int
    end: int
    line: int


@dataclasses.dataclass(frozen=True)
class Document:
    """A markdown file with marker pairs. name: its path relative to the root, as messages and
    diffs show it; up: the link prefix from its folder back to the root ("" or "../")."""

    path: pathlib.Path
    name: str
    up: str
    text: str
    blocks: tuple[Block, ...]


def find_blocks(text: str) -> list[Block]:
    """Every marker pair of a document, in order; ReportError for an unknown or unclosed one."""
    blocks = []
    for match in _OPEN.finditer(text):
        name, indent = match["name"], match["indent"]
        line = text.count("\n", 0, match.start()) + 1
        if name not in TABLES:
            raise ReportError(f"line {line}: no renderer for table '{name}'")
        close = re.compile(rf"^[ \t]*<!-- /report:{re.escape(name)} -->", re.MULTILINE)
        end = close.search(text, match.end())
        if end is None:
            raise ReportError(f"line {line}: table '{name}' has no closing marker")
        blocks.append(Block(name, indent, match.end() + 1, end.start(), line))
    return blocks


def default_documents(root: pathlib.Path) -> list[pathlib.Path]:
    """The documents whose tables report.py renders: README.md and every docs/*.md."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def load_document(path: pathlib.Path, root: pathlib.Path) -> Document:
    """The document at `path`, named relative to `root`; ReportError naming it if it is
    missing or a marker is wrong."""
    resolved, base = path.resolve(), root.resolve()
    name = str(resolved.relative_to(base)) if resolved.is_relative_to(base) else str(path)
    if not path.is_file():
        raise ReportError(f"{name}: no such document")
    up = pathlib.Path(os.path.relpath(base, resolved.parent)).as_posix()
    text = path.read_text()
    try:
        blocks = tuple(find_blocks(text))
    except ReportError as error:
        raise ReportError(f"{name}: {error}") from None
    return Document(path, name, "" if up == "." else up + "/", text, blocks)


def check_tables(documents: Sequence[Document], partial: bool = False) -> None:
    """ReportError if a table is shown twice (in one document or two), or, unless `partial`,
    if a registered table is shown in none of `documents` (a dropped block would otherwise
    pass the check silently)."""
    first: dict[str, tuple[str, int]] = {}
    for document in documents:
        for block in document.blocks:
            if block.name in first:
                where = "{} line {}".format(*first[block.name])
                raise ReportError(
                    f"{document.name}: line {block.line}: table '{block.name}' is already "
                    f"shown at {where}; a table may appear in one document only"
                )
            first[block.name] = (document.name, block.line)
    missing = sorted(set(TABLES) - set(first))
    if missing and not partial:
        names = ", ".join(document.name for document in documents)
        raise ReportError(f"{names}: no marker pair for table(s) {', '.join(missing)}")


def relink(line: str, up: str) -> str:
    """`line` with each relative markdown link target (renderers write them from the
    repository root) prefixed with `up`, the way from the document's folder to the root."""
    return _LINK.sub(lambda match: f"]({up}{match['target']})", line) if up else line


def render_block(block: Block, results: pathlib.Path, up: str = "") -> str:
    """The text between a marker pair: a blank line, the table and its command, a blank line."""
    lines = ["", *TABLES[block.name](results), ""]
    return "".join((block.indent + relink(line, up) if line else "") + "\n" for line in lines)


def refresh(document: Document, results: pathlib.Path) -> tuple[str, list[str]]:
    """The document with every table re-rendered, and a unified diff per table that changed;
    a renderer's ReportError names the document and the marker's line."""
    text, pieces, diffs, position = document.text, [], [], 0
    for block in document.blocks:
        try:
            new = render_block(block, results, document.up)
        except ReportError as error:
            raise ReportError(f"{document.name}: line {block.line}: {error}") from None
        old = text[block.start : block.end]
        pieces += [text[position : block.start], new]
        position = block.end
        if old != new:
            diff = difflib.unified_diff(
                old.splitlines(keepends=True),
                new.splitlines(keepends=True),
                fromfile=f"{document.name} table {block.name} (as written)",
                tofile=f"{document.name} table {block.name} (rendered from JSON)",
            )
            diffs.append("".join(diff))
    return "".join(pieces) + text[position:], diffs


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line: --check, --partial, --root and the optional document paths."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "documents",
        nargs="*",
        type=pathlib.Path,
        help="only these documents (default: README.md and docs/*.md under --root)",
    )
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    parser.add_argument(
        "--partial", action="store_true", help="allow documents without every registered table"
    )
    parser.add_argument(
        "--root",
        type=pathlib.Path,
        default=REPO,
        help="the folder documents are named and linked from (default: the repository)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrites (or with --check, compares) the documents' tables; returns the exit status."""
    args = parse_args(argv)
    try:
        paths = args.documents or default_documents(args.root)
        documents = [load_document(path, args.root) for path in paths]
        check_tables(documents, args.partial)
        refreshed = [(document, *refresh(document, RESULTS)) for document in documents]
        if not args.check:
            shown = {block.name for document in documents for block in document.blocks}
            for name in sorted(shown & set(PICTURES)):
                PICTURES[name](RESULTS)
    except ReportError as error:
        print(f"report.py: {error}", file=sys.stderr)
        return 2
    if args.check:
        diffs = [diff for _, _, document_diffs in refreshed for diff in document_diffs]
        sys.stdout.write("".join(diffs))
        return 1 if diffs else 0
    for document, new_text, _ in refreshed:
        if new_text != document.text:
            document.path.write_text(new_text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
