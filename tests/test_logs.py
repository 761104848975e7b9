"""What reaches the terminal: the project's lines, and other libraries' warnings without
tracebacks; never Orbax's. A run's log file keeps everything."""

import io
import logging
import sys

import pytest
from absl import logging as absl_logging

from restorect_jax import logs, run_config


def _record(path: str, level: int, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("absl", level, path, 1, "message", None, exc_info)


@pytest.fixture
def quiet_verbosity():
    before = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.INFO)
    yield
    absl_logging.set_verbosity(before)


def test_the_terminal_keeps_the_projects_lines_and_library_warnings_only(quiet_verbosity):
    keep = logs.TerminalFilter().filter
    library = "/venv/lib/python3.11/site-packages/tensorflow_datasets/core/x.py"
    orbax = "/venv/lib/python3.11/site-packages/orbax/checkpoint/x.py"
    assert keep(_record(logs._PACKAGE_DIR + "/train.py", logging.INFO))
    assert not keep(_record(library, logging.INFO))
    assert keep(_record(library, logging.WARNING))
    try:
        raise RuntimeError("background")
    except RuntimeError:
        failure = sys.exc_info()
    assert not keep(_record(library, logging.ERROR, failure))
    assert not keep(_record(orbax, logging.ERROR))
    absl_logging.set_verbosity(1)  # -v 1: everything
    assert keep(_record(orbax, logging.INFO))


class _FullDisk(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(28, "No space left on device")


def test_the_log_file_keeps_every_record_and_survives_a_full_disk(tmp_path):
    handler = logs.add_file(tmp_path / "train.log")
    logger = logging.getLogger("restorect_test")
    logger.setLevel(logging.INFO)
    try:
        logger.info("kept in the file")
        handler.stream.flush()
        handler.stream = _FullDisk()
        logger.info("lost, quietly")  # no "--- Logging error ---" traceback, and no more tries
        assert handler.level > logging.CRITICAL
    finally:
        logs.remove_file(handler)
    assert "kept in the file" in (tmp_path / "train.log").read_text()


def test_only_model_keys_that_both_configs_hold_can_refuse_a_resume():
    saved = {"method": "restorer", "model": {"width": 8}, "train": {"num_steps": 10}}
    newer = {
        "method": "restorer",
        "model": {"width": 8, "noise_map": False},
        "train": {"num_steps": 20},
    }
    assert run_config.changed_model_keys(saved, newer) == []  # an added key keeps its default
    assert run_config.changed_model_keys(saved, {**newer, "model": {"width": 16}}) == [
        "model.width"
    ]
    assert run_config.changed_model_keys(saved, {**newer, "method": "irflow"}) == ["method"]
