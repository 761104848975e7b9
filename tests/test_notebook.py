"""notebooks/evaluate.ipynb runs top to bottom (nbclient) on two tiny images made here."""

import pathlib

import nbformat
import numpy as np
from nbclient import NotebookClient
from PIL import Image

NOTEBOOK = pathlib.Path(__file__).resolve().parents[1] / "notebooks" / "evaluate.ipynb"


def test_evaluation_notebook_executes(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "denoise" / "test" / "CBSD68"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(2):
        smooth = np.cumsum(rng.normal(0, 6, (48, 64, 3)), axis=0) + 128
        Image.fromarray(np.clip(smooth, 0, 255).astype(np.uint8)).save(folder / f"{index}.png")
    monkeypatch.setenv("RESTORECT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("NOTEBOOK_MAX_IMAGES", "2")
    monkeypatch.setenv("NOTEBOOK_TFDS_DIR", str(tmp_path / "tfds"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()
    outputs = "".join(
        output.get("text", "") + str(output.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert "2 images of CBSD68" in outputs
    assert "| noisy input | CBSD68 | 2 |" in outputs
    assert "(euler:4) | CBSD68 | 2 |" in outputs  # the model row names its sampler
    assert any(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )
