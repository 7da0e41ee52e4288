"""`stmoe.sim.explore`: the spec's errors and points, rows equal to `simulate`'s, resume."""

import time

import pytest

pytest.importorskip("distributed")
pytest.importorskip("pyarrow")

from distributed import Client, LocalCluster  # noqa: E402

from stmoe.cli import main  # noqa: E402
from stmoe.errors import ConfigError  # noqa: E402
from stmoe.readers.catalog import load_trace  # noqa: E402
from stmoe.sim.explore import batches, explore, read_results, run_batch  # noqa: E402
from stmoe.sim.explore_spec import parse_spec, read_spec  # noqa: E402
from stmoe.sim.hardware import preset  # noqa: E402
from stmoe.sim.timing import simulate  # noqa: E402

TRACE = "tiny-moe-code"


def spec_text(**extra) -> str:
    text = (f'traces = ["{TRACE}"]\npresets = ["accelerator"]\nsystems = ["on-demand", "lru-cache", "st-moe"]\n'
            "[parameters]\nbuffer_bytes = [2097152, 8388608]\n"
            'link_bandwidth = { start = 64e9, stop = 256e9, num = 2, scale = "log" }\nlookahead = [1, 2]\n')
    # top-level fields go before the [parameters] table
    return "".join(f"{k} = {v}\n" for k, v in extra.items()) + text


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(spec_text())
    return path


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as c:
        yield c


def test_points_cross_systems_with_the_grid_and_collapse_unused_knobs(spec_file):
    spec = read_spec(spec_file)
    # 2 buffers x 2 links x 2 lookaheads = 8 settings; on-demand and lru-cache ignore lookahead
    assert len(spec.points) == 4 + 4 + 8 and spec.collapsed == 8
    assert "8 grid points collapsed" in spec.notes[0]
    assert {p["link_bandwidth"] for p in spec.points} == {64e9, 256e9}
    assert all(p["lookahead"] is None and p["budget"] is None for p in spec.points if p["system"] != "st-moe")
    assert {p["budget"] for p in spec.points if p["system"] == "st-moe"} == {4}   # the trace's k
    assert [p["key"] for p in read_spec(spec_file).points] == [p["key"] for p in spec.points]
    assert len({p["key"] for p in spec.points}) == len(spec.points)


def test_samples_are_seeded(spec_file):
    def sampled(seed):
        spec_file.write_text(spec_text() + f"[samples]\ncount = 3\nseed = {seed}\n")
        return [p["key"] for p in read_spec(spec_file).points]

    assert sampled(1) == sampled(1)
    assert sampled(1) != sampled(2)
    assert len(sampled(1)) == 16 + 3 * 3


@pytest.mark.parametrize("text, message", [
    (spec_text(colour='"red"'), "unknown field 'colour'"),
    (spec_text().replace("lookahead = [1, 2]", "lookahead = [9]"), "parameters.lookahead: 9 is out of range 1..8"),
    (spec_text().replace("lookahead = [1, 2]", "budget = [0]"), "parameters.budget: 0 is out of range 1..32"),
    (spec_text().replace("lookahead = [1, 2]", "lookahead = []"), "parameters.lookahead: an empty list"),
    (spec_text().replace("lookahead = [1, 2]", "warp = [1]"), "parameters.warp: unknown parameter"),
    (spec_text().replace("2097152,", "1000,"), "parameters.buffer_bytes: 1000 on trace 'tiny-moe-code'"),
    (spec_text().replace("link_bandwidth = {", "link_bandwidth = { step = 1,"), "unknown range field 'step'"),
    (spec_text().replace("64e9", "-1.0"), "link_bandwidth: a log range needs positive start"),
    (spec_text().replace('"lru-cache"', '"warp"'), "systems: unknown system 'warp'"),
    (spec_text() + "[samples]\ncount = 2\n", "samples.seed: a whole number"),
    (spec_text().replace("lookahead = [1, 2]", 'dataflow = ["os", "rs"]'), "parameters.dataflow: unknown dataflow 'rs'"),
    (spec_text().replace("lookahead = [1, 2]", "batch = [1, 49]"), "parameters.batch: 49 is out of range 1..48"),
    (spec_text().replace("lookahead = [1, 2]", "batch = [2.5]"), "parameters.batch: a whole number, got 2.5"),
    (spec_text().replace('presets = ["accelerator"]', 'presets = ["accelerator", "gpu-pcie"]').replace(
        "lookahead = [1, 2]", 'dataflow = ["ws"]'), "parameters.dataflow: preset 'gpu-pcie' has no PE array"),
])
def test_spec_errors_name_file_field_and_value(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        read_spec(path)
    assert str(exc.value).startswith(f"{path}: ") and message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_cli_errors_before_any_work(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(spec_text(colour='"red"'))
    assert main(["explore", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stmoe: error: ") and err.count("\n") == 1 and "'colour'" in err
    assert not (tmp_path / "bad").exists()
    good = tmp_path / "good.toml"
    good.write_text(spec_text())
    assert main(["explore", str(good), "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stmoe: error: scheduler 'tcp://127.0.0.1:9' is unreachable") and err.count("\n") == 1
    assert not (tmp_path / "good").exists()


def test_rows_are_simulate_with_every_input_and_output(spec_file):
    spec = read_spec(spec_file)
    trace = load_trace(TRACE)
    points = [p for p in spec.points if p["system"] == "st-moe"][:2] + spec.points[:1]
    rows = run_batch(trace, points)
    for p, row in zip(points, rows):
        hw = preset("accelerator", buffer_bytes=p["buffer_bytes"], link_bandwidth=p["link_bandwidth"])
        knobs = {k: p[k] for k in ("lookahead", "budget", "predictor") if p[k] is not None}
        # the speedups are against on-demand on the same tokens and machine
        r = simulate(trace, hw, p["system"], **knobs).relative_to(simulate(trace, hw, "on-demand"))
        assert r.speedup_vs_on_demand is not None and r.energy_efficiency_vs_on_demand is not None
        assert {k: row[k] for k in r.row()} == r.row()
        assert row["energy_link_j"] == r.energy_breakdown_j["link"]
        assert row["buffer_area_mm2"] == pytest.approx(p["buffer_bytes"] / 2 ** 20 * 0.2517, rel=1e-3)
        assert row["expert_bytes"] == 3 * 192 * 128 * 4 and row["key"] == p["key"]
    assert "predictions: st-moe, budget 4" in rows[0]["notes"]


def test_batches_keep_one_trace_and_a_size_limit(spec_file):
    points = read_spec(spec_file).points
    got = batches(points, 3)
    assert sorted(p["key"] for b in got for p in b) == sorted(p["key"] for p in points)
    assert max(len(b) for b in got) == 3


def test_interrupted_run_resumes_with_exactly_the_missing_points(spec_file, tmp_path, client):
    spec = read_spec(spec_file)
    out = tmp_path / "out"

    def stop_after_first_batch(done, total, seconds):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        explore(spec, out, client=client, batch_size=4, progress=stop_after_first_batch)
    first = {r["key"] for r in read_results(out)}
    assert len(first) == 4
    second = explore(spec, out, client=client, batch_size=4, progress=lambda *a: None)
    assert second.skipped == 4 and sorted(second.computed_keys) == sorted({p["key"] for p in spec.points} - first)
    rows = read_results(out)
    assert sorted(r["key"] for r in rows) == sorted(p["key"] for p in spec.points)   # none twice
    third = explore(spec, out, client=client, progress=lambda *a: None)
    assert third.computed == 0 and third.skipped == len(spec.points)


def test_a_new_package_version_is_a_new_key(spec_file, monkeypatch):
    import stmoe.sim.explore_spec as es

    before = [p["key"] for p in read_spec(spec_file).points]
    monkeypatch.setattr(es, "__version__", "99.0")
    assert not set(before) & {p["key"] for p in read_spec(spec_file).points}


def test_parse_spec_needs_the_three_lists():
    with pytest.raises(ConfigError, match="the field 'systems' is missing"):
        parse_spec({"traces": [TRACE], "presets": ["accelerator"]})


def test_workers_and_scheduler_are_exclusive(spec_file, tmp_path):
    with pytest.raises(ConfigError, match="workers=2 sizes a local cluster"):
        explore(spec_file, tmp_path / "out", scheduler="tcp://127.0.0.1:9", workers=2)
    assert not (tmp_path / "out").exists()


def test_parts_share_one_schema_so_any_parquet_reader_joins_them(tmp_path):
    """A batch without predictor-driven systems holds only nulls in their columns; a plain
    Parquet reader must still read the folder, whichever part it opens first."""
    import pyarrow.parquet as pq

    from stmoe.sim.explore import write_part
    rows = {"a": {"key": "a", "system": "lru-cache", "lookahead": None, "budget": None, "predictor": None},
            "b": {"key": "b", "system": "st-moe", "lookahead": 1, "budget": 4, "predictor": "st-moe"}}
    for row in rows.values():
        write_part(tmp_path, [row])
    schemas = {str(pq.read_schema(part)) for part in tmp_path.glob("part-*.parquet")}
    assert len(schemas) == 1, schemas
    got = {r["key"]: r for r in pq.read_table(tmp_path).to_pylist()}
    assert got == rows


def test_a_spec_that_is_not_a_regular_file_is_one_line(tmp_path, capsys):
    import os

    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.toml"
    zero.symlink_to("/dev/zero")
    for spec in (fifo, zero):
        assert main(["explore", str(spec)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "not a regular file" in err and str(spec) in err


def test_range_points_are_rounded_and_a_rounding_that_matters_is_noted(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(f'traces = ["{TRACE}"]\npresets = ["accelerator"]\nsystems = ["lru-cache"]\n[parameters]\n'
                    'buffer_bytes = { start = 1048576, stop = 67108864, num = 7, scale = "log" }\n'
                    'link_bandwidth = { start = 1e9, stop = 2e9, num = 4 }\n')
    spec = read_spec(path)
    assert sorted({p["buffer_bytes"] for p in spec.points}) == [float(2 ** i) for i in range(20, 27)]
    assert sorted({p["link_bandwidth"] for p in spec.points}) == [1e9, 1333333333.33, 1666666666.67, 2e9]
    assert not [n for n in spec.notes if "rounded" in n]     # only float noise was removed
    # macs_per_cycle on a roofline preset: the accelerator's PE array must be square
    path.write_text(path.read_text().replace("num = 7", "num = 4").replace(', scale = "log" }', " }")
                    .replace('presets = ["accelerator"]', 'presets = ["gpu-pcie"]')
                    + 'macs_per_cycle = { start = 100, stop = 101, num = 4 }\n')
    spec = read_spec(path)
    assert sorted({p["buffer_bytes"] for p in spec.points}) == [1048576.0, 23068672.0, 45088768.0, 67108864.0]
    assert sorted({p["macs_per_cycle"] for p in spec.points}) == [100.0, 101.0]
    assert "parameters.macs_per_cycle: the range's points rounded to whole numbers; 2 duplicates merged" in spec.notes


def test_a_grid_above_max_points_is_refused_before_it_is_built(tmp_path, capsys):
    import time

    path = tmp_path / "huge.toml"
    path.write_text(spec_text().replace("num = 2,", "num = 1000000000000,"))
    start = time.monotonic()
    with pytest.raises(ConfigError) as exc:
        read_spec(path)
    assert time.monotonic() - start < 5      # nothing of size 10^12 was built
    assert "the grid has 12,000,000,000,000 points" in str(exc.value) and "maximum of 1,000,000" in str(exc.value)
    small = tmp_path / "small.toml"
    small.write_text(spec_text())            # 3 systems x 8 settings = 24 before collapsing
    assert len(read_spec(small, max_points=24).points) == 16
    assert main(["explore", str(small), "--max-points", "23"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the grid has 24 points" in err and "--max-points" in err


def test_a_value_that_would_fail_on_a_worker_is_refused_by_the_spec(tmp_path):
    path = tmp_path / "big.toml"
    path.write_text(spec_text().replace("8388608]", "1e29]"))   # a valid Hardware, too big a buffer to model
    with pytest.raises(ConfigError) as exc:
        read_spec(path)
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: parameters.buffer_bytes: 1e+29 fails with preset 'accelerator', system "
                              "'lru-cache' on trace 'tiny-moe-code': buffer of 1e+29 bytes"), message


@pytest.mark.parametrize("workers", [0, 10 ** 6, 2.5])
def test_workers_are_bounded(spec_file, tmp_path, capsys, workers):
    with pytest.raises(ConfigError, match="workers: a whole number from 1 to"):
        explore(spec_file, tmp_path / "out", workers=workers)
    if isinstance(workers, int):
        assert main(["explore", str(spec_file), "--workers", str(workers)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "workers: a whole number from 1 to" in err
    assert not (tmp_path / "out").exists()


def test_a_second_run_into_one_folder_is_refused_and_a_dead_runs_lock_is_taken(spec_file, tmp_path, client):
    import os
    import subprocess
    import sys

    from stmoe.sim.explore import LOCK_NAME, OutputLock

    out = tmp_path / "out"
    out.mkdir()
    held = OutputLock(out)          # another run, holding the folder
    try:
        with pytest.raises(ConfigError) as exc:
            explore(spec_file, out, client=client, progress=lambda *a: None)
        assert str(exc.value) == (f"{out}: another stmoe explore (pid {os.getpid()}) is writing here; wait for "
                                  "it to end, or give another output folder")
        assert not list(out.glob("part-*"))
    finally:
        held.release()
    # a run that died left its lock file behind, with its pid: the file is not locked, so it is taken
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (out / LOCK_NAME).write_text(dead.stdout)
    run = explore(spec_file, out, client=client, progress=lambda *a: None)
    assert run.computed == len(read_spec(spec_file).points)
    assert not (out / LOCK_NAME).exists()


def test_speedups_are_against_on_demand_on_the_same_machine(spec_file, tmp_path, client):
    run = explore(spec_file, tmp_path / "out", client=client, batch_size=3, progress=lambda *a: None)
    rows = read_results(tmp_path / "out")
    assert run.computed == len(rows) == 16

    def machine(r):
        return r["buffer_bytes"], r["link_bandwidth"]
    on_demand = {machine(r): r for r in rows if r["system"] == "on-demand"}
    assert len(on_demand) == 4
    for r in rows:
        ref = on_demand[machine(r)]
        assert r["speedup_vs_on_demand"] == pytest.approx(ref["latency_per_token_s"] / r["latency_per_token_s"])
        assert r["energy_efficiency_vs_on_demand"] == pytest.approx(ref["energy_per_token_j"] / r["energy_per_token_j"])
    assert {r["speedup_vs_on_demand"] for r in on_demand.values()} == {1.0}
    assert any(r["speedup_vs_on_demand"] > 1.05 for r in rows if r["system"] == "st-moe")


def test_a_spec_without_on_demand_still_fills_the_speedups(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(spec_text().replace('"on-demand", ', ""))
    spec = read_spec(path)
    trace = spec.traces[TRACE]
    rows = run_batch(trace, spec.points[:3])
    for p, row in zip(spec.points, rows):
        hw = preset("accelerator", buffer_bytes=p["buffer_bytes"], link_bandwidth=p["link_bandwidth"])
        base = simulate(trace, hw, "on-demand")
        assert row["speedup_vs_on_demand"] == pytest.approx(base.latency_per_token_s / row["latency_per_token_s"])


def test_a_profile_per_trace_split_or_another_trace(tmp_path):
    from stmoe.splits import split

    path = tmp_path / "p.toml"
    path.write_text(spec_text() + f'[profiles]\n"{TRACE}" = "split"\n')
    spec = read_spec(path)
    profile, scored = split(load_trace(TRACE))
    assert spec.traces[TRACE].num_tokens == scored.num_tokens and spec.profiles[TRACE].num_tokens == profile.num_tokens
    assert {p["profile"] for p in spec.points} == {"split"}            # every system simulates the scored half
    assert any("profiles.tiny-moe-code: split" in n for n in spec.notes)
    p = next(p for p in spec.points if p["system"] == "st-moe")
    row = run_batch(spec.traces[TRACE], [p], spec.profiles[TRACE])[0]
    hw = preset("accelerator", buffer_bytes=p["buffer_bytes"], link_bandwidth=p["link_bandwidth"])
    r = simulate(scored, hw, "st-moe", lookahead=p["lookahead"], profile=profile)
    assert row["latency_per_token_s"] == r.latency_per_token_s and row["tokens"] == r.tokens
    assert f"profiled on {profile.label}" in row["notes"]

    path.write_text(spec_text() + f'[profiles]\n"{TRACE}" = "tiny-moe-prose"\n')
    named = read_spec(path)
    plain = {p["key"]: p for p in read_spec(_write(tmp_path, spec_text())).points}
    assert {p["profile"] for p in named.points if p["system"] == "st-moe"} == {"tiny-moe-prose"}
    assert {p["profile"] for p in named.points if p["system"] != "st-moe"} == {None}
    # a profile changes what st-moe predicts, and nothing of the systems without a predictor
    assert all((p["key"] in plain) == (p["system"] != "st-moe") for p in named.points)


def _write(tmp_path, text):
    path = tmp_path / "plain.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("profiles, message", [
    ('"warp" = "split"', "profiles.warp: not one of the spec's traces (tiny-moe-code)"),
    (f'"{TRACE}" = 3', "profiles.tiny-moe-code: 'split' or a trace name or file, got 3"),
    (f'"{TRACE}" = "{TRACE}"', "profiles.tiny-moe-code: profile: "),
])
def test_profile_errors_are_one_line(tmp_path, profiles, message):
    path = tmp_path / "bad.toml"
    path.write_text(spec_text() + f"[profiles]\n{profiles}\n")
    with pytest.raises(ConfigError) as exc:
        read_spec(path)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_a_negative_seed_and_an_empty_out_are_one_line(tmp_path, capsys):
    from stmoe.cli import main
    spec = tmp_path / "s.toml"
    spec.write_text(f'traces = ["{TRACE}"]\npresets = ["accelerator"]\nsystems = ["lru-cache"]\n'
                    '[parameters]\nlookahead = [1, 2]\n[samples]\ncount = 2\nseed = -5\n')
    assert main(["explore", str(spec), "--workers", "1"]) == 2
    assert "samples.seed: a whole number >= 0" in capsys.readouterr().err
    spec.write_text(f'traces = ["{TRACE}"]\npresets = ["accelerator"]\nsystems = ["lru-cache"]\n')
    assert main(["explore", str(spec), "--out", " "]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out: an empty folder name" in err


def test_a_non_square_pe_array_is_checked_whole_and_sets_macs_per_cycle(tmp_path):
    path = tmp_path / "pe.toml"
    path.write_text(f'traces = ["{TRACE}"]\npresets = ["accelerator"]\nsystems = ["on-demand"]\n[parameters]\n'
                    "pe_rows = [64, 128]\npe_cols = [128, 256]\n")
    spec = read_spec(path)
    assert sorted((p["pe_rows"], p["pe_cols"], p["macs_per_cycle"]) for p in spec.points) == [
        (64, 128, 8192), (64, 256, 16384), (128, 128, 16384), (128, 256, 32768)]
    assert any("macs_per_cycle is its pe_rows x pe_cols" in n for n in spec.notes)
    p = spec.points[0]
    row = run_batch(load_trace(TRACE), [p])[0]
    hw = preset("accelerator", pe_rows=p["pe_rows"], pe_cols=p["pe_cols"], macs_per_cycle=p["macs_per_cycle"])
    assert row["latency_per_token_s"] == simulate(load_trace(TRACE), hw, "on-demand").latency_per_token_s
    # with macs_per_cycle given too, a combination that does not multiply out is named
    path.write_text(path.read_text() + "macs_per_cycle = [16384]\n")
    with pytest.raises(ConfigError, match=r"parameters: pe_rows=64, pe_cols=128, macs_per_cycle=16384 with preset "
                                          r"'accelerator': .*must equal macs_per_cycle"):
        read_spec(path)


def _trace_of_unknown_model(folder):
    trace = load_trace(TRACE)
    meta = {k: v for k, v in trace.meta.items() if k not in ("model_config", "model_path")} | {"model": "mystery-moe"}
    return type(trace)(trace.expert_ids, num_experts=trace.num_experts, weights=trace.weights, phase=trace.phase,
                       sequence=trace.sequence, meta=meta).save(folder / "mystery.npz")


def test_a_trace_of_an_unknown_model_needs_the_specs_model(tmp_path):
    _trace_of_unknown_model(tmp_path)
    path = tmp_path / "m.toml"
    head = 'traces = ["mystery.npz"]\n'
    rest = 'presets = ["accelerator"]\nsystems = ["on-demand"]\n[parameters]\nbuffer_bytes = [2147483648]\n'
    path.write_text(head + rest)
    with pytest.raises(ConfigError) as exc:
        read_spec(path)
    assert "\n" not in str(exc.value) and "--model" not in str(exc.value)
    assert 'are unknown: give model = "NAME" in the spec' in str(exc.value) and "qwen3-30b-a3b" in str(exc.value)
    keys = {}
    for model in ('"qwen3-30b-a3b"', '{ "mystery.npz" = "qwen3-30b-a3b" }', '"mixtral-8x7b"'):
        path.write_text(head + f"model = {model}\n" + rest)
        spec = read_spec(path)
        keys[model] = spec.points[0]["key"]
        row = run_batch(spec.traces["mystery.npz"], spec.points, model=spec.models["mystery.npz"])[0]
        assert row["model_dims"].startswith(f"the registry's {spec.models['mystery.npz']}")
    assert len(set(keys.values())) == 2 and keys['"qwen3-30b-a3b"'] == keys['{ "mystery.npz" = "qwen3-30b-a3b" }']
    for bad, message in (('"mystery-9"', "model: unknown model 'mystery-9'"),
                         ('{ "other.npz" = "qwen3-30b-a3b" }', "model.other.npz: not one of the spec's traces")):
        path.write_text(head + f"model = {bad}\n" + rest)
        with pytest.raises(ConfigError, match=message):
            read_spec(path)


def test_trace_paths_are_the_specs_and_special_files_are_named(tmp_path, monkeypatch):
    import os

    folder = tmp_path / "specs"
    folder.mkdir()
    os.mkfifo(folder / "fifo.npz")
    (folder / "zero.npz").symlink_to("/dev/zero")
    (folder / "dir.npz").mkdir()
    _trace_of_unknown_model(tmp_path)   # beside the current folder, not the spec
    monkeypatch.chdir(tmp_path)
    for name, message in (("fifo.npz", "is a named pipe"), ("zero.npz", "is a character device"),
                          ("dir.npz", "is a directory"),
                          ("mystery.npz", "'mystery.npz' is neither a stmoe trace name nor a file beside the spec")):
        path = folder / "t.toml"
        path.write_text(f'traces = ["{name}"]\npresets = ["accelerator"]\nsystems = ["on-demand"]\n')
        with pytest.raises(ConfigError) as exc:
            read_spec(path)
        assert message in str(exc.value) and str(folder / name) in str(exc.value), str(exc.value)


@pytest.mark.parametrize("args, message", [(["--batch-size", "-3"], "--batch-size: a whole number >= 1, got -3"),
                                           (["--tolerance", "1"], "--tolerance: a relative difference"),
                                           (["--tolerance", "nan"], "--tolerance: a relative difference"),
                                           (["--out", __file__], "is not a folder; the results go in a folder"),
                                           (["--out", f"{__file__}/sub"], "is not a folder; the results go in a folder"),
                                           (["--workers", "2", "--scheduler", "tcp://127.0.0.1:9"],
                                            "--workers 2 sizes a local cluster; the scheduler")])
def test_bad_arguments_print_nothing_before_their_error(tmp_path, capsys, args, message):
    spec = tmp_path / "s.toml"
    spec.write_text(spec_text())
    assert main(["explore", str(spec), "--out", str(tmp_path / "o9"), *args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and message in err
    assert not (tmp_path / "o9").exists()


def test_the_front_table_states_its_tolerance_in_human_units(tmp_path, capsys):
    """Chapter 05's shipped results (nothing to compute): sizes in MiB, links in GB/s, and the
    tolerance in the header; --tolerance 0 is the strict front, which keeps more points here."""
    import shutil
    from pathlib import Path
    shipped = Path(__file__).resolve().parents[1] / "data" / "explore"
    out = tmp_path / "chapter05"
    shutil.copytree(shipped / "chapter05", out)
    spec = str(shipped / "chapter05.toml")
    counts = {}
    for tol, said in [("0.001", "objectives within 0.10% of each other count as equal"), ("0", "strict: no tolerance")]:
        assert main(["explore", spec, "--out", str(out), "--workers", "1", "--tolerance", tol]) == 0
        printed = capsys.readouterr().out
        header = next(line for line in printed.splitlines() if "Pareto front over" in line)
        assert said in header
        counts[tol] = int(header.split("buffer area, ")[1].split(" of ")[0])
        assert "buffer MiB" in printed and "link GB/s" in printed and "64.000 " in printed
        assert "67108864" not in printed and "e+" not in printed
    assert counts["0"] != counts["0.001"]


def test_dataflow_and_batch_are_a_points_machine_and_workload(tmp_path):
    # each row is simulate on that PE array's dataflow and that many sequences in lockstep, and
    # its speedup is against on-demand on the same dataflow and batch
    path = tmp_path / "s.toml"
    path.write_text(f'traces = ["{TRACE}"]\npresets = ["accelerator"]\nsystems = ["on-demand", "lru-cache"]\n'
                    '[parameters]\nbuffer_bytes = [4194304]\ndataflow = ["os", "ws"]\nbatch = [1, 4]\n')
    spec = read_spec(path)
    assert len(spec.points) == 8 and len({p["key"] for p in spec.points}) == 8
    assert {(p["dataflow"], p["batch"]) for p in spec.points} == {("os", 1), ("os", 4), ("ws", 1), ("ws", 4)}
    trace = spec.traces[TRACE]
    rows = run_batch(trace, [p for p in spec.points if p["system"] == "lru-cache"])
    latencies = set()
    for row in rows:
        hw = preset("accelerator", buffer_bytes=4194304.0, dataflow=row["dataflow"])
        r = simulate(trace, hw, "lru-cache", batch=row["batch"])
        ref = simulate(trace, hw, "on-demand", batch=row["batch"])
        assert row["latency_per_token_s"] == r.latency_per_token_s
        assert row["speedup_vs_on_demand"] == pytest.approx(ref.latency_per_token_s / r.latency_per_token_s, rel=1e-12)
        latencies.add(row["latency_per_token_s"])
    assert len(latencies) == 4   # dataflow and batch each change the time
    # the default point (no dataflow, batch 1 in the spec) is the preset's own machine
    default = parse_spec({"traces": [TRACE], "presets": ["accelerator"], "systems": ["on-demand"]}).points[0]
    assert (default["dataflow"], default["batch"]) == (preset("accelerator").dataflow, 1)


def test_hot_set_pins_the_experts_its_profile_counts(tmp_path):
    # hot-set needs a profile: the spec's [profiles] gives it one, which keys and times its points
    # (it was accepted by the spec and then dropped, so every point failed)
    path = tmp_path / "h.toml"
    path.write_text(f'traces = ["{TRACE}"]\npresets = ["accelerator"]\nsystems = ["hot-set"]\n'
                    '[parameters]\nbuffer_bytes = [4194304]\n[profiles]\n"tiny-moe-code" = "tiny-moe-prose"\n')
    spec = read_spec(path)
    (point,) = spec.points
    assert point["profile"] == "tiny-moe-prose"
    (row,) = run_batch(spec.traces[TRACE], spec.points, spec.profiles[TRACE])
    hw = preset("accelerator", buffer_bytes=4194304.0)
    own = simulate(load_trace(TRACE), hw, "hot-set", profile=load_trace("tiny-moe-prose"))
    assert row["latency_per_token_s"] == own.latency_per_token_s
    path.write_text(path.read_text().replace('"tiny-moe-prose"', '"split"'))
    assert read_spec(path).points[0]["key"] != point["key"]
    path.write_text(path.read_text().split("[profiles]")[0])
    with pytest.raises(ConfigError, match=r"hot-set needs a profile .*give one in the spec's \[profiles\] table"):
        read_spec(path)


def test_a_slow_spec_check_says_what_it_is_doing(tmp_path, capsys, monkeypatch):
    # a fresh install compiles the simulator while the spec is checked: ~40 s of silence before
    import stmoe.cli.explore_command as command

    def slow(*args, **kwargs):
        time.sleep(2.5)
        raise ConfigError("stop here")
    monkeypatch.setattr(command, "read_spec", slow)
    spec = tmp_path / "s.toml"
    spec.write_text(spec_text())
    assert main(["explore", str(spec)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith("checking each parameter's extremes on a few tokens (on a fresh install this also "
                           "compiles the simulator, about a minute)") and err[1] == "stmoe: error: stop here"


def test_the_front_marks_systems_that_change_routing(tmp_path, capsys):
    # adapmoe skips experts, so it can top a front it is not comparable on; the table says so
    spec = tmp_path / "g.toml"
    spec.write_text(f'traces = ["{TRACE}"]\npresets = ["accelerator"]\nsystems = ["on-demand", "adapmoe"]\n'
                    "[parameters]\nbuffer_bytes = [4194304]\n")
    assert main(["explore", str(spec), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "\nadapmoe *" in out and "\non-demand " in out
    assert out.rstrip().endswith("* changes the model's routing (replayed here on the trace's routing): not the "
                                 "same model output as the others")
