"""Who gets the units that rounding leaves when stores share stock (mappings.allocation, pure)."""

from __future__ import annotations

import itertools
import random
from decimal import Decimal

import pytest

from mappings.allocation import (
    Claim,
    Sharer,
    order_problems,
    ranks,
    share_conflicts,
    sharing,
    split,
)

D = Decimal


def totals(claims: list[Claim], offline: int | None = None) -> dict[str, int]:
    return {name: a.total for name, a in split(claims, offline).stores.items()}


def test_the_readme_example_by_default_the_last_unit_stays_offline():
    # 10 on hand, safety 2: free 8; 60/40 -> 4.8 and 3.2 -> 4 and 3, the 8th unit is nobody's.
    claims = [Claim("shop", D(8), D("0.6")), Claim("woo", D(8), D("0.4"))]
    result = split(claims)
    assert totals(claims) == {"shop": 4, "woo": 3} and result.held == 1


def test_the_last_unit_goes_to_the_first_ranked_store():
    claims = [Claim("shop", D(8), D("0.6"), priority=2), Claim("woo", D(8), D("0.4"), priority=1)]
    result = split(claims)
    assert totals(claims) == {"shop": 4, "woo": 4} and result.held == 0
    assert result.stores["woo"].by_share == 3 and result.stores["woo"].extra == 1
    # ranked behind offline, the store gets nothing more: offline keeps the unit
    ahead = split(claims, offline_priority=0)
    assert {n: a.total for n, a in ahead.stores.items()} == {"shop": 4, "woo": 3}
    assert ahead.offline.extra == 1 and ahead.held == 0
    # only one ranked store: it takes the unit whatever its number
    assert totals([Claim("shop", D(8), D("0.6"), priority=7), Claim("woo", D(8), D("0.4"))]) == {"shop": 5, "woo": 3}


def test_at_most_one_unit_each_in_priority_order_among_many_stores():
    # 10 free, 7 stores of 0.14: each 1.4 -> 1, offline's 0.02 -> 0.2 -> 0; 3 units left over, and they
    # go to priorities 1, 2 and 3 — not 4, 5, 6, nor the store that has none.
    claims = [Claim(f"s{n}", D(10), D("0.14"), priority=p) for n, p in enumerate([3, 1, 2, 5, 4, None, 6])]
    result = split(claims)
    assert [result.stores[f"s{n}"].total for n in range(7)] == [2, 2, 2, 1, 1, 1, 1]
    assert sum(a.total for a in result.stores.values()) == 10 and result.held == 0
    # fewer ranked stores than units left: the rest is held back (offline)
    unranked = split([Claim(c.store, c.free, c.share, 1 if c.store == "s0" else None) for c in claims])
    assert unranked.stores["s0"].total == 2 and unranked.held == 2


def test_ties_go_to_the_larger_lost_fraction_then_the_name():
    # 7 free: 0.5 -> 3.5, 0.3 -> 2.1, 0.2 -> 1.4: 6 given, 1 left; equal priority: a's 0.5 beats c's 0.4
    claims = [Claim("c", D(7), D("0.2"), 1), Claim("a", D(7), D("0.5"), 1), Claim("b", D(7), D("0.3"), 1)]
    assert totals(claims) == {"c": 1, "a": 4, "b": 2}
    # equal fractions too: by name, so every store computes the same winner
    same = [Claim("y", D(5), D("0.5"), 1), Claim("x", D(5), D("0.5"), 1)]
    assert totals(same) == {"y": 2, "x": 3}
    # a store that lost nothing to rounding takes nothing, even ranked first
    exact = [Claim("whole", D(10), D("0.5"), 0), Claim("p", D(10), D("0.25"), 1), Claim("q", D(10), D("0.25"), 2)]
    assert totals(exact) == {"whole": 5, "p": 3, "q": 2}


def test_no_stock_or_less_than_none_gives_nothing():
    for free in (D(0), D(-3), D("0.5")):
        claims = [Claim("a", free, D("0.6"), 1), Claim("b", free, D("0.4"), 2)]
        assert totals(claims, 0) == totals(claims) == {"a": 0, "b": 0}
        assert split(claims).held == 0
    # one unit between two stores: it goes to the first ranked one
    assert totals([Claim("a", D(1), D("0.6"), 2), Claim("b", D(1), D("0.4"), 1)]) == {"a": 0, "b": 1}


def test_shares_below_one_leave_offline_its_part_and_it_can_be_ranked():
    # 9 free, 0.5 and 0.3: 4.5 -> 4, 2.7 -> 2; offline's 0.2 -> 1.8 -> 1; 2 units left over.
    claims = [Claim("a", D(9), D("0.5"), 1), Claim("b", D(9), D("0.3"), 2)]
    assert totals(claims) == {"a": 5, "b": 3}
    first = split(claims, offline_priority=0)
    assert {n: a.total for n, a in first.stores.items()} == {"a": 5, "b": 2}  # offline took one, a the next
    assert (first.offline.by_share, first.offline.extra) == (1, 1)
    # one store alone with 60%: offline's 40% is the other party
    assert totals([Claim("solo", D(8), D("0.6"), 1)]) == {"solo": 5}
    assert totals([Claim("solo", D(8), D("0.6"), 1)], offline=0) == {"solo": 4}
    assert totals([Claim("solo", D(8), D(1), 1)]) == {"solo": 8}


def test_shares_above_one_split_nothing():
    # two stores that set no share (1 each) both sell everything, as before: no unit is handed out
    claims = [Claim("a", D("7.5"), D(1), 1), Claim("b", D("7.5"), D(1), 2)]
    assert totals(claims) == {"a": 7, "b": 7}
    assert totals([Claim("a", D(9), D("0.7"), 1), Claim("b", D(9), D("0.5"), 2)]) == {"a": 6, "b": 4}


def test_different_safety_stocks_count_the_leftover_from_the_smallest_free_stock():
    # a keeps 0 back (free 10), b keeps 3 back (free 7): 0.5 -> 5 and 3.5 -> 3; from 7 only ⌊7⌋ − 8 < 0: nothing.
    claims = [Claim("a", D(10), D("0.5"), 1), Claim("b", D(7), D("0.5"), 2)]
    assert totals(claims) == {"a": 5, "b": 3}
    # b keeps 1 back (free 9): 5 + 4 = 9 of the smallest free 9: nothing left over
    assert totals([Claim("a", D(10), D("0.5"), 1), Claim("b", D(9), D("0.5"), 2)]) == {"a": 5, "b": 4}


def test_fractional_stock_rounds_the_whole_down_first():
    # 8.5 kg free, 0.6/0.4: 5.1 -> 5, 3.4 -> 3; ⌊8.5⌋ = 8 = 5 + 3: nothing left over
    assert totals([Claim("a", D("8.5"), D("0.6"), 1), Claim("b", D("8.5"), D("0.4"), 2)]) == {"a": 5, "b": 3}


@pytest.mark.parametrize("seed", range(40))
def test_the_whole_never_exceeds_the_free_stock_and_the_order_of_claims_does_not_matter(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 6)
    cuts = sorted(rng.random() for _ in range(n))
    shares = [D(str(round(b - a, 3))) for a, b in zip([0.0, *cuts], cuts, strict=False)]
    free = D(rng.randint(-2, 40)) + D(rng.choice(["0", "0.5"]))
    claims = [Claim(f"s{i}", free, s, rng.choice([None, 0, 1, 2])) for i, s in enumerate(shares)]
    offline = rng.choice([None, 0, 1, 3])
    result = split(claims, offline)
    given = sum(a.total for a in result.stores.values())
    # within the free stock (less offline's own part), and never more than one unit extra each
    assert given + result.offline.total <= max(0, free)
    assert all(a.extra in (0, 1) for a in result.stores.values())
    for shuffled in itertools.islice(itertools.permutations(claims), 6):
        assert split(list(shuffled), offline) == result


# ---- who shares, and the rule that shares add up to at most 1 -------------------------------------


MAIN, EAST = frozenset({"MAIN"}), frozenset({"EAST"})


def sharer(name: str, share: str | None, *sets: frozenset[str] | None, priority: int | None = None) -> Sharer:
    return Sharer(name, D(share) if share is not None else None, D(0), priority, frozenset(sets or (None,)))


def test_the_stores_selling_from_exactly_the_same_warehouses_share():
    a, b, c = sharer("a", "0.6", MAIN), sharer("b", "0.4", MAIN), sharer("c", "1", EAST)
    assert sharing([a, b, c], MAIN) == [a, b] and sharing([a, b, c], EAST) == [c]
    # a store selling from MAIN and EAST together overlaps both: its part is counted from other stock
    both = sharer("d", "0.2", MAIN | EAST)
    assert sharing([a, b, both], MAIN) is None and sharing([a, b, both], MAIN | EAST) is None
    # "every warehouse" overlaps everything
    assert sharing([a, sharer("e", "0.3")], MAIN) is None
    assert sharing([sharer("e", "0.3"), sharer("f", "0.7")], None) == [sharer("e", "0.3"), sharer("f", "0.7")]


def messages(sharers: list[Sharer]) -> list[str]:
    return [str(c) for c in share_conflicts(sharers)]


def test_shares_of_stores_with_a_common_warehouse_add_up_to_at_most_one():
    ok = [sharer("a", "0.6", MAIN), sharer("b", "0.4", MAIN), sharer("c", "1", EAST)]
    assert share_conflicts(ok) == []
    (problem,) = messages([sharer("acme-us", "0.6", MAIN), sharer("acme-eu", "0.5", MAIN, EAST)])
    assert problem.startswith("allocation_share of acme-eu (0.5), acme-us (0.6) adds up to 1.1 for MAIN,")
    # a store without a mapping sells from every warehouse, so it shares with every other store
    (problem,) = messages([sharer("a", "0.6"), sharer("b", "0.6", EAST)])
    assert "a (0.6), b (0.6) adds up to 1.2 for EAST," in problem
    (problem,) = messages([sharer("a", "0.6"), sharer("b", "0.6", EAST), sharer("c", "0.1")])
    assert "a (0.6), b (0.6), c (0.1) adds up to 1.3 for EAST," in problem  # a and c alone: 0.7
    (problem,) = messages([sharer("a", "0.6"), sharer("b", "0.6", EAST, None)])
    assert "adds up to 1.2 for EAST and every other warehouse," in problem
    (problem,) = messages([sharer("a", "0.7"), sharer("b", "0.7")])
    assert "for every warehouse" in problem
    # stores that set no share split nothing: not counted (they sell all they see, as before)
    assert share_conflicts([sharer("a", None), sharer("b", None), sharer("c", "0.6")]) == []
    # an edit is refused for the stores it touches, not for an older problem elsewhere
    old = [sharer("x", "0.9", EAST), sharer("y", "0.9", EAST), sharer("a", "0.5", MAIN)]
    assert share_conflicts(old, involving={"a"}) == []
    assert [c.stores for c in share_conflicts(old, involving={"y"})] == [("x", "y")]


def test_a_per_sku_order_replaces_the_stores_priorities_for_that_sku():
    stores = {"acme-us": 1, "acme-eu": 2}
    assert ranks(None, stores, None) == ({"acme-us": 1, "acme-eu": 2}, None)
    assert ranks("offline, acme-eu", stores, None) == ({"acme-us": None, "acme-eu": 1}, 0)
    assert ranks(" ACME-US ,acme-eu", stores, 0) == ({"acme-us": 0, "acme-eu": 1}, None)
    assert order_problems("offline, acme-us", {"acme-us"}) == []
    assert order_problems("acme-xx, acme-us, acme-us", {"acme-us"}) == [
        "no store 'acme-xx' (use store slugs and offline)",
        "named twice: acme-us",
    ]
    assert order_problems(" , ", set()) == ["name at least one store or offline"]
