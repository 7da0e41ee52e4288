"""The CLI's last line of defence and the writes behind it: any failure is one line naming the
file (exit 2, `--debug` for the traceback); a report over good and bad traces studies the good
ones and exits 1; written files follow the umask; a failed write leaves no temporary file."""

import argparse
import errno
import json
import os
import stat

import numpy as np
import pytest

from stmoe import Trace, synthetic_trace
from stmoe.cli import build_parser, main
from stmoe.errors import StmoeError
from stmoe.readers import catalog


@pytest.fixture
def small(tmp_path):
    return synthetic_trace(64, 3, 8, 2, num_sequences=2, prompt_tokens=8, seed=0).save(tmp_path / "t.npz")


def _crash(*args, **kwargs):
    raise TypeError("'NoneType' object is not subscriptable")


def test_unforeseen_error_is_one_line_naming_the_input(monkeypatch, capsys, small):
    monkeypatch.setattr("stmoe.cli.info_command.load_trace", _crash)
    assert main(["info", str(small)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"stmoe: error: {small}: unexpected TypeError") and "--debug" in err


@pytest.mark.parametrize("argv", [["--debug", "info"], ["info", "--debug"]])
def test_debug_shows_the_traceback(monkeypatch, small, argv):
    monkeypatch.setattr("stmoe.cli.info_command.load_trace", _crash)
    with pytest.raises(TypeError):
        main([*argv, str(small)])


def test_report_studies_the_good_and_lists_the_bad(monkeypatch, tmp_path, capsys, small):
    real = catalog.load_trace

    def flaky(name):
        if str(name).endswith("crash.npz"):
            _crash()
        return real(name)

    monkeypatch.setattr("stmoe.report.load_trace", flaky)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code = main(["report", str(small), str(empty), str(tmp_path / "crash.npz"), "--out", str(tmp_path / "out")])
    assert code == 1
    out = capsys.readouterr().out
    failed = [line for line in out.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 2
    assert "empty.csv: file is empty" in failed[0] and "unexpected TypeError" in failed[1]
    page = (tmp_path / "out" / "report.html").read_text()
    assert "crash.npz" in page and "empty.csv" in page and "t (synthetic)" not in page.split("failed")[0]


def test_report_all_good_exits_0(tmp_path, small, capsys):
    assert main(["report", str(small), "--out", str(tmp_path / "out")]) == 0


def test_two_traces_of_one_name_keep_their_own_figures(tmp_path, capsys):
    # both are named synthetic-seed0: the second trace's figures overwrote the first's
    paths = []
    for folder, tokens in (("a", 64), ("b", 80)):
        (tmp_path / folder).mkdir()
        trace = synthetic_trace(tokens, 3, 8, 2, num_sequences=2, prompt_tokens=8, seed=0)
        paths.append(str(trace.save(tmp_path / folder / "t.npz")))
    assert main(["report", *paths, "--out", str(tmp_path / "out")]) == 0
    figures = tmp_path / "out" / "figures"
    first, second = figures / "synthetic-seed0-recall.svg", figures / "synthetic-seed0-2-recall.svg"
    assert first.read_bytes() != second.read_bytes()
    assert len(list(figures.glob("synthetic-seed0-2-*"))) * 2 == len(list(figures.iterdir()))
    page = (tmp_path / "out" / "report.html").read_text()
    assert "64 tokens" in page and "80 tokens" in page


def test_empty_out_is_refused(small, capsys):
    assert main(["report", str(small), "--out", ""]) == 2
    assert "--out" in capsys.readouterr().err


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_saved_traces_follow_the_umask(tmp_path, mask):
    trace = synthetic_trace(16, 2, 4, 1, seed=0)
    old = os.umask(mask)
    try:
        path = trace.save(tmp_path / "t.npz")
        path.chmod(0o600)
        trace.save(path)  # overwriting keeps to the umask too, not to the old file's or mkstemp's mode
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def test_report_files_follow_the_umask(tmp_path, small, capsys):
    old = os.umask(0o022)
    try:
        main(["report", str(small), "--out", str(tmp_path / "out")])
    finally:
        os.umask(old)
    for f in [tmp_path / "out" / "report.html", tmp_path / "out" / "summary.json",
              *(tmp_path / "out" / "figures").iterdir()]:
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f


def test_disk_full_is_one_line_and_leaves_nothing(monkeypatch, tmp_path, capsys):
    trace = synthetic_trace(16, 2, 4, 1, seed=0)
    target = tmp_path / "t.npz"
    target.write_bytes(b"old contents")

    def full(fh, arrays):
        fh.write(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("stmoe.trace._write_npz", full)
    with pytest.raises(StmoeError, match=r"t\.npz: cannot write \(No space left on device\)"):
        trace.save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.npz"]
    assert target.read_bytes() == b"old contents"


def test_report_disk_full_is_one_line(monkeypatch, tmp_path, small, capsys):
    def full(path, write):
        raise StmoeError(f"{path}: cannot write (No space left on device)")

    monkeypatch.setattr("stmoe.report.atomic_write", full)
    monkeypatch.setattr("stmoe.report.figures.atomic_write", full)
    assert main(["report", str(small), "--out", str(tmp_path / "out")]) == 2
    last = capsys.readouterr().err.splitlines()[-1]  # after the progress lines
    assert last.startswith("stmoe: error: ") and last.endswith(".svg: cannot write (No space left on device)")


# ---------------------------------------------------------------- arguments that used to crash or mislead
CONTEXT = ["simulate", "tiny-moe-code", "--system", "on-demand", "--context"]
BAD_CONTEXT = "context must be a number of tokens from 0 to 2147483647, got "


@pytest.mark.parametrize("argv,words", [
    (["simulate", "tiny-moe-code", "--system", "st-moe", "--sweep", "buffer_bytes=1e30"],
     "buffer of 1e+30 bytes holds"),
    (["simulate", "tiny-moe-code", "--system", "st-moe", "--profile", "qwen3-30b-a3b"],
     "profile: qwen3-30b-a3b has 48 layers x 128 experts but tiny-moe-code has 8 x 32"),
    (["simulate", "tiny-moe-code", "--dtype", "float7"], "unknown dtype 'float7'"),
    (["simulate", "tiny-moe-code", "--system", "on-demand", "--sweep", ""], "--sweep wants PARAM=V1,V2"),
    (["analyze", "qwen3-30b-a3b", "--permutations", "0"], "--permutations: must be >= 1, got 0"),
    (["record", "m", "-o", "x.npz", "--text", "t.txt", "--max-sequences", "-1"], "--max-sequences must be >= 1"),
    (["info", "x" * 300 + ".npz"], "File name too long"),
    # inf in the KV-cache bytes made every latency inf and the error named no field
    (CONTEXT + ["1e306"], BAD_CONTEXT + "1e306"),
    # the value as given, not as the float it was parsed to ("-5.0"); and float() reads "1_000"
    # and non-ASCII digits, where a typed context is a plain ASCII decimal
    *[(CONTEXT + [given], f"{BAD_CONTEXT}{shown}\n") for given, shown in
      [("-5", "-5"), (" nan ", "nan"), ("many", "many"), ("", "''"), ("1_000", "1_000"), ("\u0663", "\u0663")]],
])
def test_bad_arguments_are_one_line(capsys, argv, words):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err


def test_a_deeply_nested_explore_spec_is_one_line_naming_it(tmp_path, capsys):
    spec = tmp_path / "deep.toml"
    spec.write_text('traces = ["tiny-moe-code"]\nx = ' + "[" * 100_000 + "]" * 100_000 + "\n")
    assert main(["explore", str(spec)]) == 2
    err = capsys.readouterr().err
    assert err == f"stmoe: error: {spec}: nested too deeply to read (deeper than Python's recursion limit; " \
                  "a spec is a few flat tables)\n", err


def test_explore_on_a_full_disk_names_the_results_folder(tmp_path, capsys, monkeypatch):
    # pyarrow's write error carries errno 28 but no file name: it read "file: Error writing bytes ..."
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device")

    monkeypatch.setattr("stmoe.cli.explore_command.explore", full)
    spec = tmp_path / "s.toml"
    spec.write_text('traces = ["tiny-moe-code"]\npresets = ["accelerator"]\nsystems = ["on-demand"]\n')
    assert main(["explore", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"stmoe: error: {tmp_path / 'out'}: cannot write the results "
                                                   "(Error writing bytes to file. Detail: [errno 28] No space left"), err


def test_a_one_expert_trace_is_not_told_about_a_profile_nobody_gave(tmp_path, capsys):
    # every token routes expert 0, so the split's halves look alike token by token: the default
    # split was refused as "profile: ... holds 100% of the scored tokens"
    path = Trace(np.zeros((40, 2, 1), np.int16), num_experts=1, sequence=np.repeat([0, 1], 20)).save(tmp_path / "one.npz")
    assert main(["simulate", str(path), "--hidden", "64", "--ffn", "32", "--system", "st-moe", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(r["system"], r["hit_rate"]) for r in out["results"]] == [("st-moe", 1.0)]
    assert any(n.startswith(f"profile: the first half of {path}'s sequences (20 tokens)") for n in out["notes"])
    # the very same tokens given as the profile are still refused
    assert main(["predict", str(path), "--profile", str(path)]) == 2
    assert capsys.readouterr().err == (f"stmoe: error: profile: {path} holds 100% of the scored tokens of {path}; "
                                       "give a profile of other tokens of the same model\n")


def test_a_profile_from_differently_trained_weights_is_refused(capsys):
    # same model name and shape: the control's routing profiled st-moe for the trained model silently
    from stmoe.predictors.base import check_compatible
    assert main(["simulate", "tiny-moe-code", "--system", "st-moe", "--profile", "tiny-moe-untrained"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        "stmoe: error: profile: tiny-moe-untrained and tiny-moe-code were routed by differently trained weights "
        "(meta.training.steps 0 and "), err
    check_compatible(catalog.load_trace("tiny-moe-prose"), catalog.load_trace("tiny-moe-code"))  # one training

    def routed(training):
        ids = synthetic_trace(16, 2, 4, 1, seed=0).expert_ids
        return Trace(ids, num_experts=4, meta={"training": training})

    with pytest.raises(StmoeError, match=r"meta.training.final_heldout_loss 1.5 and 2.5\); a profile must"):
        check_compatible(routed({"steps": 9, "final_heldout_loss": 1.5}), routed({"steps": 9, "final_heldout_loss": 2.5}))
    check_compatible(routed({"steps": 9, "final_heldout_loss": 1.5}), routed({"steps": 9, "final_heldout_loss": 1.5}))
    check_compatible(synthetic_trace(16, 2, 4, 1, seed=1), routed({"steps": 9}))   # nothing recorded: shape only


def test_progress_goes_to_stderr_once_a_command_is_slow(capsys):
    from stmoe.cli.output import Progress
    quiet, slow = Progress(quiet_for=60), Progress(quiet_for=0)
    quiet("scoring st-moe (1 of 9)")
    slow("scoring st-moe (1 of 9)")
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.endswith("s] scoring st-moe (1 of 9)\n")


def test_commands_report_progress(monkeypatch, capsys):
    monkeypatch.setattr("stmoe.cli.output.Progress.__init__.__defaults__", (0.0,))
    assert main(["predict", "qwen3-30b-a3b", "--predictor", "st-moe", "--predictor", "oracle"]) == 0
    assert main(["simulate", "qwen3-30b-a3b", "--system", "st-moe"]) == 0
    assert main(["analyze", "qwen3-30b-a3b", "--permutations", "3"]) == 0
    assert main(["simulate", "qwen3-30b-a3b", "--system", "lru-cache", "--sweep", "link_bandwidth=1e9,2e9"]) == 0
    err = capsys.readouterr().err
    for stage in ("scoring st-moe (1 of 2)", "scoring oracle (2 of 2)", "simulating on-demand",
                  "simulating st-moe (1 of 1)", "cross-layer affinity: 47 layer pairs, 3 shuffles within sequences",
                  "link_bandwidth = 1e+09 (1 of 2)", "link_bandwidth = 2e+09 (2 of 2)"):
        assert stage in err, err


def test_usage_error_with_a_line_break_is_one_line(capsys):
    # found by the hypothesis suite at 600 examples: argparse echoes the argument as it is
    with pytest.raises(SystemExit) as exc:
        main(["info", "t.npz", "\n"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and "unrecognized arguments: \\n" in err


@pytest.mark.parametrize(("argv", "said"), [(["--nosuchflag"], "unrecognized arguments: --nosuchflag"),
                                            (["--nosuchflag", "datasets"], "unrecognized arguments: --nosuchflag"),
                                            ([], "the following arguments are required: COMMAND")])
def test_an_unknown_top_level_flag_is_named(capsys, argv, said):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err == f"stmoe: error: {said} (see stmoe --help)\n"


@pytest.mark.parametrize("option,value", [("--dtype", "float7"), ("--device", "tpu9"), ("--dtype", "Tensor")])
def test_record_refuses_unknown_torch_names_before_loading(tmp_path, capsys, option, value):
    pytest.importorskip("torch")
    text = tmp_path / "t.txt"
    text.write_text("hello")
    assert main(["record", "no/such-model", "-o", str(tmp_path / "o.npz"), "--text", str(text), option, value]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{option} {value!r}: not a torch" in err


@pytest.mark.parametrize("make,words", [
    (os.mkfifo, "is a named pipe, not a regular file"),
    (os.mkdir, "is a directory, not a text file"),
    (lambda p: os.symlink("/dev/zero", p), "is a character device, not a regular file"),
    (lambda p: open(p, "w").close(), "file is empty"),
    (lambda p: None, "no such file"),
])
def test_record_text_says_what_the_path_is(tmp_path, capsys, make, words):
    # all of these read "no such file" before; a pipe or /dev/zero must not be read at all
    text = tmp_path / "t.txt"
    make(text)
    assert main(["record", "no/such-model", "-o", str(tmp_path / "o.npz"), "--text", str(text)]) == 2
    err = capsys.readouterr().err
    assert err == f"stmoe: error: --text {text}: {words}\n", err


def test_record_with_the_hub_unreachable_fails_at_once_in_one_line(tmp_path, capsys, monkeypatch):
    # Nothing listens on 127.0.0.1:9, so the connection is refused at once; transformers alone
    # retries each file with backoff (48 s and 23 lines with no network; 56 s for this test)
    pytest.importorskip("transformers")
    import time

    from stmoe.recording.recorder import hub_unreachable
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    hub_unreachable.cache_clear()   # asked once per process: ask again with this endpoint
    start = time.perf_counter()
    try:
        assert main(["record", "no-such-org/no-such-moe", "-o", str(tmp_path / "o.npz"), "--prompt", "hi"]) == 2
    finally:
        hub_unreachable.cache_clear()
    assert time.perf_counter() - start < 15
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    # the OS's own reason follows ("Connection refused", or "Network is unreachable" without loopback)
    assert ("model 'no-such-org/no-such-moe': not in the local Hugging Face cache, and the hub "
            "127.0.0.1:9 is unreachable: ") in err, err


def test_report_under_a_virtual_memory_limit_is_written_without_charts(tmp_path, small):
    # vl-convert's V8 aborts the whole process (SIGTRAP) when it cannot reserve its address space
    import json
    import resource
    import subprocess
    import sys

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    out = tmp_path / "rep"
    done = subprocess.run([sys.executable, "-m", "stmoe", "report", str(small), "--out", str(out)],
                          preexec_fn=limit, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 1, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("stmoe: the report has no charts") and "ulimit -v 3145728 KiB" in last, last
    page = (out / "report.html").read_text()
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert "synthetic-seed0-recall.vl.json" in figures and "synthetic-seed0-accelerator.vl.json" in figures
    assert all(name.endswith(".vl.json") for name in figures), figures
    assert "Charts not rendered" in page and page.count("chart not rendered") == len(figures)
    spec = json.loads((out / "figures" / "synthetic-seed0-recall.vl.json").read_text())
    assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["charts_not_rendered"].startswith("vl-convert's JavaScript engine did not start")
    assert len(summary["traces"]) == 1 and not summary["failed"]


def test_hostile_review_cases_are_one_line(tmp_path):
    """Found by the session-3 hostile review: a limit of inf crashed the import; a constant whose
    energy overflows printed inf/NaN (invalid JSON) with exit 0."""
    import os
    import subprocess
    import sys
    env = {**os.environ, "STMOE_MAX_TABLE_BYTES": "inf", "STMOE_MAX_TEXT_BYTES": "1e400"}
    run = subprocess.run([sys.executable, "-m", "stmoe", "--version"], env=env, capture_output=True, text=True)
    assert run.returncode == 0 and "Traceback" not in run.stderr
    assert run.stderr.count("\n") == 2 and "using" in run.stderr
    run = subprocess.run([sys.executable, "-m", "stmoe", "simulate", "granite-3.0-1b-a400m-sglang", "--system",
                          "st-moe", "--sweep", "link_pj_per_byte=1e300", "--json"], capture_output=True, text=True)
    assert run.returncode == 2 and run.stdout == "" and run.stderr.count("\n") == 1
    assert "link_pj_per_byte must be at most 1e+30, got 1e+300" in run.stderr


def test_dense_bytes_meta_is_type_checked():
    from stmoe import Trace, TraceError
    ids = np.zeros((2, 2, 1), np.int16)
    for bad in ("abc", [1, "x"], [[1], [2]], [1e300, 1], {"a": 1}, [-5, 1]):
        with pytest.raises(TraceError, match="meta.dense_bytes"):
            Trace(ids, num_experts=4, meta={"dense_bytes": bad})
    assert Trace(ids, num_experts=4, meta={"dense_bytes": [10, None]}).meta["dense_bytes"] == [10, None]


def test_lab_command_quotes_a_folder_with_spaces(tmp_path):
    import subprocess
    import sys
    folder = tmp_path / "nb sp;ace"
    folder.mkdir()
    (folder / "00_tour.ipynb").write_text("{}")
    out = subprocess.run([sys.executable, "-m", "stmoe", "lab", "--notebooks", str(folder), "--print-command"],
                         capture_output=True, text=True, check=True, env={**__import__("os").environ,
                                                                         "XDG_CACHE_HOME": str(tmp_path)}).stdout
    import shlex
    words = shlex.split(out)
    assert f"--notebook-dir={tmp_path}" in words and "--LabApp.default_url=/lab/tree/nb sp;ace/00_tour.ipynb" in words


def test_context_reaches_the_model_sizes_as_a_plain_float(monkeypatch, capsys):
    """--context is checked where its text is at hand; the simulator gets a float, not a
    subclass remembering the text."""
    from stmoe.cli import simulate_command
    from stmoe.sim.comparison import dims_for
    seen = []

    def spy(trace, **given):
        seen.append(given["context"])
        return dims_for(trace, **given)

    monkeypatch.setattr(simulate_command, "dims_for", spy)
    assert main(["simulate", "tiny-moe-code", "--system", "on-demand", "--context", " 4096 ", "--json"]) == 0
    assert type(seen[0]) is float and seen[0] == 4096.0
    assert "4096 tokens of context (given)" in capsys.readouterr().out


def test_every_commands_help_prints(capsys):
    # a `%` in a help text is a format code to argparse: explore's --help once died on "0.1%"
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert len(sub.choices) >= 10
    for name in sub.choices:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0, name
        assert capsys.readouterr().out.startswith(f"usage: stmoe {name}"), name
