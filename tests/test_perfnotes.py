"""The performance notes' records: written atomically, read back by kind and date, shown as tables."""

import json
import os
from datetime import date

import pytest
import torch

from diffnotes import perfnotes


def test_records_round_trip_by_kind_and_date(tmp_path):
    older = {**perfnotes.new_record("train_throughput", {"a": 1}), "date": "2026-01-02"}
    newer = {**perfnotes.new_record("train_throughput", {"a": 2}), "date": "2026-03-04"}
    perfnotes.write_record(tmp_path / "z.json", older)
    perfnotes.write_record(tmp_path / "a.json", newer)
    perfnotes.write_record(tmp_path / "other.json", perfnotes.new_record("notebook_times", {}))
    records = perfnotes.load_records("train_throughput", tmp_path)
    assert [r["results"]["a"] for r in records] == [1, 2] and [r["file"] for r in records] == ["z.json", "a.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "other.json", "z.json"]  # no temporary left
    assert json.loads((tmp_path / "a.json").read_text())["machine"] == perfnotes.machine()


def test_records_keep_to_the_kind_of_machine_asked_for(tmp_path, monkeypatch):
    perfnotes.write_record(tmp_path / "cpu.json", perfnotes.new_record("sample_throughput", {"a": 1}))
    monkeypatch.setattr(perfnotes, "machine", lambda: "NVIDIA H100 80GB HBM3 (CUDA 13.0)")  # as machine() names one
    perfnotes.write_record(tmp_path / "gpu.json", perfnotes.new_record("sample_throughput", {"a": 2}))
    assert [r["file"] for r in perfnotes.load_records("sample_throughput", tmp_path)] == ["cpu.json", "gpu.json"]
    assert [r["file"] for r in perfnotes.load_records("sample_throughput", tmp_path, on="cpu")] == ["cpu.json"]
    assert [r["file"] for r in perfnotes.load_records("sample_throughput", tmp_path, on="gpu")] == ["gpu.json"]
    with pytest.raises(ValueError, match="on='cuda' is not a kind of machine; valid choices are: cpu, gpu"):
        perfnotes.load_records("sample_throughput", tmp_path, on="cuda")


def test_the_thread_count_is_read_from_a_machine_description():
    if not torch.cuda.is_available():  # a GPU's description names no threads
        assert perfnotes.threads(perfnotes.machine()) == torch.get_num_threads()
    assert perfnotes.threads("Intel(R) Xeon(R) Processor, 2 cores, 1 thread") == 1
    assert perfnotes.threads("Xeon, 2 cores, 2 threads; EPYC, 4 cores, 2 threads") == 2  # a resumed run
    with pytest.raises(ValueError, match="ran different numbers of threads"):
        perfnotes.threads("Xeon, 2 cores, 2 threads; Xeon, 2 cores, 1 thread")
    with pytest.raises(ValueError, match="no thread count in the machine description 'NVIDIA H100"):
        perfnotes.threads("NVIDIA H100 80GB HBM3 (CUDA 13.0)")


def test_a_record_names_its_machine_command_and_version(monkeypatch):
    monkeypatch.setattr("sys.argv", ["benchmarks/notebook_times.py", "--profile", "quick"])
    results = {"seconds": {"ch01": 3.5}}
    record = perfnotes.new_record("notebook_times", results)
    assert record["kind"] == "notebook_times" and record["results"] == results
    assert record["command"] == "python benchmarks/notebook_times.py --profile quick"
    assert record["torch"] == torch.__version__ and record["date"] == date.today().isoformat()
    cores = f"{os.cpu_count()} cores, {torch.get_num_threads()} thread"
    assert record["machine"] == perfnotes.machine() and (cores in record["machine"] or "CUDA" in record["machine"])


def test_bad_input_gets_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="kind must be an identifier"):
        perfnotes.new_record("train throughput", {})
    with pytest.raises(FileNotFoundError, match="from a checkout"):
        perfnotes.load_records("train_throughput", tmp_path / "missing")
    with pytest.raises(ValueError, match="every row must have 2 cells"):
        perfnotes.markdown_table(["a", "b"], [[1, 2], [3]])


def test_markdown_table():
    assert perfnotes.markdown_table(["S", "s/img"], [[10, 0.5]]) == "| S | s/img |\n|---|---|\n| 10 | 0.5 |"


def test_tables_from_records():
    run = perfnotes.new_record("train_throughput", {
        "batch": 64, "bf16": False, "compile": False,
        "ours": {"parameters": 1_112_801, "images_per_second": 94.5}, "theirs": {"parameters": 2e6, "images_per_second": 99.0},
    })
    other = {**perfnotes.new_record("train_throughput", {"batch": 8, "bf16": True, "compile": True, "memory_format": "channels_last",
                                                        "ours": {"parameters": 1_112_801, "images_per_second": 5e4,
                                                                 "rounds": [49_000.4, 5e4, 51_200]}}),
             "machine": "a GPU"}
    first, second = perfnotes.throughput_table([run, other, {**run, "date": "2026-01-01"}]).split("\n\n" + "Images")
    first = first.splitlines()
    assert first[0].startswith(f"Images per second on **{run['machine']}** (PyTorch {run['torch']}; 2026-01-01, ")
    # a record from before the layout was recorded ran in the default one
    assert first[2:] == ["| batch | precision | layout | compiled | ours (1.11 M) | theirs (2.00 M) |",
                         "|---|---|---|---|---|---|",
                         "| 64 | fp32 | default | no | 94 | 99 |", "| 64 | fp32 | default | no | 94 | 99 |"]
    assert second.splitlines()[2:] == ["| batch | precision | layout | compiled | ours (1.11 M) |", "|---|---|---|---|---|",
                                       "| 8 | bf16 | channels-last | yes | 50,000 (49,000-51,200) |"]
    times = perfnotes.new_record("notebook_times", {"seconds": {"a.ipynb": 12.0, "b.ipynb": 75.5}})
    assert perfnotes.notebook_table(times).splitlines()[2:] == ["| a.ipynb | 12.0 | yes |", "| b.ipynb | 75.5 | **no** |"]


def test_training_table_from_a_provenance_record():
    made = {"steps": 8000, "train_config": {"batch_size": 64}, "seconds": 7200.0, "device": "a CPU"}
    row = perfnotes.training_table(made).splitlines()[2]
    assert row == "| 8,000 | 64 | 512,000 | 102 | 2.00 | 71 | a CPU |"


def test_quality_curve_table_lists_the_checkpoints_in_step_order():
    def point(step, confident, bar):
        report = {"confident_fraction": confident, "class_fractions": [0.08, 0.12], "frechet_distance": 7.25}
        return {"step": step, "training_seconds": 60 * step // 100, "images_seen": 128 * step, "report": report,
                "meets_bar": bar}

    record = {"results": {"points": [point(2000, 0.915, True), point(1000, 0.8, False)]}}
    rows = perfnotes.quality_curve_table(record).splitlines()[2:]
    assert rows == ["| 1,000 | 10 | 128,000 | 80.0% | 8.0% to 12.0% | 7.2 | no |",
                    "| 2,000 | 20 | 256,000 | 91.5% | 8.0% to 12.0% | 7.2 | **yes** |"]


def test_first_point_is_the_earliest_step_that_reaches_a_level_whatever_the_order():
    points = [{"step": s, "report": {"confident_fraction": c}} for s, c in [(3000, 0.86), (1000, 0.7), (2000, 0.86)]]
    reached = lambda p: p["report"]["confident_fraction"] >= 0.85  # noqa: E731
    assert perfnotes.first_point(points, reached)["step"] == 2000
    assert perfnotes.first_point(points, lambda p: p["report"]["confident_fraction"] > 0.9) is None


def test_take_turns_reverses_the_order_every_round_and_keeps_each_runs_numbers():
    order = []

    def measure(name):
        order.append(name)
        return float(len(order))

    measured = perfnotes.take_turns(["a", "b", "c"], measure, rounds=3)
    assert order == ["a", "b", "c", "c", "b", "a", "a", "b", "c"]
    assert measured == {"a": [1.0, 6.0, 7.0], "b": [2.0, 5.0, 8.0], "c": [3.0, 4.0, 9.0]}


def test_curves_at_steps_table_puts_runs_side_by_side_and_leaves_unreached_steps_empty():
    def curve(*shares):
        return {"results": {"points": [{"step": 1000 * (i + 1), "report": {"confident_fraction": c}}
                                       for i, c in enumerate(shares)]}}

    table = perfnotes.curves_at_steps_table({"a": curve(0.7, 0.78, 0.81), "b": curve(0.655)}, [1000, 3000])
    assert table.splitlines() == ["| recipe | step 1,000 | step 3,000 |", "|---|---|---|",
                                  "| a | 70.0% | 81.0% |", "| b | 65.5% |  |"]
