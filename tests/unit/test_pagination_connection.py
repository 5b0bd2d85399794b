"""The Relay arguments as both pagination engines receive them: `first`/`last` bounded,
the documented default filled in."""

from __future__ import annotations

import pytest

from gateway.errors import BadUserInput
from gateway.pagination.connection import ConnectionArgs, PageLimits, check_args

LIMITS = PageLimits(default_size=20, max_size=100)


@pytest.mark.parametrize(
    ("args", "argument"),
    [
        (ConnectionArgs(first=-1), "first"),
        (ConnectionArgs(last=-5), "last"),
        (ConnectionArgs(first=101), "first"),
        (ConnectionArgs(last=1000), "last"),
    ],
)
def test_out_of_range_sizes_are_rejected(args, argument):
    with pytest.raises(BadUserInput) as caught:
        check_args(args, LIMITS)
    assert caught.value.argument == argument
    assert caught.value.extensions["code"] == "BAD_USER_INPUT"


def test_default_size_when_neither_first_nor_last():
    assert check_args(ConnectionArgs(), LIMITS) == ConnectionArgs(first=20)
    assert check_args(ConnectionArgs(before="c"), LIMITS) == ConnectionArgs(last=20, before="c")
