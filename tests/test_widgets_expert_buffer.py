"""The cache/prefetch split explorer recomputes from the package when a slider moves."""

from stmoe.book import expert_buffer as eb
from stmoe.widgets.expert_buffer import split_explorer
from tests.prefetch_data import small_held_out


def test_split_explorer_follows_its_sliders():
    data = small_held_out()
    ex = split_explorer(data, sequences=2)
    ex.set(capacity=64, share=0.5)
    cache, hot, st = eb.split_outcomes(data.subset(2), 64, 0.5)
    assert f"hits {st['hit_rate']:.3f}" in ex.readout.value
    assert f"cache only {cache['hit_rate']:.3f}, hot-set (50% pinned) {hot['hit_rate']:.3f}" in ex.readout.value
    assert f"{st['wasted_prefetches']} wasted" in ex.readout.value
    assert f"hit rate {st['hit_rate']:.2f}" in ex.jchart.spec["title"]
    assert "capacity 64 experts, staging 50%" in ex.jchart.spec["title"]
    assert ex.static().data.startswith("<svg")
