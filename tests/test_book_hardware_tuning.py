"""Chapter 05's shipped exploration results match their spec, and the front's headline says the
tolerance it was drawn with."""

import pytest

from stmoe.book import hardware_tuning as ht
from stmoe.errors import ConfigError


@pytest.fixture(scope="module")
def designs():
    pytest.importorskip("pyarrow")   # the shipped results are Parquet
    return ht.explored_designs()


def test_shipped_results_cover_the_spec_and_name_the_front(designs):
    assert len(designs) == 290
    # within 0.1%, buffers above 1.22 MiB buy no latency beyond a smaller one's
    assert ht.front_headline(designs) == ("2 of 290 designs on the front (objectives within 0.10% of each "
                                          "other count as equal): st-moe 1-1.22 MiB")


def test_the_headline_states_the_tolerance_its_front_used(designs):
    """Strict and default fronts differ on the shipped results, and each headline says which it is:
    without the tolerance, latency gaps of thousandths of a percent keep 7 designs."""
    strict = ht.front_headline(designs, tolerance=0)
    assert strict == ("7 of 290 designs on the front (strict: no tolerance): st-moe 1-28.4 MiB, "
                      "prefetch-all-next-layer 32 MiB")
    assert ht.front_headline(designs, tolerance=0.01).startswith(
        "2 of 290 designs on the front (objectives within 1.00% of each other count as equal): ")
    three = ("buffer_area_mm2", "latency_per_token_s", "energy_per_token_j")
    assert ht.front_headline(designs, three, tolerance=0).startswith("30 of 290 designs on the front (strict")
    headline = ht.front_headline(designs, three)
    assert headline.startswith("38 of 290 designs on the front (objectives within 0.10%")
    # over three objectives the front has no order: each system once, with its count of designs
    # (it listed "st-moe 64 MiB, lru-cache 64 MiB" five times, one per link, unnamed)
    import re
    listed = re.findall(r"([a-z-]+) [0-9.]+(?:-[0-9.]+)? MiB \((\d+) designs?\)", headline.split("): ", 1)[1])
    assert len({name for name, _ in listed}) == len(listed) >= 2
    assert sum(int(n) for _, n in listed) == 38
    with pytest.raises(ConfigError, match="tolerance is a relative difference, 0 <= tolerance < 1, got 1"):
        ht.front_headline(designs, tolerance=1)
