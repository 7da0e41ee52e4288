"""`stmoe record MODEL -o OUT.npz (--text FILE | --prompt TEXT)...`: record a routing trace from
a Hugging Face transformers MoE model (a hub id or a local directory)."""

from __future__ import annotations

from pathlib import Path

from stmoe.cli.output import print_json
from stmoe.errors import TraceError
from stmoe.files import read_regular
from stmoe.recording.recorder import RecordError, from_pretrained, record
from stmoe.trace import check_save_path


def register(sub) -> None:
    p = sub.add_parser("record", help="record a routing trace from a Hugging Face MoE model",
                       description=__doc__)
    p.add_argument("model", help="model id on the Hugging Face hub or a local model directory")
    p.add_argument("-o", "--output", required=True, type=Path, help="trace file to write (.npz)")
    p.add_argument("--text", type=Path, action="append", default=[],
                   help="text file, teacher-forced in windows of --sequence-tokens (repeatable)")
    p.add_argument("--prompt", action="append", default=[],
                   help="a prompt (all prefill), usually with --generate (repeatable)")
    p.add_argument("--sequence-tokens", type=int, default=512,
                   help="tokens per window of --text (default 512)")
    p.add_argument("--prompt-tokens", type=int, default=64,
                   help="leading tokens of each --text window marked prefill (default 64)")
    p.add_argument("--max-sequences", type=int, default=None, help="stop after this many windows")
    p.add_argument("--generate", type=int, default=0, help="tokens to generate greedily per prompt")
    p.add_argument("--revision", help="model revision (branch, tag or commit)")
    p.add_argument("--dtype", help="torch dtype to load the model in (default: the model's own)")
    p.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    p.add_argument("--domain", help="domain label stored in the trace (e.g. code, prose)")
    p.add_argument("--no-stale-gate", action="store_true",
                   help="skip the stale_gate field (layer l's router on layer l-1's input)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def _windows(ids: list[int], width: int) -> list[list[int]]:
    return [ids[i:i + width] for i in range(0, len(ids) - width + 1, width)]


def _check_torch_names(dtype: str | None, device: str | None) -> None:
    """Refuse a dtype or device torch does not know before the tokenizer and model are fetched."""
    import torch

    if dtype is not None and dtype != "auto" and not isinstance(getattr(torch, dtype, None), torch.dtype):
        raise RecordError(f"--dtype {dtype!r}: not a torch dtype (e.g. float32, bfloat16, float16, auto)")
    if device is not None:
        try:
            torch.device(device)
        except (RuntimeError, ValueError):
            raise RecordError(f"--device {device!r}: not a torch device (cpu, cuda, cuda:1, mps, ...)") from None


def _read_text(path: Path) -> str:
    """A --text file: a regular file (a pipe, a device or a directory is refused by what it is,
    before a byte is read) of at most STMOE_MAX_TEXT_BYTES, undecodable bytes replaced."""
    try:
        return read_regular(path, what="a text file").decode("utf-8", errors="replace")
    except TraceError as exc:
        raise RecordError(f"--text {exc}") from None


def run(args) -> int:
    if bool(args.text) == bool(args.prompt):
        raise RecordError("give either --text FILE or --prompt TEXT (not both, not neither)")
    if args.sequence_tokens < 2 or not 0 <= args.prompt_tokens < args.sequence_tokens:
        raise RecordError(f"--prompt-tokens {args.prompt_tokens} must be in [0, --sequence-tokens "
                          f"{args.sequence_tokens})")
    if args.max_sequences is not None and args.max_sequences < 1:
        raise RecordError(f"--max-sequences must be >= 1, got {args.max_sequences}")
    if args.generate < 0:
        raise RecordError(f"--generate must be >= 0, got {args.generate}")
    check_save_path(args.output)
    texts = [_read_text(path) for path in args.text]   # before torch and the model: a bad file costs nothing
    _check_torch_names(args.dtype, args.device)
    from transformers import AutoTokenizer
    tokenizer = from_pretrained(AutoTokenizer, args.model, revision=args.revision)
    if args.prompt:
        inputs, prompt_tokens, source = args.prompt, None, "prompts given on the command line"
    else:
        inputs = []
        for path, text in zip(args.text, texts):
            ids = tokenizer(text)["input_ids"]
            windows = _windows(ids, args.sequence_tokens)
            if not windows:
                raise RecordError(f"--text {path}: {len(ids)} tokens, fewer than --sequence-tokens "
                                  f"{args.sequence_tokens}")
            inputs += windows
        inputs = inputs[:args.max_sequences]
        prompt_tokens = args.prompt_tokens
        source = ", ".join(str(p) for p in args.text)
    meta = {"domain": args.domain} if args.domain else None
    trace = record(args.model, inputs, tokenizer=tokenizer, prompt_tokens=prompt_tokens,
                   generate=args.generate, stale_gate=not args.no_stale_gate,
                   revision=args.revision, dtype=args.dtype, device=args.device,
                   prompt_source=source, meta=meta, progress=not args.quiet, path=args.output)
    print_json({"output": str(args.output), **trace.summary()})
    return 0
