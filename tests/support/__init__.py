"""Helpers the tests share: the in-process stack, clients and servers, the connection
walker, global ids, the provider kinds for parametrize lists and each provider's test
knowledge. Fixtures and hooks stay in the `conftest.py` files."""
