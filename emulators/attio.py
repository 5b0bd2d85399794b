"""Emulator of the Attio API (v2), written from its contract.

Records of the `people`, `companies` and `deals` objects (`opportunities` is
an alias of `deals`) with Attio's attribute-value shape, and notes. Lists page
by `page` (from 1) and `pageSize` (1-100, default 25) in a `{data, meta}`
envelope with the total; records come in `created_at` order, then
`record_id`; notes newest first. Record and note ids are UUIDs derived from
the seed, so they are the same on every run.

`DEMO_API_KEY` reads the seed workspace and `TENANT2_API_KEY` another one
(`Authorization: Bearer <key>`). Limits per key: 100 requests a minute and
1,000 an hour; a 429 carries `Retry-After` as an HTTP date. Errors are
`{"error": {"type", "message"}}`; unknown query parameters or body keys are
refused with 400. Webhooks are stored and, when `DELIVER_WEBHOOKS` is on,
their events are POSTed (HMAC-signed) to loopback targets only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from emulators.control import EmulatorOptions, emulator_state
from emulators.routing import assemble, json_object
from emulators.seed import SeedCompany, SeedContact, SeedDeal, SeedWorld
from emulators.tenants import Tenants

DEMO_API_KEY = "attio-demo-key"
TENANT2_API_KEY = "attio-tenant-2"
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
RATE_LIMITS = ((100, 60), (1000, 3600))
NAMESPACE = uuid.UUID("6f1c2a52-9a55-4f58-9d9b-8a1f0f2d9e11")

Row = dict[str, Any]
OBJECTS = ("people", "companies", "deals")
ALIASES = {"opportunities": "deals"}
# slug -> (attribute type, multi-valued)
ATTRIBUTES: dict[str, dict[str, tuple[str, bool]]] = {
    "people": {
        "name": ("personal-name", False),
        "email_addresses": ("email-address", True),
        "phone_numbers": ("phone-number", True),
        "job_title": ("text", False),
        "description": ("text", False),
        "company": ("record-reference", False),
        "primary_location": ("location", False),
        "linkedin": ("text", False),
        "associated_deals": ("record-reference", True),
    },
    "companies": {
        "name": ("text", False),
        "domains": ("domain", True),
        "description": ("text", False),
        "team": ("record-reference", True),
        "categories": ("select", True),
        "primary_location": ("location", False),
        "associated_deals": ("record-reference", True),
    },
    "deals": {
        "name": ("text", False),
        "stage": ("status", False),
        "owner": ("actor-reference", False),
        "value": ("currency", False),
        "associated_people": ("record-reference", True),
        "associated_company": ("record-reference", False),
    },
}
REFERENCE_TARGETS = {
    "company": "companies",
    "associated_deals": "deals",
    "team": "people",
    "associated_people": "people",
    "associated_company": "companies",
}
UNIQUE = {"people": "email_addresses", "companies": "domains"}
STAGES = ["Lead", "In Progress", "Won 🎉", "Lost"]
OWNER_ID = str(uuid.uuid5(NAMESPACE, "member:owner"))
EVENT_TYPES = frozenset(
    {
        "record.created",
        "record.updated",
        "record.deleted",
        "record.merged",
        "note.created",
        "note.updated",
        "note.deleted",
    }
)
# Webhook events are POSTed to their targets when this is on, and only to loopback hosts.
DELIVER_WEBHOOKS = True
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _iso(moment: datetime) -> str:
    """Attio times: nanosecond precision, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def _now() -> str:
    return _iso(datetime.now(UTC))


def _error(status: int, kind: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"type": kind, "message": message}}, status_code=status, headers=headers or None
    )


class ApiError(Exception):
    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_request_error", message)


# --- values ----------------------------------------------------------------------------


def _value(kind: str, data: Row, stamp: str, workspace: str) -> Row:
    base = {
        "active_from": stamp,
        "active_until": None,
        "created_by_actor": {"type": "api-token", "id": None},
        "attribute_type": kind,
    }
    return {**base, **data}


def _input(obj: str, slug: str, raw: Any, space: Workspace) -> list[Row]:
    """Value objects from a write's input for one attribute (short or object form)."""
    kind, multi = ATTRIBUTES[obj][slug]
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    if not multi and len(items) > 1:
        raise _invalid(f"Attribute {slug!r} takes a single value.")
    out = []
    for item in items:
        out.append(_one(obj, slug, kind, item, space))
    return out


def _one(obj: str, slug: str, kind: str, item: Any, space: Workspace) -> Row:
    convert = CONVERTERS.get(kind)
    if convert is None:
        raise _invalid(f"Attribute {slug!r} cannot be written.")
    return convert(obj, slug, kind, item, space)


def _scalar(obj: str, slug: str, kind: str, item: Any, space: Workspace) -> Row:
    if isinstance(item, dict):
        item = item.get("value")
    if not isinstance(item, str | int | float) or isinstance(item, bool):
        raise _invalid(f"Attribute {slug!r} takes a {kind}.")
    return {"value": item}


def _personal_name(obj: str, slug: str, kind: str, item: Any, space: Workspace) -> Row:
    if isinstance(item, str):
        first, _, last = item.partition(" ")
        item = {"first_name": first, "last_name": last, "full_name": item}
    if not isinstance(item, dict):
        raise _invalid("`name` takes a string or {first_name, last_name, full_name}.")
    first, last = item.get("first_name") or "", item.get("last_name") or ""
    return {
        "first_name": first,
        "last_name": last,
        "full_name": item.get("full_name") or " ".join(p for p in (first, last) if p),
    }


def _email(obj: str, slug: str, kind: str, item: Any, space: Workspace) -> Row:
    address = item.get("email_address") if isinstance(item, dict) else item
    if not isinstance(address, str) or "@" not in address:
        raise _invalid(f"{address!r} is not a valid email address for {slug!r}.")
    local, _, host = address.partition("@")
    return {
        "original_email_address": address,
        "email_address": address.lower(),
        "email_domain": host.lower(),
        "email_root_domain": ".".join(host.lower().split(".")[-2:]),
        "email_local_specifier": local,
    }


def _phone(obj: str, slug: str, kind: str, item: Any, space: Workspace) -> Row:
    number = item.get("original_phone_number") if isinstance(item, dict) else item
    if not isinstance(number, str):
        raise _invalid(f"{slug!r} takes phone numbers as strings.")
    return {"original_phone_number": number, "country_code": "US", "phone_number": number}


def _domain(obj: str, slug: str, kind: str, item: Any, space: Workspace) -> Row:
    domain = item.get("domain") if isinstance(item, dict) else item
    if not isinstance(domain, str) or "." not in domain:
        raise _invalid(f"{domain!r} is not a domain.")
    return {"domain": domain.lower(), "root_domain": ".".join(domain.lower().split(".")[-2:])}


def _location(obj: str, slug: str, kind: str, item: Any, space: Workspace) -> Row:
    if isinstance(item, str):
        item = {"locality": item}
    if not isinstance(item, dict):
        raise _invalid(f"{slug!r} takes a location object.")
    keys = ("line_1", "line_2", "line_3", "line_4", "locality", "region", "postcode")
    location = {k: item.get(k) for k in keys}
    location.update(
        country_code=item.get("country_code"),
        latitude=item.get("latitude"),
        longitude=item.get("longitude"),
    )
    return location


def _reference(obj: str, slug: str, kind: str, item: Any, space: Workspace) -> Row:
    target = REFERENCE_TARGETS[slug]
    record_id = item.get("target_record_id") if isinstance(item, dict) else item
    if record_id is None and isinstance(item, dict):  # a reference matched by unique attribute
        unique = UNIQUE.get(target)
        wanted = item.get(unique or "")
        if unique and isinstance(wanted, list) and wanted:
            needle = str(wanted[0].get("domain") or wanted[0].get("email_address") or "").lower()
            record_id = space.find_unique(target, unique, needle)
    if not isinstance(record_id, str) or record_id not in space.records[target]:
        raise ApiError(
            404, "invalid_request_error", f"value_not_found: no {target} record {record_id!r}."
        )
    return {"target_object": target, "target_record_id": record_id}


def _title(item: Any, key: str) -> Any:
    """The title in `"title"`, `{key: "title"}` or `{key: {"title": ...}}`."""
    title = item.get(key) if isinstance(item, dict) else item
    return title.get("title") if isinstance(title, dict) else title


def _select(obj: str, slug: str, kind: str, item: Any, space: Workspace) -> Row:
    title = _title(item, "option")
    if not isinstance(title, str):
        raise _invalid(f"{slug!r} takes option titles.")
    return {"option": space.option(obj, slug, title)}


def _status(obj: str, slug: str, kind: str, item: Any, space: Workspace) -> Row:
    title = _title(item, "status")
    if title not in STAGES:
        raise _invalid(f"{title!r} is not a stage; stages: {', '.join(STAGES)}.")
    return {"status": space.status(obj, slug, str(title))}


def _actor(obj: str, slug: str, kind: str, item: Any, space: Workspace) -> Row:
    return {"referenced_actor_type": "workspace-member", "referenced_actor_id": OWNER_ID}


def _currency(obj: str, slug: str, kind: str, item: Any, space: Workspace) -> Row:
    amount = item.get("currency_value") if isinstance(item, dict) else item
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        raise _invalid(f"{slug!r} takes a number.")
    code = item.get("currency_code", "USD") if isinstance(item, dict) else "USD"
    return {"currency_value": amount, "currency_code": code}


Converter = Callable[[str, str, str, Any, "Workspace"], Row]
# Attribute type -> the value object a write's input becomes (short or object form).
CONVERTERS: dict[str, Converter] = {
    "text": _scalar,
    "number": _scalar,
    "personal-name": _personal_name,
    "email-address": _email,
    "phone-number": _phone,
    "domain": _domain,
    "location": _location,
    "record-reference": _reference,
    "select": _select,
    "status": _status,
    "actor-reference": _actor,
    "currency": _currency,
}


def _plain(value: Row, sub: str | None = None) -> Any:
    """The comparable part of a value object (or the given sub-field)."""
    if sub is not None:
        found = value.get(sub)
        return found.get("title") if isinstance(found, dict) else found
    kind = value.get("attribute_type")
    key = {
        "personal-name": "full_name",
        "email-address": "email_address",
        "phone-number": "phone_number",
        "domain": "domain",
        "record-reference": "target_record_id",
        "currency": "currency_value",
        "location": "locality",
        "actor-reference": "referenced_actor_id",
    }.get(str(kind), "value")
    if kind == "select":
        return value["option"]["title"]
    if kind == "status":
        return value["status"]["title"]
    return value.get(key)


# --- store -----------------------------------------------------------------------------


@dataclass
class Workspace:
    id: str
    records: dict[str, dict[str, Row]] = field(default_factory=dict)
    notes: dict[str, Row] = field(default_factory=dict)
    options: dict[tuple[str, str, str], Row] = field(default_factory=dict)
    webhooks: dict[str, Row] = field(default_factory=dict)
    created: int = 0

    def object_id(self, obj: str) -> str:
        return str(uuid.uuid5(NAMESPACE, f"{self.id}:object:{obj}"))

    def option(self, obj: str, slug: str, title: str) -> Row:
        key = (obj, slug, title)
        if key not in self.options:
            ids = {
                "workspace_id": self.id,
                "object_id": self.object_id(obj),
                "attribute_id": str(uuid.uuid5(NAMESPACE, f"{self.id}:{obj}:{slug}")),
                "option_id": str(uuid.uuid5(NAMESPACE, f"{self.id}:{obj}:{slug}:{title}")),
            }
            self.options[key] = {"id": ids, "title": title, "is_archived": False}
        return self.options[key]

    def status(self, obj: str, slug: str, title: str) -> Row:
        ids = {
            "workspace_id": self.id,
            "object_id": self.object_id(obj),
            "attribute_id": str(uuid.uuid5(NAMESPACE, f"{self.id}:{obj}:{slug}")),
            "status_id": str(uuid.uuid5(NAMESPACE, f"{self.id}:{obj}:{slug}:{title}")),
        }
        return {
            "id": ids,
            "title": title,
            "is_archived": False,
            "target_time_in_status": None,
            "celebration_enabled": title.startswith("Won"),
        }

    def emit(self, event_type: str, obj: str | None, item_id: str) -> None:
        """Send one event to every webhook subscribed to it (one event per delivery)."""
        if obj is None:  # a note event
            ids = {"workspace_id": self.id, "note_id": item_id}
        else:
            ids = {"workspace_id": self.id, "object_id": self.object_id(obj), "record_id": item_id}
        actor = {"type": "api-token", "id": str(uuid.uuid5(NAMESPACE, f"{self.id}:token"))}
        for hook in list(self.webhooks.values()):
            wanted = {s["event_type"] for s in hook["subscriptions"]}
            if event_type not in wanted or not DELIVER_WEBHOOKS:
                continue
            if urlsplit(hook["target_url"]).hostname not in LOOPBACK_HOSTS:
                continue
            payload = {
                "webhook_id": hook["id"]["webhook_id"],
                "events": [{"event_type": event_type, "id": ids, "actor": actor}],
            }
            _deliver(hook["target_url"], hook["secret"], json.dumps(payload).encode())

    def next_key(self) -> str:
        """A deterministic key for the next created record or note."""
        self.created += 1
        return f"created:{self.created}"

    def find_unique(self, obj: str, slug: str, needle: str) -> str | None:
        for record_id, record in self.records[obj].items():
            if any(str(_plain(v)).lower() == needle for v in record["values"][slug]):
                return record_id
        return None

    def new_record(self, obj: str, key: str, created_at: str) -> Row:
        record_id = str(uuid.uuid5(NAMESPACE, f"{self.id}:{obj}:{key}"))
        record = {
            "id": {
                "workspace_id": self.id,
                "object_id": self.object_id(obj),
                "record_id": record_id,
            },
            "created_at": created_at,
            "web_url": f"https://app.attio.com/{self.id[:8]}/{obj}/record/{record_id}",
            "values": {slug: [] for slug in ATTRIBUTES[obj]},
        }
        self.records[obj][record_id] = record
        return record

    def set(self, obj: str, record: Row, slug: str, values: list[Row], stamp: str) -> None:
        kind = ATTRIBUTES[obj][slug][0]
        record["values"][slug] = [_value(kind, v, stamp, self.id) for v in values]


def _deliver(url: str, secret: str, body: bytes) -> None:
    """POST one signed event in the background; a failed delivery is dropped."""
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "Attio-Signature": signature,
        "X-Attio-Signature": signature,
    }

    def post() -> None:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5):
                pass
        except OSError:
            pass

    threading.Thread(target=post, daemon=True).start()


def _workspace(world: SeedWorld, key: str) -> Workspace:
    space = Workspace(id=str(uuid.uuid5(NAMESPACE, f"workspace:{key}")))
    space.records = {obj: {} for obj in OBJECTS}
    companies = [_seed_company(space, c) for c in world.companies]
    people = [_seed_person(space, p, companies) for p in world.contacts]
    deals = [_seed_deal(space, d, people, companies) for d in world.deals]
    parents = {
        "contact": ("people", people),
        "company": ("companies", companies),
        "deal": ("deals", deals),
    }
    for n in world.notes:
        obj, ids = parents[n.target_kind]
        note_id = str(uuid.uuid5(NAMESPACE, f"{space.id}:note:seed:{n.index}"))
        space.notes[note_id] = {
            "id": {"workspace_id": space.id, "note_id": note_id},
            "parent_object": obj,
            "parent_record_id": ids[n.target],
            "title": n.title,
            "content_plaintext": n.body,
            "content_markdown": n.body,
            "tags": [],
            "created_by_actor": {"type": "workspace-member", "id": OWNER_ID},
            "created_at": _iso(n.created_at),
            "meeting_id": None,
        }
    return space


def _seed_location(space: Workspace, obj: str, place: SeedCompany | SeedContact) -> Row:
    address = {
        "line_1": place.street,
        "locality": place.city,
        "region": place.region,
        "postcode": place.postal_code,
        "country_code": place.country,
    }
    return _location(obj, "primary_location", "location", address, space)


def _link(space: Workspace, record: Row, slug: str, target: Row, stamp: str) -> None:
    """Append a reference to `target` to `record`'s `slug`: the back link of a seeded one."""
    record["values"][slug].append(_value("record-reference", target, stamp, space.id))


def _seed_company(space: Workspace, c: SeedCompany) -> str:
    stamp = _iso(c.created_at)
    record = space.new_record("companies", f"seed:{c.index}", stamp)
    fill: dict[str, list[Row]] = {
        "name": [{"value": c.name}],
        "domains": [_domain("companies", "domains", "domain", c.domain, space)],
        "description": [{"value": c.description}],
        "categories": [{"option": space.option("companies", "categories", c.industry)}],
        "primary_location": [_seed_location(space, "companies", c)],
    }
    for slug, values in fill.items():
        space.set("companies", record, slug, values, stamp)
    record_id: str = record["id"]["record_id"]
    return record_id


def _seed_person(space: Workspace, p: SeedContact, companies: list[str]) -> str:
    stamp = _iso(p.created_at)
    record = space.new_record("people", f"seed:{p.index}", stamp)
    record_id: str = record["id"]["record_id"]
    name = {"first_name": p.first_name, "last_name": p.last_name}
    fill: dict[str, list[Row]] = {
        "name": [{**name, "full_name": f"{p.first_name} {p.last_name}"}],
        "email_addresses": [_email("people", "email_addresses", "email-address", p.email, space)],
        "phone_numbers": (
            [_phone("people", "phone_numbers", "phone-number", p.phone, space)] if p.phone else []
        ),
        "job_title": [{"value": p.title}],
        "linkedin": [{"value": p.linkedin_url}],
        "primary_location": [_seed_location(space, "people", p)],
    }
    if p.company is not None:
        company_id = companies[p.company]
        fill["company"] = [{"target_object": "companies", "target_record_id": company_id}]
        member = {"target_object": "people", "target_record_id": record_id}
        _link(space, space.records["companies"][company_id], "team", member, stamp)
    for slug, values in fill.items():
        space.set("people", record, slug, values, stamp)
    return record_id


def _seed_deal(space: Workspace, d: SeedDeal, people: list[str], companies: list[str]) -> str:
    stamp = _iso(d.created_at)
    record = space.new_record("deals", f"seed:{d.index}", stamp)
    deal_id: str = record["id"]["record_id"]
    stage = {"won": "Won 🎉", "lost": "Lost"}.get(
        d.status, "In Progress" if d.probability >= 0.5 else "Lead"
    )
    linked = [people[i] for i in d.contacts]
    back = {"target_object": "deals", "target_record_id": deal_id}
    owner = {"referenced_actor_type": "workspace-member", "referenced_actor_id": OWNER_ID}
    fill: dict[str, list[Row]] = {
        "name": [{"value": d.name}],
        "stage": [{"status": space.status("deals", "stage", stage)}],
        "owner": [owner],
        "value": [{"currency_value": d.amount, "currency_code": d.currency}],
        "associated_people": [{"target_object": "people", "target_record_id": i} for i in linked],
    }
    for person in linked:
        _link(space, space.records["people"][person], "associated_deals", back, stamp)
    if d.company is not None:
        company_id = companies[d.company]
        fill["associated_company"] = [
            {"target_object": "companies", "target_record_id": company_id}
        ]
        _link(space, space.records["companies"][company_id], "associated_deals", back, stamp)
    for slug, values in fill.items():
        space.set("deals", record, slug, values, stamp)
    return deal_id


# --- listing, filtering, sorting -------------------------------------------------------


def _page_params(page: Any, size: Any) -> tuple[int, int]:
    try:
        page_number = int(page) if page is not None else 1
        page_size = int(size) if size is not None else DEFAULT_PAGE_SIZE
    except (TypeError, ValueError):
        raise _invalid("`page` and `pageSize` must be integers.") from None
    if isinstance(page, bool) or isinstance(size, bool) or page_number < 1:
        raise _invalid("`page` must be 1 or more.")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise _invalid(f"`pageSize` must be between 1 and {MAX_PAGE_SIZE}.")
    return page_number, page_size


def _allow(request: Request, allowed: set[str]) -> None:
    """Strict query strings: unknown or repeated parameters are refused."""
    for name in request.query_params:
        if name not in allowed:
            raise _invalid(f"Unknown query parameter {name!r}.")
        if len(request.query_params.getlist(name)) > 1:
            raise _invalid(f"Query parameter {name!r} is given more than once.")


def _envelope(items: list[Row], page: int, size: int) -> Row:
    return {
        "data": items[(page - 1) * size : page * size],
        "meta": {"page": page, "pageSize": size, "total": len(items)},
    }


def _attribute(obj: str, slug: str) -> str:
    if slug not in ATTRIBUTES[obj] and slug not in ("record_id", "created_at"):
        raise _invalid(f"filter_error: {obj} has no attribute {slug!r}.")
    return slug


def _values_of(record: Row, slug: str, sub: str | None) -> list[Any]:
    if slug == "record_id":
        return [record["id"]["record_id"]]
    if slug == "created_at":
        return [record["created_at"]]
    return [_plain(v, sub) for v in record["values"].get(slug, [])]


COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "$eq": lambda a, b: a == b,
    "$contains": lambda a, b: isinstance(a, str) and str(b).lower() in a.lower(),
    "$starts_with": lambda a, b: isinstance(a, str) and a.lower().startswith(str(b).lower()),
    "$ends_with": lambda a, b: isinstance(a, str) and a.lower().endswith(str(b).lower()),
    "$in": lambda a, b: isinstance(b, list) and a in b,
    "$lt": lambda a, b: a is not None and type(a) is type(b) and a < b,
    "$lte": lambda a, b: a is not None and type(a) is type(b) and a <= b,
    "$gt": lambda a, b: a is not None and type(a) is type(b) and a > b,
    "$gte": lambda a, b: a is not None and type(a) is type(b) and a >= b,
}


def _predicate(obj: str, spec: Any) -> Callable[[Row], bool]:
    """A record filter from Attio's shorthand or verbose filter object."""
    if not isinstance(spec, dict):
        raise _invalid("filter_error: a filter is an object.")
    tests: list[Callable[[Row], bool]] = []
    for key, value in spec.items():
        if key in ("$and", "$or"):
            if not isinstance(value, list):
                raise _invalid(f"filter_error: {key} takes a list.")
            tests.append(_combine([_predicate(obj, v) for v in value], key == "$and"))
        elif key == "$not":
            tests.append(_negate(_predicate(obj, value)))
        else:
            tests.append(_condition(obj, _attribute(obj, key), value))
    return lambda record: all(t(record) for t in tests)


def _combine(parts: list[Callable[[Row], bool]], every: bool) -> Callable[[Row], bool]:
    if every:
        return lambda record: all(p(record) for p in parts)
    return lambda record: any(p(record) for p in parts)


def _negate(test: Callable[[Row], bool]) -> Callable[[Row], bool]:
    return lambda record: not test(record)


def _check(
    slug: str, sub: str | None, compare: Callable[[Any, Any], bool], operand: Any
) -> Callable[[Row], bool]:
    return lambda record: any(compare(v, operand) for v in _values_of(record, slug, sub))


def _present(slug: str, sub: str | None, want: bool) -> Callable[[Row], bool]:
    return lambda record: bool(_values_of(record, slug, sub)) == want


def _condition(obj: str, slug: str, spec: Any, sub: str | None = None) -> Callable[[Row], bool]:
    if not isinstance(spec, dict):  # shorthand equality
        wanted = spec.lower() if isinstance(spec, str) and slug in UNIQUE.values() else spec
        return lambda r: any(v == wanted for v in _values_of(r, slug, sub))
    if (
        ATTRIBUTES.get(obj, {}).get(slug, ("", False))[0] == "record-reference"
        and "target_record_id" in spec
    ):
        target = spec["target_record_id"]
        return lambda r: any(v == target for v in _values_of(r, slug, None))
    tests: list[Callable[[Row], bool]] = []
    for op, operand in spec.items():
        if op == "$not_empty":
            tests.append(_present(slug, sub, bool(operand)))
        elif op in COMPARISONS:
            tests.append(_check(slug, sub, COMPARISONS[op], operand))
        elif not op.startswith("$") and sub is None:
            tests.append(_condition(obj, slug, operand, op))
        else:
            raise _invalid(f"filter_error: unsupported operator {op!r}.")
    return lambda r: all(t(r) for t in tests)


def _sorted(obj: str, records: list[Row], sorts: list[tuple[str, str | None, bool]]) -> list[Row]:
    rows = sorted(records, key=lambda r: (r["created_at"], r["id"]["record_id"]))
    for slug, sub, descending in reversed(sorts):
        _attribute(obj, slug)

        def key(record: Row, slug: str = slug, sub: str | None = sub) -> tuple[int, Any]:
            values = _values_of(record, slug, sub)
            first = values[0] if values else None
            return (
                (1, "")
                if first is None
                else (0, first if not isinstance(first, str) else first.lower())
            )

        rows.sort(key=key, reverse=descending)
    return rows


def _search(record: Row, text: str) -> bool:
    needle = text.lower()
    for slug in ("name", "email_addresses", "domains"):
        for value in record["values"].get(slug, []):
            if needle in str(_plain(value)).lower():
                return True
    return False


# --- the app ---------------------------------------------------------------------------


class Attio(Tenants[Workspace]):
    def workspaces(self, demo: SeedWorld, other: SeedWorld) -> dict[str, Workspace]:
        return {
            DEMO_API_KEY: _workspace(demo, "demo"),
            TENANT2_API_KEY: _workspace(other, "tenant-2"),
        }

    def throttle(self, key: str) -> JSONResponse | None:
        if not self.options.rate_limits:
            return None
        full = self.log.admit(key)
        if full is None:
            return None
        return throttled(datetime.fromtimestamp(full.hits[-full.limit] + full.seconds + 1, UTC))


def throttled(when: datetime) -> JSONResponse:
    return _error(
        429,
        "rate_limit_error",
        "Rate limit exceeded, please try again later.",
        **{"Retry-After": format_datetime(when.replace(microsecond=0), usegmt=True)},
    )


# --- requests --------------------------------------------------------------------------


async def _gate(request: Request, call_next: Callable[[Request], Any]) -> Response:
    """Bearer key to workspace, then the key's rate limits."""
    if not request.url.path.startswith("/v2/"):
        response: Response = await call_next(request)
        return response
    api: Attio = emulator_state(request)
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or key not in api.spaces:
        return _error(401, "auth_error", "Missing or invalid API key.")
    refused = api.throttle(key)
    if refused is not None:
        return refused
    request.state.space = api.spaces[key]
    answer: Response = await call_next(request)
    return answer


async def _space(request: Request) -> Workspace:
    """The workspace of the caller's key (set by the gate)."""
    space: Workspace = request.state.space
    return space


Space = Annotated[Workspace, Depends(_space)]


def object_of(space: Workspace, name: str) -> str:
    """An object from its slug, the `opportunities` alias or its object UUID."""
    obj = ALIASES.get(name, name)
    by_id = {space.object_id(o): o for o in OBJECTS}
    obj = by_id.get(obj, obj)
    if obj not in OBJECTS:
        raise ApiError(404, "invalid_request_error", f"Object {name!r} not found.")
    return obj


async def body_of(request: Request) -> Row:
    return await json_object(request, _invalid)


async def values_of(request: Request) -> Any:
    data = (await body_of(request)).get("data")
    if not isinstance(data, dict) or not isinstance(data.get("values"), dict):
        raise _invalid('The body must be {"data": {"values": {...}}}.')
    return data["values"]


def _found(items: dict[str, Row], item_id: str, noun: str) -> Row:
    item = items.get(item_id)
    if item is None:
        raise ApiError(404, "invalid_request_error", f"{noun} {item_id!r} not found.")
    return item


def record_of(space: Workspace, obj: str, record_id: str) -> Row:
    return _found(space.records[obj], record_id, "Record")


def _parse_values(space: Workspace, obj: str, record: Row, values: Any) -> dict[str, list[Row]]:
    """A write's values by slug, refused if a unique one belongs to another record."""
    if not isinstance(values, dict):
        raise _invalid("`data.values` must be an object.")
    parsed = {}
    for slug, raw in values.items():
        if slug not in ATTRIBUTES[obj]:
            raise _invalid(f"{obj} has no attribute {slug!r}.")
        parsed[slug] = _input(obj, slug, raw, space)
    unique = UNIQUE.get(obj)
    if unique is None:
        return parsed
    for value in parsed.get(unique, []):
        needle = str(_plain({"attribute_type": ATTRIBUTES[obj][unique][0], **value})).lower()
        owner = space.find_unique(obj, unique, needle)
        if owner is not None and owner != record["id"]["record_id"]:
            raise _invalid(f"uniqueness_conflict: {unique} {needle!r} is taken by another record.")
    return parsed


def write_values(space: Workspace, obj: str, record: Row, values: Any, *, append: bool) -> None:
    stamp = _now()
    parsed = _parse_values(space, obj, record, values)
    for slug, new in parsed.items():
        kind, multi = ATTRIBUTES[obj][slug]
        if append and multi and new:
            record["values"][slug] = record["values"][slug] + [
                _value(kind, v, stamp, space.id) for v in new
            ]
        else:
            space.set(obj, record, slug, new, stamp)


def _create_record(space: Workspace, obj: str, values: Any) -> JSONResponse:
    """A new record from `values`, or none at all when they are refused."""
    record = space.new_record(obj, space.next_key(), _now())
    try:
        write_values(space, obj, record, values, append=False)
    except ApiError:
        del space.records[obj][record["id"]["record_id"]]
        raise
    space.emit("record.created", obj, record["id"]["record_id"])
    return JSONResponse({"data": record})


def _query_window(body: Row) -> tuple[int, int]:
    """(limit, offset) from `limit`/`offset` or from `page`/`pageSize`."""
    if ({"limit", "offset"} & set(body)) and ({"page", "pageSize"} & set(body)):
        raise _invalid("Page with `limit`/`offset` or with `page`/`pageSize`, not both.")
    if "limit" not in body and "offset" not in body:
        page, size = _page_params(body.get("page"), body.get("pageSize"))
        return size, (page - 1) * size
    limit, offset = body.get("limit", MAX_PAGE_SIZE), body.get("offset", 0)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise _invalid(f"`limit` must be between 1 and {MAX_PAGE_SIZE}.")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise _invalid("`offset` must be 0 or more.")
    return limit, offset


def _query_sorts(raw_sorts: Any) -> list[tuple[str, str | None, bool]]:
    if not isinstance(raw_sorts, list):
        raise _invalid("`sorts` must be a list.")
    sorts = []
    for item in raw_sorts:
        if not isinstance(item, dict) or not isinstance(item.get("attribute"), str):
            raise _invalid("Each sort needs an `attribute`.")
        if set(item) - {"attribute", "field", "direction"}:
            raise _invalid("A sort has only `attribute`, `field` and `direction`.")
        direction, sub = item.get("direction", "asc"), item.get("field")
        if direction not in ("asc", "desc") or not (sub is None or isinstance(sub, str)):
            raise _invalid("A sort's `direction` is asc or desc, its `field` a string.")
        sorts.append((item["attribute"], sub, direction == "desc"))
    return sorts


# --- records ---------------------------------------------------------------------------

records = APIRouter()
NOUNS = {
    "people": ("Person", "People"),
    "companies": ("Company", "Companies"),
    "deals": ("Deal", "Deals"),
}


@records.get("/v2/objects")
async def list_objects(request: Request, space: Space) -> Response:
    """The standard objects: a webhook event names its object by `object_id` only."""
    _allow(request, set())
    objects = []
    for obj in OBJECTS:
        singular, plural = NOUNS[obj]
        ids = {"workspace_id": space.id, "object_id": space.object_id(obj)}
        objects.append(
            {"id": ids, "api_slug": obj, "singular_noun": singular, "plural_noun": plural}
        )
    return JSONResponse({"data": objects})


@records.get("/v2/objects/{object_name}/records")
async def list_records(object_name: str, request: Request, space: Space) -> Response:
    obj = object_of(space, object_name)
    _allow(request, {"page", "pageSize", "query", "sort", "direction"})
    params = request.query_params
    page, size = _page_params(params.get("page"), params.get("pageSize"))
    found = list(space.records[obj].values())
    if params.get("query"):
        found = [r for r in found if _search(r, params["query"])]
    sorts: list[tuple[str, str | None, bool]] = []
    if params.get("sort"):
        direction = params.get("direction", "asc")
        if direction not in ("asc", "desc"):
            raise _invalid("`direction` must be asc or desc.")
        sorts.append((params["sort"], None, direction == "desc"))
    return JSONResponse(_envelope(_sorted(obj, found, sorts), page, size))


@records.post("/v2/objects/{object_name}/records/query")
async def query_records(object_name: str, request: Request, space: Space) -> Response:
    obj = object_of(space, object_name)
    _allow(request, set())
    body = await body_of(request)
    unknown = set(body) - {"filter", "sorts", "limit", "offset", "page", "pageSize"}
    if unknown:
        raise _invalid(f"Unknown body keys: {', '.join(sorted(unknown))}.")
    limit, offset = _query_window(body)
    found = list(space.records[obj].values())
    if body.get("filter"):
        test = _predicate(obj, body["filter"])
        found = [r for r in found if test(r)]
    rows = _sorted(obj, found, _query_sorts(body.get("sorts") or []))
    return JSONResponse(
        {
            "data": rows[offset : offset + limit],
            "meta": {"page": offset // limit + 1, "pageSize": limit, "total": len(rows)},
        }
    )


@records.post("/v2/objects/{object_name}/records")
async def create_record(object_name: str, request: Request, space: Space) -> Response:
    obj = object_of(space, object_name)
    _allow(request, set())
    body = await body_of(request)
    data = body.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("values", {}), dict):
        raise _invalid('The body must be {"data": {"values": {...}}}.')
    values = dict(data.get("values") or {})
    if obj == "deals":
        if not values.get("name"):
            raise _invalid("Deals need a `name`.")
        # `owner` is required in Attio; a missing one becomes the token's workspace member.
        values.setdefault("owner", OWNER_ID)
    return _create_record(space, obj, values)


@records.put("/v2/objects/{object_name}/records")
async def assert_record(object_name: str, request: Request, space: Space) -> Response:
    obj = object_of(space, object_name)
    _allow(request, {"matching_attribute"})
    matching = request.query_params.get("matching_attribute")
    if matching is None or matching != UNIQUE.get(obj):
        raise _invalid(f"`matching_attribute` must be a unique attribute of {obj}.")
    values = await values_of(request)
    wanted = _input(obj, matching, values.get(matching), space)
    if not wanted:
        raise _invalid(f"`{matching}` is required to assert a record.")
    needle = str(_plain({"attribute_type": ATTRIBUTES[obj][matching][0], **wanted[0]})).lower()
    existing = space.find_unique(obj, matching, needle)
    if existing is None:
        return _create_record(space, obj, values)
    write_values(space, obj, space.records[obj][existing], values, append=False)
    space.emit("record.updated", obj, existing)
    return JSONResponse({"data": space.records[obj][existing]})


@records.get("/v2/objects/{object_name}/records/{record_id}")
async def get_record(object_name: str, record_id: str, request: Request, space: Space) -> Response:
    _allow(request, set())
    return JSONResponse({"data": record_of(space, object_of(space, object_name), record_id)})


async def _rewrite(
    object_name: str, record_id: str, request: Request, space: Workspace, *, append: bool
) -> Response:
    obj = object_of(space, object_name)
    _allow(request, set())
    record = record_of(space, obj, record_id)
    write_values(space, obj, record, await values_of(request), append=append)
    space.emit("record.updated", obj, record_id)
    return JSONResponse({"data": record})


@records.patch("/v2/objects/{object_name}/records/{record_id}")
async def patch_record(
    object_name: str, record_id: str, request: Request, space: Space
) -> Response:
    return await _rewrite(object_name, record_id, request, space, append=True)


@records.put("/v2/objects/{object_name}/records/{record_id}")
async def put_record(object_name: str, record_id: str, request: Request, space: Space) -> Response:
    return await _rewrite(object_name, record_id, request, space, append=False)


@records.delete("/v2/objects/{object_name}/records/{record_id}")
async def delete_record(
    object_name: str, record_id: str, request: Request, space: Space
) -> Response:
    obj = object_of(space, object_name)
    _allow(request, set())
    record_of(space, obj, record_id)
    del space.records[obj][record_id]
    for other in space.records.values():
        for record in other.values():
            for slug, values in record["values"].items():
                record["values"][slug] = [
                    v for v in values if v.get("target_record_id") != record_id
                ]
    space.notes = {k: n for k, n in space.notes.items() if n["parent_record_id"] != record_id}
    space.emit("record.deleted", obj, record_id)
    return JSONResponse({})


# --- notes -----------------------------------------------------------------------------

notes = APIRouter()


@notes.get("/v2/notes")
async def list_notes(request: Request, space: Space) -> Response:
    _allow(request, {"parent_object", "parent_record_id", "page", "pageSize"})
    params = request.query_params
    page, size = _page_params(params.get("page"), params.get("pageSize"))
    found = list(space.notes.values())
    if params.get("parent_object"):
        parent = object_of(space, params["parent_object"])
        found = [n for n in found if n["parent_object"] == parent]
    if params.get("parent_record_id"):
        found = [n for n in found if n["parent_record_id"] == params["parent_record_id"]]
    found.sort(key=lambda n: (n["created_at"], n["id"]["note_id"]), reverse=True)
    return JSONResponse(_envelope(found, page, size))


def _new_note(space: Workspace, data: Any) -> Row:
    """A note from a create's `data`, checked, not yet stored."""
    if not isinstance(data, dict):
        raise _invalid('The body must be {"data": {...}}.')
    parent = object_of(space, str(data.get("parent_object")))
    parent_id = data.get("parent_record_id")
    if not isinstance(parent_id, str) or parent_id not in space.records[parent]:
        raise ApiError(404, "invalid_request_error", f"Parent record {parent_id!r} not found.")
    if data.get("format", "plaintext") not in ("plaintext", "markdown"):
        raise _invalid("`format` must be plaintext or markdown.")
    if not isinstance(data.get("title"), str) or not isinstance(data.get("content"), str):
        raise _invalid("A note needs a `title` and `content` (strings).")
    note_id = str(uuid.uuid5(NAMESPACE, f"{space.id}:note:{space.next_key()}"))
    return {
        "id": {"workspace_id": space.id, "note_id": note_id},
        "parent_object": parent,
        "parent_record_id": parent_id,
        "title": data["title"],
        "content_plaintext": data["content"],
        "content_markdown": data["content"],
        "tags": [],
        "created_by_actor": {"type": "api-token", "id": None},
        "created_at": data.get("created_at") or _now(),
        "meeting_id": None,
    }


@notes.post("/v2/notes")
async def create_note(request: Request, space: Space) -> Response:
    _allow(request, set())
    note = _new_note(space, (await body_of(request)).get("data"))
    note_id = note["id"]["note_id"]
    space.notes[note_id] = note
    space.emit("note.created", None, note_id)
    return JSONResponse({"data": space.notes[note_id]})


def note_of(space: Workspace, note_id: str) -> Row:
    return _found(space.notes, note_id, "Note")


@notes.get("/v2/notes/{note_id}")
async def get_note(note_id: str, request: Request, space: Space) -> Response:
    _allow(request, set())
    return JSONResponse({"data": note_of(space, note_id)})


@notes.delete("/v2/notes/{note_id}")
async def delete_note(note_id: str, request: Request, space: Space) -> Response:
    _allow(request, set())
    note_of(space, note_id)
    del space.notes[note_id]
    space.emit("note.deleted", None, note_id)
    return JSONResponse({})


# --- webhooks --------------------------------------------------------------------------


def subscriptions_of(raw: Any) -> list[Row]:
    if not isinstance(raw, list) or not raw:
        raise _invalid("`subscriptions` must be a non-empty list.")
    out = []
    for item in raw:
        if not isinstance(item, dict) or item.get("event_type") not in EVENT_TYPES:
            raise _invalid(f"Unknown event type in {item!r}.")
        if not (item.get("filter") is None or isinstance(item["filter"], dict)):
            raise _invalid("A subscription's `filter` is null or an object.")
        out.append({"event_type": item["event_type"], "filter": item.get("filter")})
    return out


def target_of(raw: Any) -> str:
    # Attio wants https; plain http is allowed to loopback so tests can listen locally.
    parts = urlsplit(raw) if isinstance(raw, str) else None
    if parts is None or not parts.hostname or parts.scheme not in ("https", "http"):
        raise _invalid("`target_url` must be an https URL.")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise _invalid("`target_url` must be an https URL.")
    return str(raw)


def webhook_of(space: Workspace, webhook_id: str) -> Row:
    return _found(space.webhooks, webhook_id, "Webhook")


def public(hook: Row) -> Row:
    return {k: v for k, v in hook.items() if k != "secret"}  # the secret shows once


webhooks = APIRouter()


@webhooks.post("/v2/webhooks")
async def create_webhook(request: Request, space: Space) -> Response:
    _allow(request, set())
    data = (await body_of(request)).get("data")
    if not isinstance(data, dict):
        raise _invalid('The body must be {"data": {"target_url", "subscriptions"}}.')
    key = space.next_key()
    webhook_id = str(uuid.uuid5(NAMESPACE, f"{space.id}:webhook:{key}"))
    space.webhooks[webhook_id] = {
        "id": {"workspace_id": space.id, "webhook_id": webhook_id},
        "target_url": target_of(data.get("target_url")),
        "subscriptions": subscriptions_of(data.get("subscriptions")),
        "status": "active",
        "created_at": _now(),
        "secret": hashlib.sha256(f"{webhook_id}:secret".encode()).hexdigest(),
    }
    return JSONResponse({"data": space.webhooks[webhook_id]})


@webhooks.get("/v2/webhooks")
async def list_webhooks(request: Request, space: Space) -> Response:
    _allow(request, {"page", "pageSize"})
    page, size = _page_params(
        request.query_params.get("page"), request.query_params.get("pageSize")
    )
    return JSONResponse(_envelope([public(h) for h in space.webhooks.values()], page, size))


@webhooks.get("/v2/webhooks/{webhook_id}")
async def get_webhook(webhook_id: str, request: Request, space: Space) -> Response:
    _allow(request, set())
    return JSONResponse({"data": public(webhook_of(space, webhook_id))})


@webhooks.patch("/v2/webhooks/{webhook_id}")
async def update_webhook(webhook_id: str, request: Request, space: Space) -> Response:
    _allow(request, set())
    hook = webhook_of(space, webhook_id)
    data = (await body_of(request)).get("data")
    if not isinstance(data, dict) or set(data) - {"target_url", "subscriptions"}:
        raise _invalid('The body must be {"data": {"target_url"?, "subscriptions"?}}.')
    changes: Row = {}
    if "target_url" in data:
        changes["target_url"] = target_of(data["target_url"])
    if "subscriptions" in data:
        changes["subscriptions"] = subscriptions_of(data["subscriptions"])
    hook.update(changes)
    return JSONResponse({"data": public(hook)})


@webhooks.delete("/v2/webhooks/{webhook_id}")
async def delete_webhook(webhook_id: str, request: Request, space: Space) -> Response:
    _allow(request, set())
    webhook_of(space, webhook_id)
    del space.webhooks[webhook_id]
    return JSONResponse({})


# --- the app ---------------------------------------------------------------------------


async def _api_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    return _error(error.status, error.kind, error.message)


async def _http_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    return _error(error.status_code, "invalid_request_error", str(error.detail))


async def _validation_error(_: Request, error: Exception) -> Response:
    # No route declares typed parameters, but FastAPI's 422 must never leak.
    return _error(400, "invalid_request_error", "The request is malformed.")


def _control_error(status: int, message: str) -> Response:
    return _error(status, "api_error" if status >= 500 else "invalid_request_error", message)


def create_app(options: EmulatorOptions) -> FastAPI:
    return assemble(
        FastAPI(title="Attio API emulator", docs_url=None, redoc_url=None),
        Attio(options, RATE_LIMITS),
        options,
        handlers={ApiError: _api_error},
        http_error=_http_error,
        validation_error=_validation_error,
        gate=_gate,
        hooks=(_control_error, lambda: throttled(datetime.now(UTC) + timedelta(seconds=1))),
        routers=(records, notes, webhooks),
    )
