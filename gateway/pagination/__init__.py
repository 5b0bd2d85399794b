"""Relay connections over upstream pagination: the one place the Relay logic lives.

A client asks for a window of a list with `first/after` and `last/before`
(GraphQL Cursor Connections Specification). Upstream APIs page in their own
way; this package turns the window into the fewest upstream requests the API
allows and the answer back into edges and `pageInfo`.

- `connection`: the client's arguments, the page limits, the resolved window.
- `cursors`: the opaque, signed cursors bound to their query.
- `offset`: the engine for APIs addressed by offsets (page numbers, index ranges).
- `positions`, `sequential_reader`, `sequential`: the engine for APIs read forward
  from opaque positions (cursors, page tokens).
- `merge`: one window across several providers' lists, concatenated or merged by a total
  order, its cursors holding each provider's position.

The names below are re-exported for callers that import them from the package.
"""

from gateway.pagination.connection import (
    ConnectionArgs,
    ConnectionSlice,
    Edge,
    PageInfo,
    PageLimits,
    check_args,
)
from gateway.pagination.cursors import CURSOR_VERSION, CursorCodec, binding_key
from gateway.pagination.offset import OffsetFetch, OffsetPage, cover, paginate_offsets
from gateway.pagination.positions import BlockChain, SeqPage, SequentialAPI
from gateway.pagination.sequential import paginate_sequential

__all__ = [
    "CURSOR_VERSION",
    "BlockChain",
    "ConnectionArgs",
    "ConnectionSlice",
    "CursorCodec",
    "Edge",
    "OffsetFetch",
    "OffsetPage",
    "PageInfo",
    "PageLimits",
    "SeqPage",
    "SequentialAPI",
    "binding_key",
    "check_args",
    "cover",
    "paginate_offsets",
    "paginate_sequential",
]
