"""The document caches (parsed texts, validation verdicts, arguments found) are bounded in
bytes: distinct large texts (a long comment) cannot grow memory past their budget."""

from __future__ import annotations

import gc
import tracemalloc

import pytest

import schema as schema_package
import schema.bounds
import schema.documents
from schema import build_schema
from schema.documents import DocumentCache, text_key

BUDGET = 2**19  # per cache, for the test
COMMENT = 24 * 1024


def _large(i: int) -> str:
    return f"# {i}\n{{ __typename }}\n# {'x' * COMMENT}"


@pytest.fixture
def small_caches(monkeypatch: pytest.MonkeyPatch) -> list[DocumentCache[object]]:
    caches: list[DocumentCache[object]] = [DocumentCache(max_bytes=BUDGET) for _ in range(3)]
    monkeypatch.setattr(schema.documents, "documents", caches[0])
    monkeypatch.setattr(schema_package, "_validated", caches[1])
    monkeypatch.setattr(schema.bounds, "_found", caches[2])
    return caches


async def test_distinct_large_documents_stay_under_the_budget(small_caches):
    executable = build_schema()
    await executable.execute(_large(-1))  # whatever the first execution builds once
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for i in range(60):  # 60 texts of 24 KiB: 1.4 MiB of text, twice that parsed
            result = await executable.execute(_large(i))
            assert not result.errors
            for cache in small_caches:
                assert cache.size <= BUDGET
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    # Three caches of 512 KiB holding the same few documents; by count, all 60 would stay.
    assert grown < 3 * BUDGET
    assert len(small_caches[0]) >= 2  # still caching what fits


async def test_a_document_is_parsed_once_and_a_syntax_error_is_still_reported(small_caches):
    executable = build_schema()
    query = "{ providers { kind } }  # parsed once"
    await executable.execute(query)
    held = small_caches[0].get((text_key(query), (("max_tokens", 5000),)))
    assert held is not None
    await executable.execute(query)
    assert len(small_caches[0]) == 1
    result = await executable.execute("{ providers { ")
    assert result.errors
    assert "Syntax Error" in result.errors[0].message
    assert result.errors[0].extensions == {"code": "GRAPHQL_PARSE_FAILED"}


def test_a_value_too_large_for_its_share_is_not_kept():
    cache: DocumentCache[str] = DocumentCache(max_bytes=80_000)
    cache.put("big", "x" * 20_000)
    cache.put("small", "x" * 1_000)
    assert cache.get("big") is None
    assert cache.get("small") == "x" * 1_000


def test_keys_are_digests_not_texts():
    text = "{ providers { name } }" + " " * 100_000
    assert len(text_key(text)) == 64
    assert text_key(text) != text_key(text + " ")
