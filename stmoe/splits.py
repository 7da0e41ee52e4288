"""The profile/scored split: which tokens a predictor is profiled on and which it is scored or
simulated on. Never fit and score on the same tokens; every chapter, the report and the CLI
split here.

The rule: the first half of a trace's sequences (in order of appearance) is the profile and the
second half is scored. A trace of one sequence is split in time instead: the first half of its
tokens profiles, the second half is scored. `folds` also scores the first half with the second
as profile (the `split` protocol of `stmoe.evaluate`), and `split_leading` is the tour's variant:
the first few sequences are simulated and all the others profile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stmoe.errors import ConfigError
from stmoe.trace import Trace


@dataclass(frozen=True)
class Split:
    """`profile`: the tokens a predictor is fitted on (None: it learns online only); `scored`:
    the disjoint tokens it is scored or simulated on."""

    profile: Trace | None
    scored: Trace

    def __iter__(self):  # `profile, scored = split(trace)`
        return iter((self.profile, self.scored))


def profile_half(trace: Trace) -> np.ndarray:
    """Boolean token mask of the profile half: the tokens of the first half of the sequences,
    or the first half of the tokens of a one-sequence trace."""
    seqs = trace.sequence_ids()
    if len(seqs) >= 2:
        return np.isin(trace.sequence, seqs[: len(seqs) // 2])
    if trace.num_tokens < 2:
        raise ConfigError(f"trace: {trace.label} has {trace.num_tokens} token; a profile/scored "
                          "split needs at least 2")
    return np.arange(trace.num_tokens) < trace.num_tokens // 2


def split(trace: Trace, *, max_scored_sequences: int | None = None,
          max_scored_tokens: int | None = None) -> Split:
    """Profile on the first half, score the second (see the module docstring). Of a trace of
    several sequences, at most the first `max_scored_sequences` scored sequences are kept, or
    as many whole sequences as fit in `max_scored_tokens` (at least one): both bound the cost
    of scoring or simulating. A one-sequence trace keeps its whole second half."""
    for name, bound in (("max_scored_sequences", max_scored_sequences),
                        ("max_scored_tokens", max_scored_tokens)):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, np.integer))
                                  or bound < 1):
            raise ConfigError(f"{name}: must be a positive integer or None, got {bound!r}")
    first = profile_half(trace)
    profile = trace.select(tokens=first)
    seqs = trace.sequence_ids()
    if len(seqs) < 2 or (max_scored_sequences is None and max_scored_tokens is None):
        return Split(profile, trace.select(tokens=~first))
    rest = seqs[len(seqs) // 2:]
    if max_scored_sequences is not None:
        rest = rest[:max_scored_sequences]
    if max_scored_tokens is not None:
        sizes = np.array([(trace.sequence == s).sum() for s in rest])
        rest = rest[: max(1, int(np.searchsorted(np.cumsum(sizes), max_scored_tokens, side="right")))]
    return Split(profile, trace.select(sequences=rest))


def folds(trace: Trace) -> list[tuple[Trace, np.ndarray]]:
    """(profile, boolean mask of the scored tokens) pairs that score every token once: each
    half of the sequences with the other as profile, or the second half of a one-sequence
    trace's tokens with the first as profile."""
    first = profile_half(trace)
    if len(trace.sequence_ids()) >= 2:
        return [(trace.select(tokens=~first), first), (trace.select(tokens=first), ~first)]
    return [(trace.select(tokens=first), ~first)]


def split_leading(trace: Trace, num_sequences: int) -> Split:
    """The first `num_sequences` sequences scored (bounding simulation time) and every later one
    as profile, at least one; a one-sequence trace is scored whole with no profile (its
    predictor learns online only)."""
    if isinstance(num_sequences, bool) or not isinstance(num_sequences, (int, np.integer)) \
            or num_sequences < 1:
        raise ConfigError(f"max_sequences must be >= 1, got {num_sequences!r}")
    seqs = trace.sequence_ids()
    if len(seqs) < 2:
        return Split(None, trace)
    n = min(num_sequences, len(seqs) - 1)
    return Split(trace.select(sequences=seqs[n:]), trace.select(sequences=seqs[:n]))
