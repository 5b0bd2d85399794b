"""The page tokens the hasteCRM and Redivis emulators share."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from emulators.routing import pack, unpack

# What the emulators wrap: a position and the listing or query it belongs to.
FIELDS = st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=40), max_size=3)


@given(FIELDS)
def test_a_packed_token_unpacks_to_what_it_wrapped(data: dict[str, Any]) -> None:
    token = pack(data)
    assert "=" not in token  # unpadded, so it travels in a query string as it is
    assert unpack(token) == data


@given(st.text())
def test_any_other_text_unpacks_or_fails_with_value_error(text: str) -> None:
    # Callers turn ValueError (and a wrong shape) into the API's 400; nothing else may escape.
    with contextlib.suppress(ValueError):
        unpack(text)
