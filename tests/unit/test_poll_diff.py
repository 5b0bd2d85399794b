"""What changed between two reads of a list: the diff's changes turn the first read into
the second exactly, each record once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.live.changes import ChangeKind
from gateway.live.diff import Change, Digests, diff, digest, digests
from gateway.records import ContactRecord

reads = st.dictionaries(st.sampled_from("abcdefghij"), st.sampled_from(["1", "2", "3"]))


def apply(before: Digests, changes: list[Change], after: Digests) -> dict[str, str]:
    """`before` with `changes` made: created and updated records as `after` holds them."""
    result = dict(before)
    for record_id, kind in changes:
        if kind is ChangeKind.DELETED:
            del result[record_id]
        else:
            result[record_id] = after[record_id]
    return result


@given(reads, reads)
def test_the_changes_turn_the_first_read_into_the_second(
    before: dict[str, str], after: dict[str, str]
) -> None:
    changes = diff(before, after)
    assert apply(before, changes, after) == after
    ids = [record_id for record_id, _ in changes]
    assert len(ids) == len(set(ids))  # each record once
    for record_id, kind in changes:  # and each change a real one
        if kind is ChangeKind.CREATED:
            assert record_id not in before
        elif kind is ChangeKind.DELETED:
            assert record_id not in after
        else:
            assert before[record_id] != after[record_id]


def test_nothing_changed_nothing_to_say() -> None:
    assert diff({"a": "1"}, {"a": "1"}) == []
    assert diff({}, {}) == []


def contact(remote_id: str, **raw: object) -> ContactRecord:
    return ContactRecord(
        provider="crm",
        remote_id=remote_id,
        created_at=None,
        updated_at=None,
        remote_data={"id": remote_id, **raw},
    )


def test_a_digest_follows_what_the_provider_sent() -> None:
    first, same, renamed = (
        contact("1", name="Ada"),
        contact("1", name="Ada"),
        contact("1", name="A"),
    )
    assert digest(first) == digest(same)
    assert digest(first) != digest(renamed)
    assert digests([first, contact("2")]).keys() == {"1", "2"}
