"""`stmoe explore` against a Dask scheduler and workers started as separate processes: a worker
killed mid-run loses no point and duplicates none, and the CLI reads the results back."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("distributed")
pytest.importorskip("pyarrow")

import dask  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

from stmoe.cli import main  # noqa: E402
from stmoe.sim.explore import LOCAL_CLUSTER_CONFIG, ExploreCancelled, explore, read_results  # noqa: E402
from stmoe.sim.explore_spec import parse_spec, read_spec  # noqa: E402

SPEC = """traces = ["tiny-moe-code"]
presets = ["accelerator"]
systems = ["on-demand", "lru-cache"]
[parameters]
buffer_bytes = { start = 1048576, stop = 8388608, num = 4, scale = "log" }
link_bandwidth = { start = 32e9, stop = 512e9, num = 5, scale = "log" }
"""


def _start(args, log):
    return subprocess.Popen([sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT,
                            env=os.environ | {"PYTHONUNBUFFERED": "1"})


@pytest.fixture
def cluster(tmp_path):
    """(scheduler address, {worker address: pid}) of a scheduler and two nanny-less workers,
    each its own process, so that killing a worker's process kills the worker."""
    info = tmp_path / "scheduler.json"
    log = open(tmp_path / "cluster.log", "w")
    procs = [_start(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                     "--no-dashboard", "--scheduler-file", str(info)], log)]
    try:
        deadline = time.monotonic() + 60
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        for _ in range(2):
            procs.append(_start(["distributed.cli.dask_worker", address, "--nthreads", "1", "--no-nanny",
                                 "--no-dashboard"], log))
        with Client(address, timeout="30s") as c:
            c.wait_for_workers(2, timeout=60)
            pids = c.run(os.getpid)
        yield address, pids
    finally:
        for p in procs:
            p.kill()
            p.wait()
        log.close()


def test_runs_back_to_back_on_one_client_each_compute_every_point(tmp_path):
    # the traces were scattered under their names, so a second run raced the release of the
    # first run's data of the same name and its tasks came back cancelled
    spec = parse_spec({"traces": ["tiny-moe-code"], "presets": ["accelerator"], "systems": ["on-demand"],
                       "parameters": {"buffer_bytes": [2 ** 20, 2 ** 21]}})
    with dask.config.set(LOCAL_CLUSTER_CONFIG), \
            LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as lc, \
            Client(lc) as c:
        for i in range(3):
            run = explore(spec, tmp_path / f"out{i}", client=c, progress=lambda *a: None)
            assert run.computed == len(spec.points) == len(read_results(tmp_path / f"out{i}"))


def test_killed_worker_loses_nothing_and_duplicates_nothing(cluster, tmp_path, capsys):
    address, pids = cluster
    path = tmp_path / "grid.toml"
    path.write_text(SPEC)
    spec = read_spec(path)
    out = tmp_path / "out"
    killed = {}
    finished = threading.Event()

    def kill_a_busy_worker():
        with Client(address) as c:
            busy = []
            while not busy and not finished.is_set():   # mid-run: a batch written, and a worker holding another
                time.sleep(0.05)
                if list(out.glob("part-*.parquet")):
                    busy = [w for w, tasks in c.processing().items() if tasks]
            if busy:
                killed["worker"] = busy[0]
                os.kill(pids[busy[0]], signal.SIGKILL)

    killer = threading.Thread(target=kill_a_busy_worker, daemon=True)
    killer.start()
    try:
        run = explore(spec, out, scheduler=address, batch_size=2, progress=lambda *a: None)
    finally:
        finished.set()
        killer.join()
    assert killed.get("worker") in pids, "the run ended before a worker could be killed mid-batch"
    rows = read_results(out)
    assert run.computed == len(spec.points) == 40
    assert sorted(r["key"] for r in rows) == sorted(p["key"] for p in spec.points)   # each once
    assert len(list(out.glob("part-*.parquet"))) == 20                              # each batch once

    # the CLI, against the surviving worker: everything is already there, so only the front
    assert main(["explore", str(path), "--out", str(out), "--scheduler", address]) == 0
    printed = capsys.readouterr().out
    assert "40 of 40 points already in" in printed and "Pareto front over latency, energy and buffer area" in printed


@pytest.mark.parametrize("when", ["while the cluster starts", "mid-run"])
def test_ctrl_c_prints_one_line_and_exits_130(tmp_path, when):
    """Ctrl-C reaches every process of the terminal's group (here: a session of its own); the
    workers print nothing, the run says in one line what is finished and how to resume, whether
    the cluster was still starting (the output folder's lock is taken just before) or running."""
    import re

    path = tmp_path / "grid.toml"
    path.write_text(SPEC.replace("num = 4", "num = 10"))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "stmoe", "explore", str(path), "--out", str(out),
                             "--workers", "2", "--batch-size", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            # a shell's background job may have SIGINT ignored; a terminal's has not
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        ready = (lambda: (out / ".explore.lock").exists()) if when == "while the cluster starts" else \
            (lambda: list(out.glob("part-*.parquet")))
        while not ready() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)
        printed, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if not re.fullmatch(r"\d+/100 points, .* left\s*", line)]
    finished = len(read_results(out)) if list(out.glob("part-*.parquet")) else 0
    assert lines == [f"stmoe: interrupted: {finished} of 100 points finished in {out}; run again with the "
                     "same spec and output folder to resume (finished points are skipped)"], err
    if when == "mid-run":
        assert 0 < finished < 100
    else:   # interrupted before the cluster was up: it never announced its dashboard
        assert finished == 0 and "dashboard:" not in printed, printed
    deadline = time.monotonic() + 20     # and no worker outlives the run
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        pytest.fail("a process of the interrupted run is still alive")


def test_a_batch_the_cluster_cancels_ends_the_run_in_one_line(tmp_path):
    # someone restarts the shared cluster mid-run: the batches in flight come back as
    # cancellations, which the run names (it wrote a TypeError before), keeping what is written
    spec = parse_spec({"traces": ["tiny-moe-code"], "presets": ["accelerator"], "systems": ["on-demand"],
                       "parameters": {"buffer_bytes": [2 ** 20, 2 ** 21, 2 ** 22, 2 ** 23]}})
    out = tmp_path / "out"
    with dask.config.set(LOCAL_CLUSTER_CONFIG), \
            LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as lc, \
            Client(lc) as c:
        def restart_after_the_first_batch(done, total, seconds):
            if done == 1:
                c.restart()
        with pytest.raises(ExploreCancelled) as caught:
            explore(spec, out, client=c, batch_size=1, progress=restart_after_the_first_batch)
    message = str(caught.value)
    assert "\n" not in message and "the cluster cancelled a batch (reason: scheduler-restart;" in message
    assert "1 of 4 points are finished there" in message and "run again" in message
    assert len(read_results(out)) == 1


FAULTS_SCRIPT = """
import resource, sys
from distributed import Client
import stmoe.sim.explore as ex
from stmoe.sim.explore_spec import parse_spec
if sys.argv[1] == "dask":   # Dask's own worker environment, without ours
    ex.LOCAL_CLUSTER_CONFIG = {k: v for k, v in ex.LOCAL_CLUSTER_CONFIG.items() if "pre-spawn-environ" not in k}

def faults_a_point(trace, points):
    ex.run_batch(trace, points)   # the first run grows the heap
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    ex.run_batch(trace, points)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / len(points)

spec = parse_spec({"traces": ["tiny-moe-code"], "presets": ["accelerator"], "systems": ["on-demand", "lru-cache"],
                   "parameters": {"buffer_bytes": [2 ** 20, 2 ** 22, 2 ** 24, 2 ** 25]}})
with ex._starting():   # the command's own way to its local cluster
    cluster = ex._local_cluster(1)
with cluster, Client(cluster) as c:
    print(c.submit(faults_a_point, spec.traces["tiny-moe-code"], spec.points, pure=False).result())
"""


def test_a_local_worker_does_not_fault_its_temporaries_in_at_every_point():
    # with Dask's own worker environment, each point's numpy temporaries went back to the
    # kernel and were faulted in again (~700 page faults and ~1 ms of system CPU a point);
    # each cluster in a process of its own, since a worker keeps its fork server's allocator
    # (and without the allocator settings that Dask's nannies leave in this process's environment)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    faults = {env: float(subprocess.run([sys.executable, "-c", FAULTS_SCRIPT, env], capture_output=True, text=True,
                                        check=True, timeout=120, env=clean).stdout.split()[-1])
              for env in ("dask", "ours")}
    assert faults["ours"] < 20 < 200 < faults["dask"], faults
