"""Build the bundled traces in data/ from scratch: corpora -> tokenizer -> small MoE -> traces.

    PYTHONPATH=. python scripts/build_bundled_traces.py            # everything, ~25 min on 2 cores

Stages (each cached in --build-dir, so a rerun after a crash resumes; --fresh starts over):
  corpora    Python standard library source (PSF license) and the King James Bible (public
             domain, Debian packages bible-kjv + bible-kjv-text via `apt-get download`);
             every Nth file / book is held out and never trained on.
  tokenizer  byte-level BPE trained on the training split of both corpora.
  train      the Qwen3-MoE configuration of scripts/bundled_model.json, CPU, fixed seed.
  record     held-out text of each domain recorded with stmoe.record (teacher-forced).
  catalog    data/<name>.npz, data/datasets.json, structure figures for data/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CONFIG = Path(__file__).resolve().parent / "bundled_model.json"
EOS = "<|endoftext|>"
KJV_VERSE = re.compile(r"^(\d?[A-Za-z]+)(\d+):(\d+) (.*)$")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def held_out(index: int, every: int) -> bool:
    return index % every == every // 2


# ---------------------------------------------------------------------------------------- corpora

def stdlib_documents(stdlib: Path) -> list[tuple[str, str]]:
    """(relative path, source) of the standard library's own modules, tests and vendored
    packages excluded, in a stable order."""
    docs = []
    for path in sorted(stdlib.rglob("*.py")):
        rel = path.relative_to(stdlib).as_posix()
        parts = set(rel.split("/")[:-1])
        if parts & {"site-packages", "test", "tests", "idle_test"}:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if len(text) >= 200:
            docs.append((rel, text))
    return docs


def kjv_text(build: Path, packages: list[str]) -> str:
    """The whole King James Bible as printed by Debian's `bible` program from its own data."""
    out = build / "kjv.txt"
    if out.exists():
        return out.read_text()
    debs = build / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", *packages], cwd=debs, check=True,
                   stderr=subprocess.DEVNULL)
    root = debs / "root"
    for deb in sorted(debs.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    # `bible` cannot open a long absolute data path, so run it beside the data with a short one.
    text = subprocess.run(["./usr/bin/bible", "-f", "-d", "usr/lib/bible.data",
                           "Genesis1:1-Revelation22:21"], cwd=root, check=True, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL).stdout
    if text.count("\n") < 31000:
        sys.exit(f"build: `bible` printed only {text.count(chr(10))} verses, expected 31102")
    out.write_text(text)
    return text


def kjv_documents(text: str) -> list[tuple[str, str]]:
    """One document per book; a paragraph per chapter; verse numbers dropped."""
    books: dict[str, dict[int, list[str]]] = {}
    for line in text.splitlines():
        m = KJV_VERSE.match(line.strip())
        if m:
            books.setdefault(m[1], {}).setdefault(int(m[2]), []).append(m[4].strip())
    return [(book, "\n\n".join(" ".join(v) for v in chapters.values()))
            for book, chapters in books.items()]


def corpora(build: Path, cfg: dict) -> dict[str, dict[str, list[tuple[str, str]]]]:
    every = cfg["corpora"]["heldout_every"]
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    docs = {"code": stdlib_documents(stdlib),
            "prose": kjv_documents(kjv_text(build, cfg["corpora"]["bible_packages"]))}
    split = {}
    for domain, items in docs.items():
        split[domain] = {"train": [d for i, d in enumerate(items) if not held_out(i, every)],
                         "heldout": [d for i, d in enumerate(items) if held_out(i, every)]}
        log(f"corpus {domain}: {len(split[domain]['train'])} training documents "
            f"({sum(len(t) for _, t in split[domain]['train']) / 1e6:.1f} MB), "
            f"{len(split[domain]['heldout'])} held out")
    return split


# -------------------------------------------------------------------------------------- tokenizer

def tokenizer(build: Path, cfg: dict, split: dict):
    from tokenizers import ByteLevelBPETokenizer, Tokenizer
    path = build / "tokenizer.json"
    if path.exists():
        return Tokenizer.from_file(str(path))
    tok = ByteLevelBPETokenizer()
    texts = [t for domain in split.values() for _, t in domain["train"]]
    tok.train_from_iterator(texts, vocab_size=cfg["tokenizer"]["vocab_size"],
                            min_frequency=cfg["tokenizer"]["min_frequency"],
                            special_tokens=[EOS], show_progress=False)
    tok.save(str(path))
    log(f"tokenizer: {tok.get_vocab_size()} tokens")
    return Tokenizer.from_file(str(path))


def encode_documents(tok, docs: list[tuple[str, str]]) -> list[np.ndarray]:
    return [np.asarray(e.ids, dtype=np.int32) for e in tok.encode_batch([t for _, t in docs])]


def token_stream(tok, docs: list[tuple[str, str]]) -> np.ndarray:
    eos = tok.token_to_id(EOS)
    pieces = []
    for ids in encode_documents(tok, docs):
        pieces += [ids, np.array([eos], dtype=np.int32)]
    return np.concatenate(pieces)


# ------------------------------------------------------------------------------------------ train

def build_model(cfg: dict):
    from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM
    params = {k: v for k, v in cfg["model"].items() if k != "architecture"}
    return Qwen3MoeForCausalLM(Qwen3MoeConfig(**params, output_router_logits=True))


def train(build: Path, cfg: dict, streams: dict[str, np.ndarray],
          heldout: dict[str, list[np.ndarray]], stop_step: int | None = None) -> dict:
    """Train until held-out loss stops improving (less than `plateau_improvement` over the last
    `plateau_window` of the steps so far), the step budget is spent, or `max_minutes` pass;
    which of the three ended the run is recorded in the summary with the loss curve. The time cap
    makes the step count depend on the machine; `stop_step` replaces it (same schedule, stop after
    that many steps), which reproduces a recorded run's weights on any machine."""
    import torch
    summary_path = build / "train_summary.json"
    if (build / "model" / "config.json").exists() and summary_path.exists():
        return json.loads(summary_path.read_text())
    t = cfg["training"]
    torch.set_num_threads(t["threads"])
    torch.manual_seed(cfg["seed"])
    rng = np.random.default_rng(cfg["seed"])
    model = build_model(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params / 1e6:.1f} M parameters")
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embed" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embed" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": t["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=t["lr"], betas=(0.9, 0.95))

    def lr_at(step: int) -> float:
        if step < t["warmup_steps"]:
            return t["lr"] * (step + 1) / t["warmup_steps"]
        frac = (step - t["warmup_steps"]) / max(1, t["steps"] - t["warmup_steps"])
        floor = t["min_lr_ratio"]
        return t["lr"] * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * frac)))

    def evaluate(step: int) -> dict:
        model.eval()
        row = {"step": step, **{d: heldout_loss(model, seqs) for d, seqs in heldout.items()}}
        model.train()
        return row

    domains = sorted(streams)
    per_domain = t["batch_size"] // len(domains)
    width = t["seq_len"]
    model.train()
    start = time.time()
    train_curve, heldout_curve = [], [evaluate(0)]
    stopped = "step budget"
    for step in range(t["steps"]):
        rows = []
        for d in domains:
            starts = rng.integers(0, len(streams[d]) - width, size=per_domain)
            rows += [streams[d][s:s + width] for s in starts]
        batch = torch.from_numpy(np.stack(rows).astype(np.int64))
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        out = model(input_ids=batch, labels=batch)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t["grad_clip"])
        opt.step()
        lm_loss = float(out.loss.detach()) - cfg["model"]["router_aux_loss_coef"] * float(out.aux_loss.detach())
        train_curve.append(round(lm_loss, 4))
        done = step + 1
        if done % t["eval_every"] == 0 or done == t["steps"]:
            heldout_curve.append(evaluate(done))
            h = heldout_curve[-1]
            log(f"step {done:4d}/{t['steps']} lm loss {np.mean(train_curve[-t['eval_every']:]):.3f} "
                f"held-out " + " ".join(f"{d} {h[d]:.3f}" for d in sorted(heldout))
                + f" aux {float(out.aux_loss):.3f} lr {lr_at(step):.2e} "
                f"{(time.time() - start) / done:.2f} s/step")
            # plateau: mean held-out loss now against the evaluation a fifth of the run back
            back = [r for r in heldout_curve if r["step"] <= done * (1 - t["plateau_window"])]
            if done >= t["steps"] * 0.4 and back:
                then, now = (np.mean([r[d] for d in heldout]) for r in (back[-1], h))
                if (then - now) / then < t["plateau_improvement"]:
                    stopped = f"plateau (held-out improved {100 * (then - now) / then:.2f}% since step {back[-1]['step']})"
                    break
            if stop_step is not None and done >= stop_step:
                stopped = f"--stop-step {stop_step}"
                break
            if stop_step is None and time.time() - start > 60 * t["max_minutes"]:
                stopped = f"time cap ({t['max_minutes']} min)"
                break
    model.save_pretrained(build / "model")
    summary = {"steps": done, "planned_steps": t["steps"], "stopped_by": stopped,
               "tokens_seen": done * t["batch_size"] * width,
               "final_loss_last50": round(float(np.mean(train_curve[-50:])), 4),
               "final_heldout_loss": {d: round(heldout_curve[-1][d], 4) for d in heldout},
               "train_seconds": round(time.time() - start, 1), "parameters": n_params,
               "threads": t["threads"], "train_curve": train_curve, "heldout_curve": heldout_curve}
    summary_path.write_text(json.dumps(summary, indent=2))
    log(f"trained: {done} steps, stopped by {stopped}, {summary['train_seconds'] / 60:.1f} min")
    return summary


def heldout_loss(model, sequences: list[np.ndarray]) -> float:
    import torch
    with torch.no_grad():
        losses = [float(model(input_ids=torch.from_numpy(s[None].astype(np.int64)),
                              labels=torch.from_numpy(s[None].astype(np.int64))).loss)
                  for s in sequences]
    return float(np.mean(losses))


# ----------------------------------------------------------------------------------------- record

def heldout_sequences(tok, docs: list[tuple[str, str]], length: int, count: int) -> list[np.ndarray]:
    """`count` windows of `length` tokens from the held-out documents, round-robin over the
    documents long enough, each window from the start of its document onwards, never overlapping."""
    encoded = [ids for ids in encode_documents(tok, docs) if len(ids) >= length]
    if not encoded:
        sys.exit(f"build: no held-out document has {length} tokens")
    out, offset = [], 0
    while len(out) < count:
        added = False
        for ids in encoded:
            if offset + length <= len(ids) and len(out) < count:
                out.append(ids[offset:offset + length])
                added = True
        if not added:
            sys.exit(f"build: held-out text gives only {len(out)} windows of {length} tokens")
        offset += length
    return out


def record_domain(model, cfg: dict, tok, domain: str, docs, name: str, training: dict):
    """Record `model` on the held-out sequences of one domain; returns (trace, held-out loss)."""
    import stmoe
    r = cfg["recording"]
    seqs = heldout_sequences(tok, docs, r["sequence_tokens"], r["sequences_per_domain"])
    model.eval()
    loss = heldout_loss(model, seqs[:cfg["training"]["eval_sequences"]])
    source = ("Python %s standard library source (held-out modules)" % sys.version.split()[0]
              if domain == "code" else "King James Bible (held-out books), Debian bible-kjv-text")
    trace = stmoe.record(model, [s.tolist() for s in seqs], prompt_tokens=r["prompt_tokens"],
                         model_id="stmoe-bundled-qwen3moe-8x32", prompt_source=source,
                         progress=False,
                         meta={"name": name, "domain": domain, "source": source,
                               "license": ("PSF-2.0 (Python standard library)" if domain == "code"
                                           else "public domain (King James Version, 1611)"),
                               "training": {**training, "heldout_loss": round(loss, 4)}})
    return trace, loss


def training_meta(summary: dict, every: int) -> dict:
    """What a trace's meta says about training: the figures of the summary, with the training
    curve averaged over each evaluation interval so the meta stays small."""
    curve = summary["train_curve"]
    train = [{"step": min(i + every, len(curve)), "loss": round(float(np.mean(curve[i:i + every])), 4)}
             for i in range(0, len(curve), every)]
    return {**{k: v for k, v in summary.items() if not k.endswith("_curve")},
            "train_curve": train, "heldout_curve": summary["heldout_curve"]}


# ---------------------------------------------------------------------------------------- catalog

NAMES = {"code": "tiny-moe-code", "prose": "tiny-moe-prose"}
CONTROL = "tiny-moe-untrained"
SHAPE = ("(8 layers, top-4 of 32), 64 prefill + 448 teacher-forced decode tokens per sequence")
DESCRIPTIONS = {
    "code": "held-out Python standard library modules, routed by the project's small trained "
            "Qwen3-MoE " + SHAPE,
    "prose": "held-out books of the King James Bible, routed by the project's small trained "
             "Qwen3-MoE " + SHAPE,
    CONTROL: "control: the same held-out code as tiny-moe-code, routed by the same architecture "
             "with its initial, untrained weights " + SHAPE,
}


def findings(rows: list[dict]) -> str:
    """One paragraph reading the table, so the prose always matches the numbers above it."""
    by = {r["trace"]: r for r in rows}
    untrained = {"code": CONTROL, "prose": "untrained-prose"}
    parts = []
    for d, name in NAMES.items():
        r, u = by[name], by[untrained[d]]
        parts.append(f"{d}: cross-layer recall {100 * r['cross_layer']:.0f}% "
                     f"({r['cross_layer'] / r['chance']:.1f}x chance; untrained "
                     f"{100 * u['cross_layer']:.0f}%), next-token reuse {100 * r['reuse']:.0f}% "
                     f"(untrained {100 * u['reuse']:.0f}%), popularity {100 * r['popularity']:.0f}%, "
                     f"top-10% share {100 * r['top10_share']:.0f}% (untrained "
                     f"{100 * u['top10_share']:.0f}%)")
    gained = all(by[n]["cross_layer"] > by[untrained[d]]["cross_layer"] for d, n in NAMES.items())
    return ("In this build, " + "; ".join(parts) + ". Training made the cross-layer signal "
            + ("stronger" if gained else "not uniformly stronger") + " than the untrained "
            "network's.")


def previous_rows(summary: dict) -> tuple[list[dict], str]:
    """The structure rows of the bundled traces this build replaces, measured before they are
    overwritten, so the data card shows what the new training changed. A rerun of the same
    training (same steps and final held-out loss) replaces nothing new, so it adds no rows."""
    from scripts.measure_structure import measure
    from stmoe import load_trace
    from stmoe.readers.catalog import DATA_DIR
    rows, steps = [], set()
    for name in NAMES.values():
        if (DATA_DIR / f"{name}.npz").exists():
            trace = load_trace(name)
            before = trace.meta.get("training", {})
            if (before.get("steps"), before.get("final_heldout_loss")) == \
                    (summary["steps"], summary["final_heldout_loss"]):
                continue
            steps.add(before.get("steps"))
            row = measure(trace)
            rows.append({**row, "trace": f"{name} (previous build)"})
    text = (f"The rows marked *previous build* are the traces this build replaced (a model trained "
            f"{', '.join(str(s) for s in sorted(steps, key=str))} steps), measured just before "
            "they were overwritten." if rows else "")
    return rows, text


def write_figure(training: dict, path: Path) -> None:
    import vl_convert

    from stmoe.charts.trace_analysis import training_curve_chart
    tmp = path.with_suffix(".tmp")
    tmp.write_text(vl_convert.vegalite_to_svg(training_curve_chart(training).to_dict()))
    tmp.replace(path)


def write_data_dir(traces: dict, calibration: list, previous: tuple[list, str], cfg: dict,
                   summary: dict, losses: dict, record_seconds: float) -> None:
    from scripts.measure_structure import markdown, measure
    from stmoe.readers.catalog import CATALOG, DATA_DIR, sha256_of
    DATA_DIR.mkdir(exist_ok=True)
    catalog = []
    # shipped public traces (scripts/ship_public_traces.py) stay in the catalog
    shipped = [e for e in json.loads(CATALOG.read_text()) if e.get("kind") == "public"] if CATALOG.exists() else []
    for name, trace in traces.items():
        path = trace.save(DATA_DIR / f"{name}.npz")
        # kind "control": loadable by name, but not one of the report's default traces
        catalog.append({"name": name, "file": path.name, "sha256": sha256_of(path),
                        "kind": "control" if name == CONTROL else "project",
                        "description": DESCRIPTIONS.get(trace.meta["domain"] if name != CONTROL else CONTROL),
                        "domain": trace.meta["domain"]})
    tmp = CATALOG.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(catalog + shipped, indent=2) + "\n")
    tmp.replace(CATALOG)
    write_figure(traces[NAMES["code"]].meta["training"], DATA_DIR / "training_curve.svg")
    rows = [measure(t) for t in [*traces.values(), *calibration]]
    rows = [{**r, "trace": n} for r, n in zip(rows, [*traces, "untrained-prose"])]
    rows += previous[0]
    try:
        from stmoe import load_trace
        rows.append(measure(load_trace("qwen3-30b-a3b")))
    except Exception as exc:  # the reference trace is optional for a rebuild elsewhere
        log(f"qwen3-30b-a3b not measured: {exc}")
    sums = [(e["file"], e["sha256"]) for e in catalog]
    sums.append(("datasets.json", sha256_of(CATALOG)))
    t = cfg["training"]
    template = Path(__file__).with_name("bundled_readme.md.in").read_text()
    readme = template.format(
        model=json.dumps(cfg["model"], indent=2), training=json.dumps(t, indent=2),
        python=sys.version.split()[0], steps=summary["steps"], tokens=summary["tokens_seen"],
        planned_steps=summary["planned_steps"], stopped_by=summary["stopped_by"],
        eval_every=t["eval_every"], max_minutes=t["max_minutes"],
        tokens_ratio=summary["tokens_seen"] / 614400, aux_coef=cfg["model"]["router_aux_loss_coef"],
        threads=summary["threads"], sec_per_step=summary["train_seconds"] / summary["steps"],
        batch_tokens=t["batch_size"] * t["seq_len"],
        loss=summary["final_loss_last50"], train_min=summary["train_seconds"] / 60,
        record_min=record_seconds / 60, params=summary["parameters"] / 1e6,
        loss_code=losses["code"], loss_prose=losses["prose"],
        untrained_code=losses["untrained-code"], untrained_prose=losses["untrained-prose"],
        seed=cfg["seed"], every=cfg["corpora"]["heldout_every"], table=markdown(rows),
        findings=findings(rows), previous=previous[1],
        counts="\n".join(f"- `{n}`: {t.num_tokens} tokens in {len(np.unique(t.sequence))} "
                         f"sequences, {int((t.phase == 1).sum())} of them decode"
                         for n, t in traces.items()),
        sha256="\n".join(f"{digest}  {f}" for f, digest in sums))
    tmp = DATA_DIR / "README.md.tmp"
    tmp.write_text(readme)
    tmp.replace(DATA_DIR / "README.md")
    log("wrote data/: " + ", ".join(f for f, _ in sums) + ", training_curve.svg, README.md")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", type=Path, default=ROOT / "build" / "bundled")
    ap.add_argument("--fresh", action="store_true", help="delete the build dir first")
    ap.add_argument("--stop-after", choices=["corpora", "tokenizer", "train", "record"])
    ap.add_argument("--stop-step", type=int, metavar="N",
                    help="stop training after N steps instead of at the time cap (to reproduce a "
                         "recorded run exactly: the data card gives N)")
    args = ap.parse_args(argv)
    cfg = json.loads(CONFIG.read_text())
    if args.fresh and args.build_dir.exists():
        shutil.rmtree(args.build_dir)
    args.build_dir.mkdir(parents=True, exist_ok=True)
    split = corpora(args.build_dir, cfg)
    if args.stop_after == "corpora":
        return 0
    tok = tokenizer(args.build_dir, cfg, split)
    if args.stop_after == "tokenizer":
        return 0
    streams = {d: token_stream(tok, parts["train"]) for d, parts in split.items()}
    for d, s in streams.items():
        log(f"{d}: {len(s) / 1e6:.2f} M training tokens")
    r = cfg["recording"]
    heldout = {d: heldout_sequences(tok, parts["heldout"], r["sequence_tokens"],
                                    r["sequences_per_domain"])[:cfg["training"]["eval_sequences"]]
               for d, parts in split.items()}
    summary = train(args.build_dir, cfg, streams, heldout, args.stop_step)
    if args.stop_after == "train":
        return 0
    import torch
    from transformers import Qwen3MoeForCausalLM
    started = time.time()
    torch.set_num_threads(cfg["training"]["threads"])
    trained = Qwen3MoeForCausalLM.from_pretrained(args.build_dir / "model", dtype="float32")
    torch.manual_seed(cfg["seed"])
    untrained = build_model(cfg)  # the same initial weights training started from
    meta = training_meta(summary, cfg["training"]["eval_every"])
    traces, losses, calibration = {}, {}, []
    for domain, parts in split.items():
        traces[NAMES[domain]], losses[domain] = record_domain(trained, cfg, tok, domain, parts["heldout"],
                                                              NAMES[domain], meta)
        log(f"recorded {domain}: {traces[NAMES[domain]].num_tokens} tokens, held-out loss "
            f"{losses[domain]:.3f}")
        control, losses[f"untrained-{domain}"] = record_domain(
            untrained, cfg, tok, domain, parts["heldout"],
            CONTROL if domain == "code" else f"untrained-{domain}", {"steps": 0})
        if domain == "code":
            traces[CONTROL] = control
        else:
            calibration.append(control)
    if args.stop_after == "record":
        return 0
    write_data_dir(traces, calibration, previous_rows(summary), cfg, summary, losses, time.time() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
