"""Atomic writes (diffnotes.files): a file is replaced whole or not at all."""

import json
import os

import pytest

from diffnotes.files import write_atomically, write_json


def test_a_write_replaces_the_file_whole_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "deep" / "folder" / "f.bin"
    assert write_atomically(path, lambda f: f.write(b"first")) == path
    write_atomically(path, lambda f: f.write(b"second, longer"))
    assert path.read_bytes() == b"second, longer"
    assert os.listdir(path.parent) == ["f.bin"]


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_an_interrupted_write_keeps_the_old_file(tmp_path, error):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")

    def half_then_fail(f):
        f.write(b"half of the new")
        raise error

    with pytest.raises(type(error)):
        write_atomically(path, half_then_fail)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["f.bin"]


def test_write_json_round_trips_and_refuses_what_json_cannot_hold(tmp_path):
    path = tmp_path / "r.json"
    write_json(path, {"a": [1, 2.5, "x"], "é": None})
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": [1, 2.5, "x"], "é": None}
    assert path.read_text(encoding="utf-8").endswith("}\n")
    with pytest.raises(TypeError):
        write_json(path, {"a": object()})
    assert json.loads(path.read_text(encoding="utf-8"))["a"] == [1, 2.5, "x"] and os.listdir(tmp_path) == ["r.json"]
