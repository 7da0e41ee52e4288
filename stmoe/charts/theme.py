"""The charts' one look: a pinned colour per system, predictor and other named category, the
dashed reference rule, and the SVG renderer flag.

Altair's default categorical palette colours names by order of appearance, so the same system
changed colour from chart to chart; here a name keeps its colour in every chart (st-moe is the
same vermillion among systems and among predictors).

Palette: Okabe & Ito, "Color Universal Design" (2008, https://jfly.uni-koeln.de/color/; also
Wong, Nature Methods 8:441, 2011). Its eight colours stay apart under protanopia, deuteranopia
and tritanopia. Greys, not in that palette, mark the baselines that carry no information
(on-demand, chance, random, the paper's reported values) and the reference rules, so colour is
left for what is being compared.
"""

from __future__ import annotations

import re
from typing import Iterable

from stmoe.charts.base import rows_data

BLACK = "#000000"
ORANGE = "#E69F00"
SKY_BLUE = "#56B4E9"
BLUISH_GREEN = "#009E73"
YELLOW = "#F0E442"
BLUE = "#0072B2"
VERMILLION = "#D55E00"
REDDISH_PURPLE = "#CC79A7"
GREY = "#999999"
LIGHT_GREY = "#BBBBBB"
DARK_GREY = "#666666"

# Every system gets its own colour so that a chart of all of them (the report's comparison)
# tells them apart. Eleven systems outnumber the palette's eight, so greys go to the systems that
# are bounds or replays rather than rivals (on-demand; prefetch-all-next-layer; pre-gated,
# replayed on an oracle of the next layer), and YELLOW, the weakest on white, to AdapMoE beside
# Adap-Gating's orange. A system built on a predictor has the predictor's colour (st-moe,
# speculative-gate's stale gate, the oracle); the caches are blue-green.
SYSTEM_COLORS = {
    "on-demand": GREY,
    "lru-cache": SKY_BLUE,
    "hot-set": BLUISH_GREEN,
    "speculative-gate": REDDISH_PURPLE,
    "prefetch-all-next-layer": LIGHT_GREY,
    "pre-gated": DARK_GREY,
    "adap-gating": ORANGE,
    "adapmoe": YELLOW,
    "st-moe": VERMILLION,
    "oracle": BLACK,
    "all-resident": BLUE,
}

RULE_COLOR = DARK_GREY
RULE_DASH = [4, 3]

# The registered predictors and chance are told apart (`stmoe predict` scores all nine). Names that do not share a chart reuse a colour: the recall explorer's mix has
# stale-gate's. Chance is a line in the recall curves and the rule
# in the recall bars, so it has the rule's colour.
PREDICTOR_COLORS = {
    "popularity": SKY_BLUE,
    "previous-token": ORANGE,
    "history": BLUISH_GREEN,
    "cct": BLUE,
    "st-moe": VERMILLION,
    "stale-gate": REDDISH_PURPLE,
    "trained": YELLOW,
    "random": LIGHT_GREY,
    "oracle": BLACK,
    "chance (m / E)": RULE_COLOR,
    "cct + history mix": REDDISH_PURPLE,
}

# Categories that are neither systems nor predictors. Good outcomes are green and bad ones
# vermillion wherever they appear (a hit rate and "ready when needed" are the same thing).
CATEGORY_COLORS = {
    # replacement policies (Belady is the offline optimum, black like the oracle)
    "lru": SKY_BLUE, "lfu": ORANGE, "fifo": BLUISH_GREEN, "belady": BLACK,
    # where an expert request was served, and st-moe's measures against the staging share
    "ready when needed": BLUISH_GREEN, "in flight when needed": ORANGE, "fetched on demand": VERMILLION,
    "hit rate": BLUISH_GREEN, "stall share": VERMILLION,
    # gains over on-demand
    "speedup": BLUE, "energy efficiency": ORANGE,
    # measured against the paper
    "measured": BLUE, "paper (reported)": LIGHT_GREY,
    # mutual information against its no-link baseline; scoring on own vs held-out tokens
    "observed": BLUE, "shuffled tokens": GREY,
    "in-sample": ORANGE, "held-out": BLUE,
    # the knee chart's markers, beside st-moe and the oracle
    "largest gain": BLUE, "link saturated at and below": DARK_GREY,
    # the tornado's two ends of an assumed constant's range, light to dark as the value grows
    "at the low end": SKY_BLUE, "at the high end": BLUE,
    # operating regimes: where a step's experts are, and where a missing expert is computed
    "experts resident": BLUE, "experts streamed": ORANGE, "uniform routing (chance)": GREY,
    "fetch to the GPU": SKY_BLUE, "compute on the CPU": BLUISH_GREEN,
}

# Names with no pinned colour (trace labels, knob settings) take these in order of appearance,
# skipping colours already used in the same chart.
FALLBACK = (BLUE, ORANGE, BLUISH_GREEN, VERMILLION, SKY_BLUE, REDDISH_PURPLE, YELLOW, BLACK, GREY)

# The single colour of marks that do not encode a category (one series of bars).
MARK_COLOR = BLUE
HEATMAP_SCHEME = "blues"

# Labels the chapters give systems that do not start with the system's name.
ALIASES = {"cache only (LRU)": "lru-cache"}

# Browser tests and the explorers read a chart's drawn text, which only the SVG renderer keeps.
SVG_RENDERER = {"embedOptions": {"renderer": "svg"}}


def _pinned() -> dict[str, str]:
    named = {}
    for table in (CATEGORY_COLORS, PREDICTOR_COLORS, SYSTEM_COLORS):
        for name, colour in table.items():
            if named.setdefault(name, colour) != colour:
                raise ValueError(f"theme: {name!r} is pinned to both {named[name]} and {colour}")
    return named


PINNED = _pinned()
_LEADING_NAME = re.compile(r"[^ ,]+(?=[ ,])")


def color_of(name: str) -> str | None:
    """The pinned colour of `name`, or None. A system's or predictor's label variant ("st-moe,
    25% staging", "st-moe (fixed weights)", "oracle *", "cache only (LRU)") has its colour."""
    if name in PINNED:
        return PINNED[name]
    if name in ALIASES:
        return PINNED[ALIASES[name]]
    lead = _LEADING_NAME.match(name)
    if lead is None:
        return None
    return SYSTEM_COLORS.get(lead[0]) or PREDICTOR_COLORS.get(lead[0])


def palette(names: Iterable[str]) -> tuple[list[str], list[str]]:
    """(domain, range) for `names` (duplicates dropped, order kept): each name's pinned colour,
    and FALLBACK in order for the others, so that no two names in one chart share a colour (a
    name whose pinned colour an earlier name took, such as the mix after stale-gate, counts as
    unpinned)."""
    domain = list(dict.fromkeys(str(n) for n in names))
    pinned: list[str | None] = []
    for name in domain:
        c = color_of(name)
        pinned.append(c if c not in pinned else None)
    spare = [c for c in FALLBACK if c not in pinned] or list(FALLBACK)
    colours, unpinned = [], 0
    for c in pinned:
        if c is None:
            c, unpinned = spare[unpinned % len(spare)], unpinned + 1
        colours.append(c)
    return domain, colours


def color(field: str, names: Iterable[str], *, title: str | None = None, legend: bool = True):
    """An `alt.Color` for the categorical `field` (shorthand such as "system:N") with an explicit
    scale over `names`, whose order is the legend's; `legend=False` when another channel (the
    axis) already names the categories."""
    import altair as alt

    domain, colours = palette(names)
    return alt.Color(field, title=title, scale=alt.Scale(domain=domain, range=colours),
                     **({} if legend else {"legend": None}))


def rule(source, **encodings):
    """The dashed reference rule (chance, no gain at 1x, a chosen value): `source` is the rows
    to draw, or a chart whose data the rule shares (a faceted layer must share it)."""
    import altair as alt

    chart = source if isinstance(source, alt.Chart) else alt.Chart(rows_data(source))
    return chart.mark_rule(color=RULE_COLOR, strokeDash=RULE_DASH).encode(**encodings)
