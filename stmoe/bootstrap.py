"""Bootstrap intervals over sequences, or over blocks of tokens for a one-sequence trace.

Recall, speedup and energy efficiency are each a ratio of two totals over the tokens scored or
simulated: routed experts predicted / routed experts; on-demand's latency (energy) / a system's.
Their interval resamples *units* with replacement (the trace's sequences; for a trace of one
sequence, non-overlapping blocks of `BLOCK_TOKENS` consecutive tokens, longer past `MAX_BLOCKS`
blocks; Carlstein, Annals of Statistics 14(3), 1986), recomputes the ratio from the resampled
units' totals `RESAMPLES` times with a generator seeded by `SEED`, and reports the 2.5th and
97.5th percentiles (the percentile bootstrap; Efron & Tibshirani, An Introduction to the
Bootstrap, 1993).

What this assumes: the units are exchangeable and independent. Tokens of a unit stay together,
so the dependence inside a sequence (or block) is kept; dependence between units is not. It is
there: predictors keep learning online across sequences, and the simulated buffer's contents
carry from one sequence into the next, so a unit's cost depends on the units before it. The
interval treats each unit's totals as if they would be the same in any order.

A ratio of two figures measured on the same tokens (a system's latency and on-demand's) is
paired: numerator and denominator are resampled with the same draws, so the interval of the
ratio reflects how the two vary together.
"""

from __future__ import annotations

import numpy as np

from stmoe.errors import ConfigError

RESAMPLES = 1000
SEED = 0
LEVEL = 0.95
# 8 tokens: chapter 02 measures that 90% of the bundled traces' repeated requests for an expert
# come within 8 tokens (77% on Qwen3-30B-A3B), so blocks this long keep most of the temporal
# dependence; longer ones would leave the one-prompt Qwen3 trace (64-128 tokens scored) too few
# blocks to resample.
BLOCK_TOKENS = 8
# A long one-sequence trace gets longer blocks instead of more than this many: the per-unit
# totals stay cheap, and longer series keep more of their dependence inside a block (block
# lengths that grow with the series, as Hall, Horowitz & Jing, Biometrika 82(3), 1995, advise).
MAX_BLOCKS = 1000
# Fewer units than this and an interval is flagged unreliable where it is described: n units
# give at most C(2n-1, n) distinct resamples (10 for 3 units, 126 for 5, 48620 for 10), and
# the percentile bootstrap's coverage falls well short of its level on samples this small
# (Efron & Tibshirani 1993, ch. 13: too narrow for small n).
MIN_RELIABLE_UNITS = 10


def resampling_units(sequence: np.ndarray, block_tokens: int = BLOCK_TOKENS) -> tuple[np.ndarray, str]:
    """(unit of each token, 0..U-1; what the units are) for tokens whose sequence ids are
    `sequence`, in trace order: the sequences when there are two or more, else blocks of
    `block_tokens` consecutive tokens, or more if that would make over `MAX_BLOCKS` blocks (the
    last one possibly shorter)."""
    if isinstance(block_tokens, bool) or not isinstance(block_tokens, (int, np.integer)) or block_tokens < 1:
        raise ConfigError(f"block_tokens: must be an integer >= 1, got {block_tokens!r}")
    sequence = np.asarray(sequence)
    seqs, unit = np.unique(sequence, return_inverse=True)
    if len(seqs) >= 2:
        return unit.astype(np.int64), f"{len(seqs)} sequences"
    block = max(int(block_tokens), -(-len(sequence) // MAX_BLOCKS))
    unit = np.arange(len(sequence), dtype=np.int64) // block
    blocks = int(unit[-1]) + 1 if len(unit) else 0
    return unit, f"{blocks} blocks of {block} consecutive tokens (one sequence)"


def describe(units: str, *, count: int, resamples: int = RESAMPLES, seed: int = SEED, level: float = LEVEL) -> str:
    """How an interval was made, in the one wording notes and info fields use: `units` says
    what was resampled, `count` is how many units the interval rests on (given, not read from
    the text: a wording may hold other numbers, or count units left out). With a warning when
    `count` is below `MIN_RELIABLE_UNITS`."""
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ConfigError(f"count: must be an integer >= 0, got {count!r}")
    text = (f"{level:.0%} intervals: percentile bootstrap over {units}, {resamples} resamples, "
            f"seed {seed} (stmoe.bootstrap)")
    if count < MIN_RELIABLE_UNITS:
        text += (f"; unreliable: it rests on {count} units, fewer than {MIN_RELIABLE_UNITS} (so few "
                 "give few distinct resamples, and a percentile interval narrower than the truth)")
    return text


def ratio_interval(num, den, *, resamples: int = RESAMPLES, seed: int = SEED,
                   level: float = LEVEL) -> tuple[float, float] | None:
    """The bootstrap interval of sum(num) / sum(den), with num[u] and den[u] > 0 the totals of
    unit u (the module docstring says how). None with fewer than 2 units: nothing to resample.
    The draws depend only on the number of units, `resamples` and `seed`, so two ratios over
    the same units (speedup and energy efficiency) are resampled alike."""
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    if num.shape != den.shape or num.ndim != 1:
        raise ConfigError(f"ratio_interval: num and den must be 1-D of one length, got {num.shape} and {den.shape}")
    if not (den > 0).all():
        raise ConfigError("ratio_interval: every unit needs a positive denominator (leave empty units out)")
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)) or resamples < 1:
        raise ConfigError(f"resamples: must be an integer >= 1, got {resamples!r}")
    if not 0 < level < 1:
        raise ConfigError(f"level: must be between 0 and 1, got {level!r}")
    units = len(num)
    if units < 2:
        return None
    rng = np.random.default_rng(seed)
    ratios = np.empty(resamples)
    chunk = max(1, 2 ** 20 // units)   # draws held at once: a few MB however many units
    for lo in range(0, resamples, chunk):
        picks = rng.integers(0, units, size=(min(chunk, resamples - lo), units))
        ratios[lo:lo + len(picks)] = num[picks].sum(axis=1) / den[picks].sum(axis=1)
    low, high = np.percentile(ratios, [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)


def interval_fields(field: str, interval: tuple[float, float] | None) -> dict:
    """{field_ci_low, field_ci_high}: the one naming scheme of interval fields in rows and JSON."""
    lo, hi = interval if interval is not None else (None, None)
    return {f"{field}_ci_low": lo, f"{field}_ci_high": hi}


def with_interval(row: dict, field: str, digits: int = 3) -> str:
    """`row[field]` with its interval, as tables and checkpoints print it: "2.31 [2.20, 2.45]"
    (the value alone when the row has no interval)."""
    value, lo, hi = row[field], row.get(f"{field}_ci_low"), row.get(f"{field}_ci_high")
    if value is None:
        return ""
    if lo is None or hi is None:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
