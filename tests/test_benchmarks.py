"""The benchmark scripts run end to end at toy sizes and write records the performance notes can read.

They measure nothing here: the sizes are too small for the numbers to mean anything. What is checked is that the
scripts work and that their records have the fields the appendix reads.
"""

import json
import runpy
import sys
from pathlib import Path

import nbformat
import pytest
import torch

from diffnotes import perfnotes

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run_script(name: str, args: list[str], monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", [name, *args])
    runpy.run_path(str(BENCHMARKS / name), run_name="__main__")


def test_the_gpu_script_passes_only_flags_its_benchmarks_take():
    """benchmarks/gpu_check.sh runs where time is scarce (a lent GPU): a flag renamed in a benchmark must fail here."""
    import re
    import subprocess

    for script in ("gpu_check.sh", "gpu_wheels.sh"):
        subprocess.run(["bash", "-n", str(BENCHMARKS / script)], check=True)  # the shell can parse it
    script = (BENCHMARKS / "gpu_check.sh").read_text()
    calls = re.findall(r"^run \d+ benchmarks/(\w+\.py) (.*)$", script, re.MULTILINE)
    assert {name for name, _ in calls} == {"train_throughput.py", "sample_throughput.py"}
    bar = re.findall(r'BAR="([^"]*)"', script)  # the GPU run's settings and the dry run's
    assert len(bar) == 2
    for name, args in calls:
        args = args.replace("$BAR", " ".join(bar))
        source = (BENCHMARKS / name).read_text()
        for flag in re.findall(r"(--[a-z][a-z0-9-]*)", args):
            assert f'"{flag}"' in source, f"{name} takes no {flag}"


def test_time_to_bar_measures_as_asked_and_stops_in_its_time(tmp_path, monkeypatch):
    args = ["--device", "cpu", "--batch", "2", "--steps", "1", "--rounds", "1", "--bf16", "--time-to-bar",
            "--eval-every", "1", "--quality-n", "4"]
    run_script("train_throughput.py", [*args, "--max-steps", "2", "--out", str(tmp_path / "a.json")], monkeypatch)
    run_script("train_throughput.py", [*args, "--max-steps", "9", "--max-seconds", "0.01", "--out",
                                       str(tmp_path / "b.json")], monkeypatch)
    steps, timed = (r["results"]["time_to_bar"] for r in perfnotes.load_records("train_throughput", tmp_path))
    assert steps["steps"] == 2 and steps["report"] == "bar not reached"  # two steps from scratch
    assert [p["step"] for p in steps["points"]] == [1, 2] and 0 <= steps["points"][1]["confident_fraction"] <= 1
    assert timed["steps"] == 1 and timed["report"] == "bar not reached within 0.01 s"  # it had no time for more


def test_train_throughput_writes_a_record(tmp_path, monkeypatch):
    args = ["--device", "cpu", "--batch", "2", "--steps", "1", "--rounds", "3", "--out", str(tmp_path / "t.json")]
    run_script("train_throughput.py", args, monkeypatch)
    (record,) = perfnotes.load_records("train_throughput", tmp_path)
    assert record["results"]["batch"] == 2 and "train_throughput.py" in record["command"]
    for name in ("diffnotes UNet", "diffusers UNet2DModel"):  # three rounds each, and their median
        measured = record["results"][name]
        assert len(measured["rounds"]) == 3 and measured["images_per_second"] == sorted(measured["rounds"])[1]
        assert measured["parameters_without_gradient"] == 0  # every weight trained in the timed step
    table = perfnotes.throughput_table([record])
    assert "diffnotes UNet" in table and "diffusers UNet2DModel" in table and "1.11 M" in table


def test_train_throughput_races_precisions_and_states_the_fraction_of_peak(tmp_path, monkeypatch):
    args = ["--device", "cpu", "--batch", "2", "--steps", "1", "--rounds", "2", "--precision", "fp32", "bf16",
            "--out", str(tmp_path / "t.json")]
    run_script("train_throughput.py", args, monkeypatch)
    records = {r["results"]["precision"]: r for r in perfnotes.load_records("train_throughput", tmp_path)}
    assert sorted(records) == ["bf16", "fp32"] and records["bf16"]["results"]["bf16"]
    for precision, record in records.items():
        assert record["file"] == f"t-{precision}.json" and record["results"]["raced_with"] == ["fp32", "bf16"]
        # both models in the layout the package picks for the precision on a CPU
        assert record["results"]["memory_format"] == {"fp32": "channels_last", "bf16": "contiguous_format"}[precision]
        peak = record["results"]["peak"]
        assert peak["fp32"] > 0 and "GHz" in peak["method"]
        for name in ("diffnotes UNet", "diffusers UNet2DModel"):
            measured = record["results"][name]
            expected = measured["images_per_second"] * measured["gflop_per_image"] * 1e9 / peak[precision]
            # the record rounds images per second to 0.1, which at toy sizes on a busy CPU (2 img/s) is a few per cent
            rounding = 0.05 / measured["images_per_second"] + 0.01
            assert len(measured["rounds"]) == 2
            assert measured["fraction_of_peak"] == pytest.approx(expected, rel=rounding, abs=1e-4)
    assert "bf16" in perfnotes.throughput_table(list(records.values()))


def test_latent_cost_writes_a_record_with_both_models_and_their_ratios(tmp_path, monkeypatch):
    run_script("latent_cost.py", ["--device", "cpu", "--quick", "--out", str(tmp_path / "l.json")], monkeypatch)
    (record,) = perfnotes.load_records("latent_cost", tmp_path)
    results = record["results"]
    assert results["quick"] and results["latent"]["shape"] == [4, 7, 7] and results["pixel"]["shape"] == [1, 28, 28]
    for name in ("pixel", "latent"):
        assert len(results[name]["train_rounds"]) == 2 and results[name]["train_gflop_per_image"] > 0
    ratio = results["ratio_pixel_over_latent"]
    assert ratio["train_flops"] > 3  # the latent U-Net's widths are chosen for this (the times need a quiet machine)
    assert ratio["train_flops"] == pytest.approx(
        results["pixel"]["train_gflop_per_image"] / results["latent"]["train_gflop_per_image"], rel=0.01)


def test_cpu_peak_counts_lanes_fma_units_cores_and_clock(monkeypatch):
    peak = perfnotes.cpu_peak_flops()
    assert peak["fp32"] == pytest.approx(peak["cores"] * peak["clock_ghz"] * 1e9 * peak["fp32_per_cycle"])
    assert peak["fp32_per_cycle"] in (16, 32, 64) and peak["bf16"] >= peak["fp32"]
    monkeypatch.setattr(perfnotes.torch, "get_num_threads", lambda: 1)
    assert perfnotes.cpu_peak_flops()["cores"] == 1


def test_sample_throughput_writes_a_record(tmp_path, monkeypatch):
    args = ["--device", "cpu", "--batch", "2", "--steps", "2", "--rounds", "2", "--out", str(tmp_path / "s.json")]
    run_script("sample_throughput.py", args, monkeypatch)
    (record,) = perfnotes.load_records("sample_throughput", tmp_path)
    runs = record["results"]["runs"]
    assert [r["sampler"] for r in runs] == ["diffnotes ddim_sample", "diffusers DDIMScheduler"]
    assert all(len(r["rounds"]) == 2 and r["images_per_second"] > 0 for r in runs)


def test_notebook_times_writes_a_record(tmp_path, monkeypatch):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import os\nassert os.environ['DIFFNOTES_PROFILE'] == 'quick'")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "tiny.ipynb")
    run_script("notebook_times.py", [str(tmp_path / "tiny.ipynb"), "--out", str(tmp_path / "n.json")], monkeypatch)
    (record,) = perfnotes.load_records("notebook_times", tmp_path)
    assert list(record["results"]["seconds"]) == ["tiny.ipynb"] and record["results"]["threads"] == 1


def test_ddim_table_writes_a_record(tmp_path, monkeypatch):
    from diffnotes import pretrained
    from diffnotes.evaluation import table

    args = ["--device", "cpu", "--n", "4", "--steps", "1", "2", "--etas", "0", "1", "--out", str(tmp_path / "d.json")]
    run_script("ddim_table.py", args, monkeypatch)
    (record,) = perfnotes.load_records("ddim_table", tmp_path)
    cells = [table.cell_from_dict(c) for c in record["results"]["cells"]]
    assert [(c.steps, c.eta) for c in cells] == [(1, 0.0), (2, 0.0), (1, 1.0), (2, 1.0)]
    assert record["results"]["model_sha256"] == pretrained.DIGITS_SHA256


def test_ddim_table_parts_merge_into_the_table_of_one_run(tmp_path, monkeypatch):

    common = ["--device", "cpu", "--n", "3", "--steps", "1", "2"]
    for name, etas in (("whole", ["0", "1"]), ("part0", ["0"]), ("part1", ["1"]), ("other_n", ["1"])):
        n = ["--n", "2"] if name == "other_n" else []
        run_script("ddim_table.py", [*common, *n, "--etas", *etas, "--out", str(tmp_path / f"{name}.json")], monkeypatch)
    parts = [str(tmp_path / f"{name}.json") for name in ("part1", "part0")]
    run_script("ddim_table.py", ["--merge", *parts, "--out", str(tmp_path / "merged.json")], monkeypatch)
    whole, merged = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("whole", "merged"))

    def without_timing(record):
        return [{k: v for k, v in cell.items() if k != "seconds_per_image"} for cell in record["results"]["cells"]]

    assert without_timing(merged) == without_timing(whole)  # the same cells, in the same order, to the last digit
    assert [part["command"] for part in merged["results"]["parts"]] == [
        json.loads(Path(p).read_text())["command"] for p in parts]
    assert merged["kind"] == "ddim_table" and merged["machine"] == whole["machine"]
    script = runpy.run_path(str(BENCHMARKS / "ddim_table.py"))
    records = {name: json.loads((tmp_path / f"{name}.json").read_text()) for name in ("part0", "part1", "other_n")}
    with pytest.raises(ValueError, match="must share n"):
        script["merge"]([records["part0"], records["other_n"]])
    with pytest.raises(ValueError, match=r"more than once: \[\(0.0, 1\), \(0.0, 2\)\]"):
        script["merge"]([records["part0"], records["part0"]])
    with pytest.raises(ValueError, match="kind 'notebook_times'"):
        script["merge"]([records["part0"], perfnotes.new_record("notebook_times", {})])


def test_shipped_quality_writes_a_record(tmp_path, monkeypatch):
    from diffnotes import pretrained

    run_script("shipped_quality.py", ["--n", "4", "--steps", "1", "--out", str(tmp_path / "q.json")], monkeypatch)
    (record,) = perfnotes.load_records("shipped_quality", tmp_path)
    results = record["results"]
    assert results["protocol"] == {**pretrained.QUALITY_PROTOCOL, "n": 4, "steps": 1} and results["report"]["n"] == 4
    assert results["reproduces_record"] is None  # another protocol than the record's: measured, not compared
    assert results["model_sha256"] == pretrained.DIGITS_SHA256
    script = runpy.run_path(str(BENCHMARKS / "shipped_quality.py"))
    recorded = pretrained.digits_provenance()["quality"]
    report = quality_report(recorded)
    assert script["reproduces"](report, recorded)
    assert not script["reproduces"](quality_report({**recorded, "frechet_distance": recorded["frechet_distance"] * 1.06}), recorded)


def quality_report(fields: dict):
    from diffnotes.evaluation.quality import QualityReport

    return QualityReport(**{k: fields[k] for k in QualityReport.__dataclass_fields__})


def _tiny_checkpoint(path: Path) -> None:
    """A checkpoint of a tiny U-Net after a few training steps on random digit-shaped images."""
    import torch
    from conftest import TINY_UNET

    from diffnotes import schedules
    from diffnotes.nets.unet import UNet
    from diffnotes.training import TrainConfig, train

    torch.manual_seed(0)
    config = TrainConfig(steps=2, batch_size=2, warmup_steps=1, checkpoint_every=2, mixed_precision="fp32")
    train(UNet(TINY_UNET), torch.rand(8, 1, 28, 28) * 2 - 1, schedules.linear(T=1000), config, checkpoint=path,
          progress=False)


def test_quality_curve_measures_each_checkpoint_in_the_order_written(tmp_path, monkeypatch):
    import os

    first, second = tmp_path / "a.pt", tmp_path / "b.pt"
    _tiny_checkpoint(second)
    _tiny_checkpoint(first)
    os.utime(second, (1_000_100, 1_000_100))
    os.utime(first, (1_000_040, 1_000_040))
    args = [str(second), str(first), "--started", "1000000", "--n", "4", "--steps", "1", "--out", str(tmp_path / "c.json")]
    run_script("quality_curve.py", args, monkeypatch)
    (record,) = perfnotes.load_records("quality_curve", tmp_path)
    points = record["results"]["points"]
    assert [p["checkpoint"] for p in points] == ["a.pt", "b.pt"] and [p["training_seconds"] for p in points] == [40, 100]
    assert all(p["step"] == 2 and p["report"]["n"] == 4 and p["meets_bar"] is False for p in points)
    assert record["results"]["first_at_bar"] is None and record["results"]["protocol"]["n"] == 4
    assert record["results"]["variant"] is None
    run_script("quality_curve.py", args[:-1] + [str(tmp_path / "v.json"), "--variant", "no Min-SNR"], monkeypatch)
    assert {r["results"]["variant"] for r in perfnotes.load_records("quality_curve", tmp_path)} == {None, "no Min-SNR"}


def test_time_to_bar_times_both_recipes_and_reads_the_steps_from_the_curve(tmp_path, monkeypatch):
    curve = {"results": {"protocol": {"n": 200}, "points": [
        {"step": 500, "meets_bar": False, "report": {"confident_fraction": 0.5}},
        {"step": 1500, "meets_bar": True, "report": {"confident_fraction": 0.93}},
        {"step": 1000, "meets_bar": False, "report": {"confident_fraction": 0.85}}]}}
    (tmp_path / "curve.json").write_text(json.dumps(curve))
    args = ["--curve", str(tmp_path / "curve.json"), "--rounds", "1", "--steps", "1", "--out", str(tmp_path / "t.json")]
    run_script("time_to_bar.py", args, monkeypatch)
    (record,) = perfnotes.load_records("time_to_bar", tmp_path)
    results = record["results"]
    assert results["new_steps_to_old_quality"] == 1000 and results["new_steps_to_bar"] == 1500
    per_step = results["seconds_per_step"]
    assert results["old_seconds_to_its_quality"] == pytest.approx(8400 * per_step["old"], abs=1)
    assert results["old_time_to_its_quality_over_new_time_to_bar"] == pytest.approx(8400 * per_step["old"] / (1500 * per_step["new"]), rel=0.02)


def test_train_options_races_every_variant_against_the_package_step(tmp_path, monkeypatch):
    args = ["--precision", "fp32", "--batch", "2", "--rounds", "3", "--steps", "1", "--warmup", "2",
            "--out", str(tmp_path / "o.json")]
    threads = torch.get_num_threads()
    run_script("train_options.py", args, monkeypatch)
    assert torch.get_num_threads() == threads  # the one-thread variant gives the threads back
    (record,) = perfnotes.load_records("train_options", tmp_path)
    variants = record["results"]["variants"]
    assert list(variants) == ["package", "channels_last", "contiguous", "fused AdamW", "foreach AdamW", "one thread"]
    assert record["results"]["package_memory_format"] == "channels_last"  # float32 on a CPU
    assert variants["package"]["ratio_to_package"] == 1.0
    for v in variants.values():  # three rounds each, and their median; every weight trained
        assert len(v["rounds"]) == 3 and v["images_per_second"] == sorted(v["rounds"])[1]
        assert v["parameters_without_gradient"] == 0
