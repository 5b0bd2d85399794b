"""Deterministic seed data shared by every emulator.

One neutral "CRM world" — companies, contacts, deals and notes linked to each
other — generated from a seed. Each emulator turns it into its own API's shape
(ids, field names, envelopes); only this neutral world is shared, never the
way a provider pages, maps or encodes it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

DEFAULT_SEED = 4242
EPOCH = datetime(2024, 1, 1, 9, 0, 0, tzinfo=UTC)

FIRST_NAMES = [
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "Edsger",
    "Radia",
    "Tim",
    "Katherine",
    "Donald",
    "Hedy",
    "Guido",
    "Anita",
    "Bjarne",
    "Sophie",
    "Yukihiro",
    "Karen",
    "John",
    "Mary",
    "Niklaus",
    "Lynn",
    "Vint",
    "Shafi",
    "Leslie",
    "Jean",
    "Robin",
]
LAST_NAMES = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "Dijkstra",
    "Perlman",
    "Berners-Lee",
    "Johnson",
    "Knuth",
    "Lamarr",
    "van Rossum",
    "Borg",
    "Stroustrup",
    "Wilson",
    "Matsumoto",
    "Jones",
    "McCarthy",
    "Shaw",
    "Wirth",
    "Conway",
    "Cerf",
    "Goldwasser",
    "Lamport",
    "Sammet",
    "Milner",
]
COMPANY_WORDS = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark",
    "Wayne",
    "Tyrell",
    "Soylent",
    "Cyberdyne",
    "Aperture",
    "Black Mesa",
    "Vandelay",
    "Wonka",
    "Monarch",
    "Oscorp",
    "Gringotts",
    "Massive",
    "Pied Piper",
    "Dunder",
    "Virtucon",
    "Gekko",
    "Nakatomi",
    "Prestige",
    "Sterling",
]
COMPANY_SUFFIXES = ["Labs", "Systems", "Industries", "Group", "Partners", "Analytics", "Works"]
INDUSTRIES = [
    "Software",
    "Manufacturing",
    "Finance",
    "Healthcare",
    "Retail",
    "Energy",
    "Logistics",
    "Education",
    "Media",
    "Biotech",
]
TITLES = [
    "CEO",
    "CTO",
    "VP Sales",
    "Head of Marketing",
    "Engineer",
    "Product Manager",
    "Designer",
    "Account Executive",
    "Data Scientist",
    "Operations Lead",
]
CITIES = [
    ("Berlin", "BE", "10115", "DE"),
    ("Paris", "IDF", "75001", "FR"),
    ("New York", "NY", "10001", "US"),
    ("San Francisco", "CA", "94105", "US"),
    ("London", "LND", "EC1A 1BB", "GB"),
    ("Tokyo", "13", "100-0001", "JP"),
    ("Toronto", "ON", "M5H 2N2", "CA"),
    ("Sydney", "NSW", "2000", "AU"),
]
STREETS = ["Main St", "High St", "Market St", "Station Rd", "Park Ave", "King St", "Elm St"]
TAGS = ["vip", "partner", "newsletter", "churn-risk", "enterprise", "smb", "trial", "referral"]
CONTACT_STATUSES = ["active", "inactive", "bounced"]
DEAL_STAGES = ["Lead", "Qualified", "Proposal", "Negotiation", "Won", "Lost"]
CURRENCIES = ["USD", "EUR", "GBP"]
NOTE_TOPICS = [
    "Intro call",
    "Follow-up",
    "Pricing",
    "Demo",
    "Renewal",
    "Support",
    "Kick-off",
    "Check-in",
]
AUTHORS = ["alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com"]


@dataclass
class SeedCompany:
    index: int
    name: str
    domain: str
    industry: str
    description: str
    employee_count: int
    annual_revenue: int
    phone: str
    street: str
    city: str
    region: str
    postal_code: str
    country: str
    tags: list[str]
    created_at: datetime
    updated_at: datetime


@dataclass
class SeedContact:
    index: int
    first_name: str
    last_name: str
    email: str
    phone: str | None
    title: str
    company: int | None
    street: str
    city: str
    region: str
    postal_code: str
    country: str
    status: str
    tags: list[str]
    linkedin_url: str
    created_at: datetime
    updated_at: datetime
    custom_fields: dict[str, str] = field(default_factory=dict)


@dataclass
class SeedDeal:
    index: int
    name: str
    amount: float
    currency: str
    stage: str
    status: str  # open | won | lost
    probability: float
    close_date: date
    company: int | None
    contacts: list[int]
    created_at: datetime
    updated_at: datetime


@dataclass
class SeedNote:
    index: int
    title: str
    body: str
    author: str
    target_kind: str  # contact | company | deal
    target: int
    created_at: datetime


@dataclass
class SeedWorld:
    companies: list[SeedCompany]
    contacts: list[SeedContact]
    deals: list[SeedDeal]
    notes: list[SeedNote]


def _stamp(rng: random.Random, index: int, spacing_minutes: int) -> tuple[datetime, datetime]:
    # Distinct, increasing creation times keep "created_at order" equal to "index order".
    created = EPOCH + timedelta(minutes=index * spacing_minutes, seconds=rng.randrange(0, 59))
    updated = created + timedelta(days=rng.randrange(0, 90), minutes=rng.randrange(0, 600))
    return created, updated


def _companies(rng: random.Random, count: int) -> list[SeedCompany]:
    companies = []
    for i in range(count):
        word = COMPANY_WORDS[i % len(COMPANY_WORDS)]
        suffix = COMPANY_SUFFIXES[(i // len(COMPANY_WORDS)) % len(COMPANY_SUFFIXES)]
        name = (
            f"{word} {suffix}"
            if i < len(COMPANY_WORDS) * len(COMPANY_SUFFIXES)
            else (f"{word} {suffix} {i}")
        )
        slug = name.lower().replace(" ", "")
        city, region, postal, country = rng.choice(CITIES)
        created, updated = _stamp(rng, i, 97)
        companies.append(
            SeedCompany(
                index=i,
                name=name,
                domain=f"{slug}.example.com",
                industry=rng.choice(INDUSTRIES),
                description=f"{name} makes things for {rng.choice(INDUSTRIES).lower()} customers.",
                employee_count=rng.choice([5, 12, 40, 120, 450, 1200, 5000]),
                annual_revenue=rng.randrange(1, 500) * 100_000,
                phone=f"+1-555-{rng.randrange(1000, 9999)}",
                street=f"{rng.randrange(1, 300)} {rng.choice(STREETS)}",
                city=city,
                region=region,
                postal_code=postal,
                country=country,
                tags=sorted(rng.sample(TAGS, rng.randrange(0, 3))),
                created_at=created,
                updated_at=updated,
            )
        )
    return companies


def _contacts(rng: random.Random, count: int, companies: int) -> list[SeedContact]:
    contacts = []
    for i in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        handle = f"{first}.{last}".lower().replace(" ", "").replace("-", "")
        # Every tenth contact has no company, so "no company" paths are exercised.
        company = None if (i % 10 == 9 or companies == 0) else rng.randrange(companies)
        city, region, postal, country = rng.choice(CITIES)
        created, updated = _stamp(rng, i, 31)
        contacts.append(
            SeedContact(
                index=i,
                first_name=first,
                last_name=last,
                email=f"{handle}.{i}@example.org",
                phone=None if i % 7 == 3 else f"+1-555-{rng.randrange(1000, 9999)}",
                title=rng.choice(TITLES),
                company=company,
                street=f"{rng.randrange(1, 300)} {rng.choice(STREETS)}",
                city=city,
                region=region,
                postal_code=postal,
                country=country,
                status=rng.choice(CONTACT_STATUSES),
                tags=sorted(rng.sample(TAGS, rng.randrange(0, 3))),
                linkedin_url=f"https://www.linkedin.com/in/{handle}-{i}",
                created_at=created,
                updated_at=updated,
                custom_fields={"source": rng.choice(["web", "event", "referral", "import"])},
            )
        )
    return contacts


def _deals(rng: random.Random, count: int, companies: int, contacts: int) -> list[SeedDeal]:
    deals = []
    for i in range(count):
        stage = rng.choice(DEAL_STAGES)
        status = {"Won": "won", "Lost": "lost"}.get(stage, "open")
        probability = {"won": 1.0, "lost": 0.0}.get(status, rng.choice([0.1, 0.25, 0.5, 0.75]))
        created, updated = _stamp(rng, i, 61)
        company = rng.randrange(companies) if companies else None
        linked = sorted(rng.sample(range(contacts), min(contacts, rng.randrange(1, 4))))
        deals.append(
            SeedDeal(
                index=i,
                name=f"Deal {i}: {rng.choice(NOTE_TOPICS)} {rng.choice(COMPANY_SUFFIXES)}",
                amount=round(rng.randrange(500, 250_000) + rng.randrange(0, 100) / 100, 2),
                currency=rng.choice(CURRENCIES),
                stage=stage,
                status=status,
                probability=probability,
                close_date=(created + timedelta(days=rng.randrange(10, 200))).date(),
                company=company,
                contacts=linked,
                created_at=created,
                updated_at=updated,
            )
        )
    return deals


def _notes(
    rng: random.Random, count: int, companies: int, contacts: int, deals: int
) -> list[SeedNote]:
    kinds = [
        (k, n) for k, n in (("contact", contacts), ("company", companies), ("deal", deals)) if n
    ]
    notes = []
    for i in range(count):
        kind, size = kinds[i % len(kinds)] if kinds else ("contact", 0)
        topic = rng.choice(NOTE_TOPICS)
        created, _ = _stamp(rng, i, 43)
        notes.append(
            SeedNote(
                index=i,
                title=f"{topic} #{i}",
                body=f"{topic}: discussed next steps and {rng.choice(TAGS)} options.",
                author=rng.choice(AUTHORS),
                target_kind=kind,
                target=rng.randrange(size) if size else 0,
                created_at=created,
            )
        )
    return notes


def build_world(
    seed: int = DEFAULT_SEED,
    *,
    companies: int = 200,
    contacts: int = 1000,
    deals: int = 300,
    notes: int = 500,
) -> SeedWorld:
    """The same world for the same arguments, on every machine."""
    rng = random.Random(seed)
    world_companies = _companies(rng, companies)
    world_contacts = _contacts(rng, contacts, companies)
    world_deals = _deals(rng, deals, companies, contacts)
    world_notes = _notes(rng, notes, companies, contacts, deals)
    return SeedWorld(world_companies, world_contacts, world_deals, world_notes)
