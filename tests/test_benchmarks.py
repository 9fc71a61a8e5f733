"""The benchmark scripts run end to end at toy sizes and write records the performance notes can read.

They measure nothing here: the sizes are too small for the numbers to mean anything. What is checked is that the
scripts work and that their records have the fields the appendix reads.
"""

import runpy
import sys
from pathlib import Path

import nbformat
import pytest

from diffnotes import perfnotes

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run_script(name: str, args: list[str], monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", [name, *args])
    runpy.run_path(str(BENCHMARKS / name), run_name="__main__")


def test_train_throughput_writes_a_record(tmp_path, monkeypatch):
    run_script("train_throughput.py", ["--device", "cpu", "--batch", "2", "--steps", "1", "--out", str(tmp_path / "t.json")],
               monkeypatch)
    (record,) = perfnotes.load_records("train_throughput", tmp_path)
    assert record["results"]["batch"] == 2 and "train_throughput.py" in record["command"]
    table = perfnotes.throughput_table([record])
    assert "diffnotes UNet" in table and "diffusers UNet2DModel" in table and "1.11 M" in table


def test_notebook_times_writes_a_record(tmp_path, monkeypatch):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import os\nassert os.environ['DIFFNOTES_PROFILE'] == 'quick'")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "tiny.ipynb")
    run_script("notebook_times.py", [str(tmp_path / "tiny.ipynb"), "--out", str(tmp_path / "n.json")], monkeypatch)
    (record,) = perfnotes.load_records("notebook_times", tmp_path)
    assert list(record["results"]["seconds"]) == ["tiny.ipynb"] and record["results"]["threads"] == 1


def test_ddim_table_writes_a_record(tmp_path, monkeypatch):
    from diffnotes import ddim, pretrained

    if not pretrained.digits_model_available():
        pytest.fail("the DDIM table benchmark needs the shipped digit model")
    args = ["--device", "cpu", "--n", "4", "--steps", "1", "2", "--etas", "0", "1", "--out", str(tmp_path / "d.json")]
    run_script("ddim_table.py", args, monkeypatch)
    (record,) = perfnotes.load_records("ddim_table", tmp_path)
    cells = [ddim.cell_from_dict(c) for c in record["results"]["cells"]]
    assert [(c.steps, c.eta) for c in cells] == [(1, 0.0), (2, 0.0), (1, 1.0), (2, 1.0)]
    assert record["results"]["model_sha256"] == pretrained.DIGITS_SHA256
