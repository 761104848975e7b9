"""A user's mistakes on `python -m restorect_jax.main`: one line naming the key or path, exit 2."""

import os
import pathlib
import signal
import subprocess
import sys

import pytest
from conftest import run_module

from restorect_jax import cli, signals

REPO = pathlib.Path(__file__).resolve().parents[1]
SMOKE = str(REPO / "configs" / "smoke.py")


def _main(args: list[str], cwd: pathlib.Path | None = None) -> subprocess.CompletedProcess:
    if cwd is None:
        return run_module("restorect_jax.main", args)
    # No PYTHONPATH: the installed package only, as a user outside the checkout has it.
    return run_module(
        "restorect_jax.main", args, cwd=cwd, env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"}
    )


def _assert_one_line(result: subprocess.CompletedProcess, *parts: str) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    for part in parts:
        assert part in errors[0], errors[0]


@pytest.mark.parametrize(
    "override, parts",
    [
        ("--config.train.num_step=5", ["config.train.num_step does not exist", "train.num_steps"]),
        ("--config.data.patch_size=20", ["config.data.patch_size=20"]),
    ],
)
def test_config_mistakes_are_one_line(tmp_path, override, parts):
    _assert_one_line(_main([f"--config={SMOKE}", f"--workdir={tmp_path / 'w'}", override]), *parts)


def test_workdir_that_is_a_file_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _assert_one_line(_main([f"--config={SMOKE}", f"--workdir={blocker}"]), "is a file")


def test_missing_data_root_is_one_line(tmp_path):
    result = _main(
        [
            f"--config={SMOKE}",
            f"--workdir={tmp_path / 'w'}",
            "--config.data.source=folder",
            f"--config.data.root={tmp_path / 'nowhere'}",
            "--config.data.train_dir=train",
            "--config.data.val_dir=val",
        ]
    )
    _assert_one_line(result, str(tmp_path / "nowhere"), "does not exist")


def test_config_path_from_outside_the_checkout_loads(tmp_path):
    """An absolute --config from another folder still imports `configs.*` (no ModuleNotFound)."""
    result = _main(
        [f"--config={SMOKE}", f"--workdir={tmp_path / 'w'}", "--config.train.num_steps=-1"],
        cwd=tmp_path,
    )
    _assert_one_line(result, "config.train.num_steps=-1")


def _failing(argv):
    raise ZeroDivisionError("division by zero\nsecond line")


def test_an_unexpected_error_is_one_line_unless_debugging(monkeypatch, capsys):
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    with pytest.raises(SystemExit) as exit_info:
        cli.one_line_errors(_failing)([])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.strip() == (
        "error: ZeroDivisionError: division by zero (RESTORECT_DEBUG=1 shows the traceback)"
    )
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    with pytest.raises(ZeroDivisionError):
        cli.one_line_errors(_failing)([])


def _interrupted(argv: list[str]) -> None:
    raise KeyboardInterrupt


def test_once_interrupted_later_signals_are_ignored(monkeypatch, capsys):
    """A second Ctrl-C on the way out would land in JAX's exit hooks as a traceback."""
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        with pytest.raises(SystemExit) as exit_info:
            cli.one_line_errors(_interrupted)([])
        assert exit_info.value.code == 130 and "interrupted" in capsys.readouterr().err
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def test_a_stop_request_is_a_flag_and_the_previous_handler_comes_back():
    """Training in a library call (a notebook) leaves SIGTERM as it found it; the command line
    ignores further signals itself once it stops (`main`, `cli.one_line_errors`)."""
    before = signal.getsignal(signal.SIGTERM)
    try:
        stop = signals.StopSignal()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested
        stop.restore()
        assert signal.getsignal(signal.SIGTERM) is before
    finally:
        signal.signal(signal.SIGTERM, before)


def test_the_config_absl_keeps_is_the_one_checked(tmp_path):
    missing = tmp_path / "missing.py"
    result = _main(["--config", SMOKE, "--config", str(missing), f"--workdir={tmp_path / 'w'}"])
    _assert_one_line(result, f"--config {missing}", "no config file")


@pytest.mark.parametrize(
    "command", ["restorect-train", "restorect-restore", "restorect-evaluate", "restorect-export"]
)
def test_console_commands_are_installed_with_the_package(tmp_path, command):
    script = pathlib.Path(sys.executable).parent / command
    assert script.is_file(), f"{script}: reinstall with pip install -e ."
    if command == "restorect-train":  # the same one-line errors as python -m restorect_jax.main
        result = subprocess.run(
            [str(script), "--config", str(tmp_path / "missing.py"), f"--workdir={tmp_path}"],
            check=False,
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        _assert_one_line(result, "no config file")
    else:
        result = subprocess.run(
            [str(script), "--help"], check=False, capture_output=True, text=True, cwd=tmp_path
        )
        assert "--output:" in result.stdout + result.stderr  # its own flags, as python -m lists
        if command == "restorect-restore":  # says which model suits camera and phone photos
            assert "camera and phone photos" in " ".join(result.stdout.split())
