"""Accept negotiation between application/graphql-response+json and application/json."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.endpoint import GRAPHQL_RESPONSE_JSON as GQL
from gateway.endpoint import JSON_MEDIA as JSON
from gateway.endpoint import negotiate


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        (None, GQL),  # the draft, since its 2025 watershed
        ("", GQL),
        ("*/*", JSON),
        ("application/*", JSON),
        (JSON, JSON),
        (GQL, GQL),
        (f"{GQL}, {JSON}", GQL),
        (f"{JSON}, {GQL}", GQL),
        (f"{GQL}; charset=utf-8, {JSON}; charset=utf-8", GQL),
        (f"{GQL};q=0.5, {JSON}", JSON),
        (f"{JSON};q=0.9, {GQL};q=0.8", JSON),
        (f"{GQL};q=0, */*", JSON),
        (f"{JSON};q=0, */*", GQL),
        (f"{JSON};q=0.5, */*", GQL),
        ("text/html, */*;q=0.8", JSON),
        ("text/html", None),
        ("text/plain, application/xml", None),
        (f"{GQL};q=0", None),
        (f"{JSON};q=nonsense", None),
        ("APPLICATION/GRAPHQL-RESPONSE+JSON", GQL),
    ],
)
def test_negotiate(accept: str | None, media: str | None) -> None:
    assert negotiate(accept) == media


RANGES = st.sampled_from([GQL, JSON, "*/*", "application/*", "text/html", "image/png"])
QUALITIES = st.sampled_from(["", ";q=1", ";q=0.8", ";q=0.5", ";q=0", ";q=0.001"])
HEADERS = st.lists(st.tuples(RANGES, QUALITIES), min_size=1, max_size=6, unique_by=lambda r: r[0])


@given(HEADERS, st.randoms())
def test_the_order_of_ranges_does_not_matter(ranges, rnd) -> None:
    header = ", ".join(name + q for name, q in ranges)
    shuffled = list(ranges)
    rnd.shuffle(shuffled)
    assert negotiate(", ".join(name + q for name, q in shuffled)) == negotiate(header)


@given(HEADERS)
def test_the_choice_is_acceptable_and_never_worse_than_the_other(ranges) -> None:
    def quality(media: str) -> float:
        best = (-1, 0.0)
        for name, q in ranges:
            specificity = {media: 2, "application/*": 1, "*/*": 0}.get(name, -1)
            if specificity > best[0]:
                best = (specificity, float(q.removeprefix(";q=") or 1))
        return best[1]

    chosen = negotiate(", ".join(name + q for name, q in ranges))
    if chosen is None:
        assert quality(GQL) == quality(JSON) == 0
    else:
        other = JSON if chosen == GQL else GQL
        assert quality(chosen) > 0
        assert quality(chosen) >= quality(other)
