"""Generate a demo bucket: organisations, groups, people, their memberships, payments and
group memberships, streamed to the database in batches.

Everything comes from one `random.Random(seed)`, and dates count back from `today`, so a
seed and a day give the same data every time, uids included.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Generic, TypeVar

from fold.demo import vocab

T = TypeVar("T")

Row = tuple[str, str, dict[str, Any], datetime]  # resource type, uid, data, created


class Picker(Generic[T]):
    """Draws from weighted choices with one random number and a bisect."""

    def __init__(self, rng: random.Random, items: Sequence[tuple[T, float]]) -> None:
        self.rng = rng
        self.values = [v for v, _ in items]
        self.cum: list[float] = []
        total = 0.0
        for _, weight in items:
            total += weight
            self.cum.append(total)
        self.total = total

    def __call__(self) -> T:
        return self.values[bisect.bisect_right(self.cum, self.rng.random() * self.total)]


def ranked(names: Sequence[str], offset: int) -> list[tuple[str, float]]:
    """Zipf-like weights: the first names on the list are far more common than the last."""
    return [(name, 1.0 / (i + offset)) for i, name in enumerate(names)]


@dataclass
class DemoPlan:
    people: int = 10_000
    seed: int = 1
    today: date = field(default_factory=date.today)

    @property
    def organisations(self) -> int:
        return max(20, self.people // 40)


class Generator:
    def __init__(self, bucket: str, plan: DemoPlan) -> None:
        self.bucket = bucket
        self.plan = plan
        self.rng = random.Random(plan.seed)
        rng = self.rng
        self.today = plan.today
        self.first_names = {
            "male": (Picker(rng, ranked(vocab.MALE_NAMES, 3)), Picker(rng, vocab.MALE_TITLES)),
            "female": (
                Picker(rng, ranked(vocab.FEMALE_NAMES, 3)),
                Picker(rng, vocab.FEMALE_TITLES),
            ),
            "neutral": (
                Picker(rng, ranked(vocab.NEUTRAL_NAMES, 1)),
                Picker(rng, vocab.NEUTRAL_TITLES),
            ),
        }
        self.gender = Picker(rng, [("female", 51.0), ("male", 47.0), ("neutral", 2.0)])
        self.last = Picker(rng, ranked(vocab.LAST_NAMES, 2))
        self.city = Picker(rng, [(c, c[5]) for c in vocab.CITIES])
        self.domain = Picker(rng, vocab.EMAIL_DOMAINS)
        self.source = Picker(rng, vocab.SOURCES)
        self.mtype = Picker(rng, [((t, a), w) for t, w, a in vocab.MEMBERSHIP_TYPES])
        self.mstatus = Picker(rng, vocab.MEMBERSHIP_STATUS_WEIGHTS)
        self.pmethod = Picker(rng, vocab.PAYMENT_METHODS)
        self.pstatus = Picker(rng, vocab.PAYMENT_STATUSES)
        self.fund = Picker(rng, vocab.FUNDS)
        self.org_kind = Picker(rng, vocab.ORG_KINDS)
        self.role = Picker(rng, vocab.GROUP_ROLES)
        self.emails: set[str] = set()
        # Each postcode's centre: where it was first placed. Loaded as the bucket's postcode
        # table so that `near` rules can name demo postcodes.
        self.postcodes: dict[str, tuple[float, float]] = {}
        self.org_uris: list[str] = []
        self.group_uris: list[str] = []
        self.membership_number = 10000
        self.sequence = 0
        # Uids end about a day before `today`, whatever the size of the load.
        start = datetime.combine(plan.today, datetime.min.time()) - timedelta(days=1)
        self.first_second = int(start.timestamp()) - plan.people * 4

    def uid(self, when: datetime) -> str:
        # Increasing uids, one second apart, as an import stamps them: new rows go to the
        # end of every index, which keeps a million-person load fast. `created` keeps the
        # record's own history.
        self.sequence += 1
        return f"{self.first_second + self.sequence:08x}{self.rng.getrandbits(64):016x}"

    def uri(self, resource_type: str, uid: str) -> str:
        return f"/{self.bucket}/{resource_type}/{uid}/"

    def past(self, max_days: int, min_days: int = 0) -> date:
        # Skewed towards the recent past: most records are young, a few are old.
        fraction = self.rng.random() ** 1.6
        return self.today - timedelta(days=min_days + int(fraction * (max_days - min_days)))

    def stamp(self, day: date) -> datetime:
        return datetime(day.year, day.month, day.day, 9) + timedelta(
            seconds=self.rng.randrange(10 * 3600)
        )

    def address(self) -> tuple[dict[str, Any], dict[str, float]]:
        rng = self.rng
        city, region, areas, lat, lng, _ = self.city()
        area = rng.choice(areas)
        letters = "ABDEFGHJLNPQRSTUWXYZ"
        inward = f"{rng.randrange(1, 10)}{rng.choice(letters)}{rng.choice(letters)}"
        spread = 0.06 if city == "London" else 0.035
        geo = {
            "lat": round(lat + rng.gauss(0, spread), 5),
            "lng": round(lng + rng.gauss(0, spread * 1.6), 5),
        }
        address = {
            "line1": f"{rng.randrange(1, 240)} {rng.choice(vocab.STREET_NAMES)}",
            "locality": city,
            "region": region,
            "postal_code": f"{area} {inward}",
            "country": "United Kingdom",
        }
        if rng.random() < 0.15:
            address["line2"] = f"Flat {rng.randrange(1, 40)}"
        self.postcodes.setdefault(address["postal_code"], (geo["lat"], geo["lng"]))
        return address, geo

    def organisations(self) -> Iterator[Row]:
        rng = self.rng
        for i in range(self.plan.organisations):
            kind = self.org_kind()
            name = f"{rng.choice(vocab.ORG_WORDS)} {rng.choice(vocab.ORG_SUFFIXES)}"
            if i >= len(vocab.ORG_WORDS) * len(vocab.ORG_SUFFIXES) // 2:
                name = f"{name} {i}"
            address, geo = self.address()
            created = self.stamp(self.past(15 * 365))
            uid = self.uid(created)
            self.org_uris.append(self.uri("organisation", uid))
            slug = name.lower().replace(" ", "").replace("'", "")
            data: dict[str, Any] = {
                "name": name,
                "org_type": kind,
                "email": f"info@{slug}.org.uk",
                "address": address,
                "geo": geo,
                "tags": ["partner"] if rng.random() < 0.3 else [],
                "email_opt_out": rng.random() < 0.05,
            }
            if kind == "charity":
                data["registered_number"] = str(1_000_000 + rng.randrange(200_000))
            yield "organisation", uid, data, created

    def groups(self) -> Iterator[Row]:
        for name, kind in vocab.GROUPS:
            created = self.stamp(self.past(10 * 365, 365))
            uid = self.uid(created)
            self.group_uris.append(self.uri("group", uid))
            yield "group", uid, {"name": name, "group_type": kind}, created

    def email(self, first: str, last: str) -> str:
        rng = self.rng
        f, l_ = first.lower(), last.lower().replace("'", "")
        local = rng.choice((f"{f}.{l_}", f"{f}{l_}", f"{f[0]}.{l_}", f"{f}_{l_}", f"{l_}.{f}"))
        candidate = f"{local}@{self.domain()}"
        while candidate in self.emails:
            candidate = f"{local}{rng.randrange(1, 10_000)}@{self.domain()}"
        self.emails.add(candidate)
        return candidate

    def tags(self) -> list[str]:
        return [tag for tag, percent in vocab.TAGS if self.rng.random() * 100 < percent]

    def people(self) -> Iterator[Row]:
        rng = self.rng
        for _ in range(self.plan.people):
            names, titles = self.first_names[self.gender()]
            first, last = names(), self.last()
            joined = self.past(20 * 365)
            created = self.stamp(joined)
            uid = self.uid(created)
            uri = self.uri("person", uid)
            address, geo = self.address()
            data: dict[str, Any] = {"first_name": first, "last_name": last}
            title = titles()
            if title:
                data["title"] = title
            if rng.random() < 0.93:
                data["email"] = self.email(first, last)
            if rng.random() < 0.7:
                data["mobile"] = f"07{rng.randrange(100_000_000, 999_999_999)}"
            if rng.random() < 0.8:
                age_days = int(365 * (18 + 77 * rng.betavariate(2.2, 2.0)))
                data["date_of_birth"] = (self.today - timedelta(days=age_days)).isoformat()
            data.update(
                address=address,
                geo=geo,
                tags=self.tags(),
                email_opt_out=rng.random() < 0.12,
                sms_opt_out=rng.random() < 0.2,
                post_opt_out=rng.random() < 0.08,
                joined=joined.isoformat(),
                source=self.source(),
            )
            if self.org_uris and rng.random() < 0.06:
                data["organisation"] = rng.choice(self.org_uris)
            related = list(self.related(uri, joined))
            statuses = [d["status"] for t, _, d, _ in related if t == "membership"]
            if statuses:
                data["membership_status"] = statuses[-1]
            yield "person", uid, data, created
            yield from related

    def related(self, contact: str, joined: date) -> Iterator[Row]:
        rng = self.rng
        roll = rng.random()
        memberships = 0 if roll < 0.55 else 1 if roll < 0.9 else 2
        start = joined
        for index in range(memberships):
            (kind, amount) = self.mtype()
            status = self.mstatus() if index == memberships - 1 else "expired"
            end = start + timedelta(days=365 * (50 if kind == "Life" else 1))
            created = self.stamp(start)
            self.membership_number += 1
            yield (
                "membership",
                self.uid(created),
                {
                    "contact": contact,
                    "membership_number": f"M{self.membership_number}",
                    "membership_type": kind,
                    "status": status,
                    "start_date": start.isoformat(),
                    "end_date": end.isoformat(),
                    "amount": amount,
                    "currency": "GBP",
                    "payment_method": self.pmethod(),
                    "auto_renew": rng.random() < 0.6,
                },
                created,
            )
            start = min(end, self.today)
        payments = min(12, int(rng.expovariate(0.8)))
        for _ in range(payments):
            day = self.past(5 * 365)
            created = self.stamp(day)
            amount = round(min(5000.0, rng.lognormvariate(3.0, 0.9)), 2)
            yield (
                "payment",
                self.uid(created),
                {
                    "contact": contact,
                    "amount": amount,
                    "currency": "GBP",
                    "date": day.isoformat(),
                    "method": self.pmethod(),
                    "status": self.pstatus(),
                    "fund": self.fund(),
                    "gift_aid": rng.random() < 0.4,
                    # The uid's counting part keeps references unique (the random part
                    # alone collided in one of 500 buckets).
                    "reference": f"PAY-{_reference(self.uid(created))}",
                },
                created,
            )
        if self.group_uris and rng.random() < 0.22:
            for group in rng.sample(self.group_uris, k=1 + int(rng.random() < 0.3)):
                day = self.past(8 * 365)
                created = self.stamp(day)
                yield (
                    "group_member",
                    self.uid(created),
                    {
                        "group": group,
                        "contact": contact,
                        "role": self.role(),
                        "joined": day.isoformat(),
                    },
                    created,
                )

    def rows(self) -> Iterator[Row]:
        yield from self.organisations()
        yield from self.groups()
        yield from self.people()


def generate(bucket: str, plan: DemoPlan) -> Iterator[Row]:
    return Generator(bucket, plan).rows()


def _reference(uid: str) -> str:
    return f"{uid[:8]}{uid[-4:]}".upper()
