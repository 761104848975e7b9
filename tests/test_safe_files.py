"""The one rule for files the project writes: never replaced unless asked, never half-written."""

import errno
import os
import threading

import pytest

from restorect_jax import safe_files


def test_a_taken_name_is_an_error_or_numbered_and_never_replaced(tmp_path):
    target = tmp_path / "a.txt"
    assert safe_files.write_text_new(target, "first") == target
    with pytest.raises(safe_files.FileTakenError, match=r"a.txt exists \(pass --overwrite"):
        safe_files.write_text_new(target, "second")
    assert safe_files.write_text_new(target, "second", on_taken="number") == tmp_path / "a_2.txt"
    assert safe_files.write_text_new(target, "third", on_taken="number") == tmp_path / "a_3.txt"
    assert target.read_text() == "first"
    safe_files.write_text_new(target, "replaced", overwrite=True)
    assert target.read_text() == "replaced"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "a_2.txt", "a_3.txt"]


def test_a_failed_write_leaves_nothing(tmp_path):
    def half_then_fail(path):
        path.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        safe_files.write_new(tmp_path / "a.txt", half_then_fail)
    assert not list(tmp_path.iterdir())


def test_the_temporary_name_is_short_and_unique(tmp_path):
    target = tmp_path / ("x" * 251 + ".png")  # 255 bytes: the longest legal name
    names = {safe_files.temporary_path(target).name for _ in range(100)}
    assert len(names) == 100 and all(len(name) < 32 for name in names)
    assert all(name.startswith(f".{os.getpid()}-") for name in names)


def test_without_hard_links_the_name_is_still_claimed_exclusively(tmp_path, monkeypatch):
    def no_links(source, target):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(safe_files.os, "link", no_links)
    target = tmp_path / "a.txt"
    safe_files.write_text_new(target, "first")
    assert safe_files.write_text_new(target, "second", on_taken="number").name == "a_2.txt"
    assert target.read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "a_2.txt"]


def test_concurrent_writers_of_one_name_lose_nothing(tmp_path):
    target, written = tmp_path / "a.txt", []

    def write(text):
        written.append(safe_files.write_text_new(target, text, on_taken="number"))

    threads = [threading.Thread(target=write, args=(str(i),)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(written)) == 8
    assert sorted(path.read_text() for path in written) == [str(i) for i in range(8)]
