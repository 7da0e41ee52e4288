"""`stmoe.sim.explore`: the spec's errors and points, rows equal to `simulate`'s, resume."""

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
        r = simulate(trace, hw, p["system"], **knobs)
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
