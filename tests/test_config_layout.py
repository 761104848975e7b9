"""The method-neutral config layout: a base, tasks, one section per method, and old runs' configs.

`tests/data/old_configs/` holds configs as runs saved them before the layout changed (the
method's keys at the top level: `loss`, `distill`, `flow`, `train.phase1_steps`); the bundled
weights under `restorect_jax/weights/` carry the same old layout.
"""

import importlib
import json
import pathlib

import pytest

from configs import base, tasks
from restorect_jax import command_line, config_lib, methods, run_config

ROOT = pathlib.Path(__file__).resolve().parents[1]
OLD_CONFIGS = ROOT / "tests" / "data" / "old_configs"
BUNDLES = sorted((ROOT / "restorect_jax" / "weights").glob("*/config.json"))
METHOD_KEYS = ("loss", "distill", "flow")


def _flat(config) -> dict:
    return run_config.flatten(config.to_dict())


@pytest.mark.parametrize("path", sorted(OLD_CONFIGS.glob("*.json")), ids=lambda path: path.stem)
def test_an_old_run_config_loads_as_todays_config_of_the_same_name(path):
    loaded = config_lib.config_from_json(path.read_text())
    today = importlib.import_module(f"configs.{path.stem}").get_config()
    assert _flat(loaded) == _flat(today)


@pytest.mark.parametrize("path", BUNDLES, ids=lambda path: path.parent.name)
def test_every_bundled_config_loads_into_todays_layout(path):
    saved = json.loads(path.read_text())
    config = config_lib.config_from_json(path.read_text())
    assert not set(METHOD_KEYS) & set(config.keys())
    assert "phase1_steps" not in config.train
    section = config[config.method]
    if "loss" in saved:  # saved before the method sections existed
        assert run_config.flatten(section.loss.to_dict()) == run_config.flatten(saved["loss"])
    if "phase1_steps" in saved["train"]:
        assert section.phase1_steps == saved["train"]["phase1_steps"]
    # The method's own checks (older bundles predate some shared keys, e.g. mesh.shard_params,
    # which prediction never reads; a bundle drops its teacher's path).
    config.frozen = {"teacher": "runs/teacher"}
    methods.get_method(config.method).validate_config(config)


def test_some_bundle_is_saved_in_the_old_layout():
    """The bundles above cover the upgrade only while one of them is older than the layout."""
    assert any(set(METHOD_KEYS) & set(json.loads(path.read_text())) for path in BUNDLES)


def test_a_renamed_method_and_a_teachers_inherited_keys_are_upgraded():
    teacher = json.loads((OLD_CONFIGS / "smoke.json").read_text())
    teacher["method"] = "teacher"  # the RestoRect teacher's name before it was renamed
    config = config_lib.config_from_json(json.dumps(teacher))
    assert config.method == "restorect_teacher" and "loss" not in config
    assert _flat(config.restorect_teacher.loss) == run_config.flatten(teacher["loss"])
    irflow = json.loads((OLD_CONFIGS / "irflow_smoke.json").read_text())
    assert "loss" in irflow  # inherited from the teacher's config, never read
    config = config_lib.config_from_json(json.dumps(irflow))
    assert "loss" not in config and "loss" not in config.irflow


def test_a_run_saved_in_the_old_layout_resumes_and_keeps_its_old_config(tmp_path):
    (tmp_path / "checkpoints" / "7").mkdir(parents=True)
    old_text = (OLD_CONFIGS / "restorect_smoke.json").read_text()
    (tmp_path / "config.json").write_text(old_text)
    config = importlib.import_module("configs.restorect_smoke").get_config()
    run_config.record(config, tmp_path)  # no RunConfigError: the same model
    assert (tmp_path / "config_until_step_7.json").read_text() == old_text
    assert json.loads((tmp_path / "config.json").read_text())["restorect"]["phase1_steps"] == 3


def test_the_base_and_the_tasks_name_no_method():
    for config in (base.get_config(), *(task() for task in tasks.TASKS.values()), tasks.smoke()):
        assert config.method == "" and "model" not in config
        assert not set(METHOD_KEYS) & set(config.keys())
    with pytest.raises(ValueError, match="task 'deblur' is unknown"):
        tasks.bench("deblur")


def test_each_method_keeps_its_keys_in_the_section_named_after_it():
    names = ("smoke", "restorect_smoke", "restorer_smoke", "irflow_smoke", "slkd_smoke")
    for name in (*names, "fluxir_smoke"):
        config = importlib.import_module(f"configs.{name}").get_config()
        sections = {key for key in config if key not in base.get_config()} - {"model"}
        assert sections == {config.method}, (name, sections)


@pytest.mark.parametrize(
    "override, moved",
    [
        ("distill=none", "restorect.distill"),
        ("loss.flex=0.1", "restorect.loss.flex"),
        ("train.phase1_steps=5", "restorect.phase1_steps"),
    ],
)
def test_an_old_override_key_names_its_new_place(override, moved):
    error = command_line.check_training_command(
        ["--config", str(ROOT / "configs" / "restorect_smoke.py"), f"--config.{override}"]
    )
    assert error is not None and error.endswith(f"did you mean {moved}?"), error
