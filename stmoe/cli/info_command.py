"""`stmoe info TRACE [--json]`: what a trace holds."""

from __future__ import annotations

from stmoe.cli.output import print_json
from stmoe.readers.catalog import load_trace


def register(sub) -> None:
    p = sub.add_parser("info", help="summarise a trace (path or bundled name)")
    p.add_argument("trace", metavar="TRACE", help="a trace file or the name of a bundled trace")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(run=run)


def run(args) -> int:
    s = load_trace(args.trace).summary()
    if args.json:
        print_json(s)
        return 0
    fields = ", ".join(k for k, v in s["fields"].items() if v) or "none"
    print(f"{s['name']}{'  [SYNTHETIC]' if s['synthetic'] else ''}")
    print(f"  model      {s['model']}")
    print(f"  shape      {s['num_layers']} MoE layers, {s['num_experts']} experts, top-{s['top_k']}")
    print(f"  tokens     {s['tokens']} ({s['prefill_tokens']} prefill, {s['decode_tokens']} decode) "
          f"in {s['sequences']} sequence(s)")
    print(f"  fields     {fields}")
    for key in ("domain", "source", "license"):
        if s[key]:
            print(f"  {key:<10} {s[key]}")
    training = s["training"] or {}
    if training.get("steps") is not None:
        held = training.get("heldout_loss")
        print(f"  training   {training['steps']} steps"
              + (f", {training['tokens_seen']:,} tokens" if "tokens_seen" in training else "")
              + (f", final training loss {training['final_loss_last50']:.2f}"
                 if "final_loss_last50" in training else "")
              + (f", held-out loss {held:.2f} nats/token" if isinstance(held, (int, float)) else ""))
    for caveat in s["caveats"]:
        print(f"  caveat     {caveat}")
    return 0
