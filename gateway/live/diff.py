"""What changed between two reads of a list: records created, updated and deleted.

A read is held as a digest per record id, so a poller keeps one small string per record
rather than the records themselves; the digest is of the provider's own payload
(`remote_data`), so a change to any field the provider sends counts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

from gateway.live.changes import ChangeKind
from gateway.records import AnyRecord

# id -> digest of the record as it was read.
Digests = Mapping[str, str]
Change = tuple[str, ChangeKind]


def digest(record: AnyRecord) -> str:
    """A short digest of what the provider sent for `record` (its fields if it sent none)."""
    payload = record.remote_data or repr(record)
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def digests(records: Iterable[AnyRecord]) -> dict[str, str]:
    return {record.remote_id: digest(record) for record in records}


def diff(before: Digests, after: Digests) -> list[Change]:
    """The changes that turn `before` into `after`: each id created (only in `after`),
    updated (its digest differs) or deleted (only in `before`), once, in read order."""
    changes: list[Change] = []
    for record_id, value in after.items():
        if record_id not in before:
            changes.append((record_id, ChangeKind.CREATED))
        elif before[record_id] != value:
            changes.append((record_id, ChangeKind.UPDATED))
    changes += [(i, ChangeKind.DELETED) for i in before if i not in after]
    return changes
