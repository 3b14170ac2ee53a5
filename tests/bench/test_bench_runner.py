"""The benchmark harness's bookkeeping: interleaving, statistics, ratios, table and JSON (no timing asserted)."""

import math

import pytest

from convstack.bench import runner
from convstack.bench.runner import Result, Workload


def fake_workload(log, name="fake", group="layer", torch_fails=False, scale=1.0):
    def setup_convstack(context):
        return lambda: log.append("convstack") or 0.004

    def setup_torch(context, torch):
        def rep():
            if torch_fails:
                raise RuntimeError("no kernel\nfor this")
            log.append("pytorch")
            return 0.002

        return rep

    return Workload(name, group, "a fake", setup_convstack, setup_torch, scale=scale)


def test_reps_alternate_after_the_warm_up_and_warm_up_times_are_dropped():
    log = []
    result = runner.run_workload(fake_workload(log), {}, torch=object(), repeat=3, warmup=2)
    assert log == ["convstack", "pytorch"] * 5
    assert len(result.times["convstack"]) == len(result.times["pytorch"]) == 3
    assert result.ratio == pytest.approx(2.0)


def test_without_torch_only_convstack_runs_and_there_is_no_ratio():
    log = []
    result = runner.run_workload(fake_workload(log), {}, torch=None, repeat=2, warmup=0)
    assert log == ["convstack", "convstack"]
    assert result.stats("pytorch") is None and result.ratio is None


def test_a_failing_framework_is_reported_in_one_line_and_the_other_runs_on():
    log = []
    result = runner.run_workload(fake_workload(log, torch_fails=True), {}, torch=object(), repeat=2, warmup=1)
    assert log == ["convstack"] * 3
    assert result.errors == {"pytorch": "RuntimeError: no kernel"}
    assert "fake: pytorch failed: RuntimeError: no kernel" in runner.format_table([result])


def test_scale_multiplies_every_time():
    result = runner.run_workload(fake_workload([], scale=10.0), {}, torch=None, repeat=1, warmup=0)
    assert result.times["convstack"] == [pytest.approx(0.04)]


def test_summary_statistics_are_the_median_and_inclusive_quartiles():
    stats = runner.summarise([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (stats["median_s"], stats["q1_s"], stats["q3_s"], stats["min_s"], stats["max_s"]) == (3, 2, 4, 1, 5)
    assert stats["times_s"] == [5.0, 1.0, 3.0, 2.0, 4.0] and stats["count"] == 5
    single = runner.summarise([0.5])
    assert single["q1_s"] == single["q3_s"] == single["median_s"] == 0.5


def test_geometric_mean_ignores_missing_ratios():
    assert runner.geometric_mean([0.5, 2.0, None]) == pytest.approx(1.0)
    assert runner.geometric_mean([2.0, 8.0]) == pytest.approx(4.0)
    assert runner.geometric_mean([None]) is None


def make_result(name, group, ours, theirs=None):
    result = Result(name, group, "described")
    result.times["convstack"] = ours
    if theirs is not None:
        result.times["pytorch"] = theirs
    return result


def test_table_has_one_row_per_workload_the_ratio_and_the_geometric_mean_of_layer_rows():
    results = [make_result("conv a fwd", "layer", [0.002, 0.004, 0.003], [0.0005, 0.0005, 0.0005]),
               make_result("maxpool b fwd", "layer", [0.010], [0.020]),
               make_result("model c", "model", [1.5], [0.5])]
    lines = runner.format_table(results).splitlines()
    assert lines[0].split() == ["workload", "convstack", "ms", "IQR", "pytorch", "ms", "IQR", "ratio"]
    assert set(lines[1]) == {"-"}
    assert lines[2].split() == ["conv", "a", "fwd", "3.00", "2.50-3.50", "0.500", "0.500-0.500", "6.00"]
    assert lines[3].split()[-1] == "0.50" and lines[4].split()[-1] == "3.00"
    # Model rows stay out of the mean: sqrt(6 * 0.5).
    expected = math.sqrt(3.0)
    assert lines[5] == f"geometric mean of the 2 per-layer ratios: {expected:.2f} (1 convolution rows: 6.00)"


def test_table_without_pytorch_shows_dashes_and_no_mean():
    table = runner.format_table([make_result("conv a fwd", "layer", [0.25])])
    assert table.splitlines()[2].split() == ["conv", "a", "fwd", "250", "250-250", "-", "-", "-"]
    assert "geometric mean" not in table


def test_json_document_follows_the_schema():
    results = [make_result("conv a fwd", "layer", [0.002, 0.004], [0.001, 0.001]), make_result("x", "model", [1.0])]
    memory = [{"name": "m", "convstack_bytes": 300, "pytorch_bytes": 100, "ratio": 3.0}]
    document = runner.to_json(results, memory, {"threads": 2}, {"repeat": 2})
    assert document["schema"] == "convstack-bench/1"
    assert set(document) == {"schema", "created", "machine", "settings", "results", "memory", "summary"}
    row = document["results"][0]
    assert set(row) == {"name", "group", "description", "note", "ratio", "errors", "convstack", "pytorch"}
    assert row["ratio"] == pytest.approx(3.0) and row["convstack"]["median_s"] == pytest.approx(0.003)
    assert document["results"][1]["pytorch"] is None and document["results"][1]["ratio"] is None
    assert document["summary"]["geomean_layer_ratio"] == pytest.approx(3.0)
    assert document["memory"] == memory


def test_filter_is_a_case_insensitive_substring():
    workloads = [fake_workload([], "conv2d VGG fwd"), fake_workload([], "maxpool fwd")]
    assert [w.name for w in runner.select(workloads, "vgg")] == ["conv2d VGG fwd"]
    assert len(runner.select(workloads, None)) == 2 and runner.select(workloads, "nothing") == []


def test_memory_line_reports_both_and_the_ratio():
    line = runner.format_memory({"name": "step", "convstack_bytes": 3 * 2**20, "pytorch_bytes": 2**20, "ratio": 3.0})
    assert line == "peak memory, step: convstack 3 MiB, pytorch 1 MiB, ratio 3.00"
    failed = runner.format_memory({"name": "step", "convstack_bytes": 2**20, "pytorch_bytes": None, "ratio": None,
                                   "pytorch_error": "exit status 1: boom"})
    assert failed.splitlines() == ["peak memory, step: convstack 1 MiB, pytorch -, ratio -",
                                   "  pytorch failed: exit status 1: boom"]


def test_settle_pauses_before_every_rep_and_rewarms_short_reps(monkeypatch):
    log, pauses = [], []
    monkeypatch.setattr(runner.time, "sleep", pauses.append)
    monkeypatch.setattr(runner, "REWARM_S", 0.0)  # one untimed rep (the minimum) before each timed one
    result = runner.run_workload(fake_workload(log), {}, torch=object(), repeat=2, warmup=1, settle=0.1)
    # first iteration: one pause each, no re-warm; later ones: pause, untimed rep, timed rep
    assert log == ["convstack", "pytorch"] + ["convstack", "convstack", "pytorch", "pytorch"] * 2
    assert pauses == [0.1] * 6
    assert len(result.times["convstack"]) == len(result.times["pytorch"]) == 2


def test_short_reps_are_rewarmed_for_rewarm_s(monkeypatch):
    clock = [0.0]

    def rep():  # each call takes 10 ms of a fake clock
        clock[0] += 0.01
        return 0.01

    monkeypatch.setattr(runner.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(runner.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(runner, "REWARM_S", 0.045)
    calls = []
    workload = Workload("w", "layer", "", lambda context: lambda: calls.append(1) or rep())
    result = runner.run_workload(workload, {}, torch=None, repeat=2, warmup=1, settle=0.1)
    # warm-up 1 + (5 untimed + 1 timed) for each of the 2 timed reps
    assert len(calls) == 1 + 2 * 6 and len(result.times["convstack"]) == 2
