"""Merges `evaluate` reports into one markdown table: a row per (set, model), a column per metric.

python tools/collect_eval.py eval/input/results.json eval/teacher_denoise/results.json ...
"""

import json
import pathlib
import sys

from restorect_jax.metrics import registry


def main(paths: list[str]) -> None:
    rows, names = [], []
    for path in paths:
        report = json.loads(pathlib.Path(path).read_text())
        for result in report["results"]:
            rows.append((result["label"], report["model"], result["images"], result["means"]))
            names += [name for name in result["means"] if name not in names]
    order = {label: index for index, (label, *_) in reversed(list(enumerate(rows)))}
    rows.sort(key=lambda row: order[row[0]])
    header = " | ".join(
        registry.METRICS[n].label + (" ↑" if registry.METRICS[n].higher_is_better else " ↓")
        for n in names
    )
    print(f"| set | model | images | {header} |")
    print("|" + "---|" * (len(names) + 3))
    for label, model, images, means in rows:
        cells = " | ".join(f"{means[n]:.4f}" if n in means else "" for n in names)
        print(f"| {label} | {model} | {images} | {cells} |")


if __name__ == "__main__":
    main(sys.argv[1:])
