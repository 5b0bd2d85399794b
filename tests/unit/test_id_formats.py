"""Remote id formats and path segments: every data source refuses an id its provider never
hands out before any request, even when called directly (not only through the resolvers)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.datasources import DataSource, available_kinds, source_class
from gateway.datasources.base import Op, segment
from gateway.demo import demo_provider
from gateway.errors import BadUserInput, InvalidInput, NotFound
from gateway.records import Entity, Link
from tests.support.kinds import WRITABLE_KINDS
from tests.support.knowledge import knowledge

FORGED = ("..", ".", "²", "1\n", "x\r\ny", "1?x=1", "1#x", "../companies/1", "%2e%2e", "a b", "")
HOSTILE = "/?#%\\'\" \n\r\t.²\x00"


def source(kind: str, sent: list[httpx.Request]) -> DataSource:
    """A data source whose every request is recorded and answered 500."""

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500, json={})

    settings = demo_provider(kind, "http://upstream.test").model_copy(
        update={"rate_limit": False, "max_retries": 0}
    )
    client = httpx.AsyncClient(base_url=settings.base_url, transport=httpx.MockTransport(handle))
    return source_class(kind)(settings, client, cache=False)


def run(call: Callable[[], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        try:
            return await call()
        except Exception as error:
            return error

    return asyncio.run(go())


@pytest.mark.parametrize("kind", available_kinds())
def test_the_emulators_ids_are_valid_and_nothing_else_is(kind: str) -> None:
    ds = source(kind, [])
    for entity in ds.entities:
        assert ds.valid_id(entity, knowledge(kind).sample_ids[entity])
        for forged in FORGED:
            assert not ds.valid_id(entity, forged), (entity, forged)
            assert not ds.valid_id(entity, knowledge(kind).sample_ids[entity] + "\n")


def test_an_id_of_another_entity_is_not_valid() -> None:
    ds = source("haste", [])
    assert not ds.valid_id(Entity.COMPANY, "cont_000001")
    assert not source("basicsos", []).valid_id(Entity.NOTE, "contacts/1")


@pytest.mark.parametrize("kind", available_kinds())
@pytest.mark.parametrize("forged", FORGED)
def test_reads_of_a_forged_id_are_not_found_unsent(kind: str, forged: str) -> None:
    sent: list[httpx.Request] = []
    ds = source(kind, sent)
    entity = Entity.CONTACT
    assert isinstance(run(lambda: ds.get(entity, forged)), NotFound)
    many = run(lambda: ds.get_many(entity, [forged, forged]))
    assert [type(r) for r in many] == [NotFound, NotFound]
    link = next(iter(sorted(ds.links & {Link.COMPANY_CONTACTS, Link.CONTACT_NOTES})), None)
    if link is not None:
        children = run(lambda: ds.children(link, [forged]))
        assert [type(c) for c in children] in ([NotFound], [list])
    assert sent == []


@pytest.mark.parametrize("kind", WRITABLE_KINDS)
@pytest.mark.parametrize("forged", FORGED)
def test_writes_of_a_forged_id_are_refused_unsent(kind: str, forged: str) -> None:
    sent: list[httpx.Request] = []
    ds = source(kind, sent)
    update = run(lambda: ds.update(Entity.CONTACT, forged, {"last_name": "X"}))
    assert isinstance(update, BadUserInput)
    assert update.argument == "id"
    delete = run(lambda: ds.delete(Entity.CONTACT, forged))
    assert isinstance(delete, BadUserInput)
    assert delete.argument == "id"
    if ds.can_merge_contacts:
        good = knowledge(kind).sample_ids[Entity.CONTACT]
        merge = run(lambda: ds.merge_contacts(good, [forged]))
        assert isinstance(merge, BadUserInput)
        assert merge.argument == "loserIds"
    if ds.can_restore_deals:
        restore = run(lambda: ds.restore_deal(forged))
        assert isinstance(restore, BadUserInput)
        assert restore.argument == "id"
    if Entity.CONTACT in ds.can_bulk:
        ops: list[tuple[Op, str | None, dict[str, Any] | None]] = [(Op.DELETE, forged, None)]
        outcomes = run(lambda: ds.bulk(Entity.CONTACT, ops))
        assert [type(o) for o in outcomes] == [InvalidInput]
    assert sent == []


@given(st.text())
def test_a_segment_stays_one_segment_and_decodes_back(value: str) -> None:
    text = segment(value)
    assert not set(text) & set("/?#\\ \n\r\t")
    assert text.strip(".") != "" or text == ""
    assert unquote(text) == value


@pytest.mark.parametrize("kind", available_kinds())
@given(data=st.data())
def test_valid_ids_are_plain_ascii_and_travel_unchanged(kind: str, data: st.DataObject) -> None:
    ds = source(kind, [])
    entity = data.draw(st.sampled_from(sorted(ds.entities)))
    remote_id = data.draw(st.from_regex(ds.id_formats[entity], fullmatch=True))
    assert remote_id.isascii()
    assert remote_id.isprintable()
    if kind != "redivis":  # Redivis ids go into SQL literals, not URLs
        # A row id in a URL needs no escaping at all: what was checked is what is sent.
        row_id = remote_id.rpartition("/")[2]
        assert segment(row_id) == row_id
    hostile = data.draw(st.sampled_from(HOSTILE))
    position = data.draw(st.integers(0, len(remote_id)))
    assert not ds.valid_id(entity, remote_id[:position] + hostile + remote_id[position:]) or (
        hostile == "." and kind == "redivis"
    )
