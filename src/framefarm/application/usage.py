"""Plans, credits and usage: what a tenant may render, what it costs, and what it used.

- A **plan** (:class:`Plan`, stored as JSON on the tenant) holds limits (concurrent jobs,
  output minutes per calendar month, storage bytes, maximum resolution) and pricing
  (credits per output second, optionally by resolution tier).
- A **credit balance** (None: not metered) changes only through the ledger
  (``repos/ledger.py``): a render **reserves** its estimate when it is queued (the job's
  transaction: :func:`reserve`), and when it finishes it is **settled** (succeeded) or
  **refunded** (cancelled, failed) in the transaction that finishes it (:func:`settle`).
- The rule: a job costs ``ceil(frames * rate / fps)`` credits, ``rate`` the plan's
  credits per second for the output's size when it was queued. It is charged for the
  frames it made (the frames of its succeeded render chunks, all of them for a succeeded
  job) and never more than it reserved; the rest is refunded.

:func:`reserve` and :func:`settle` run inside :class:`~framefarm.application.queue.Queue`'s
transactions; :class:`Usage` is what the routes call.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Connection

from framefarm.db.database import Database
from framefarm.document.models import SIZE_PRESETS
from framefarm.queue.errors import (
    Conflict,
    InsufficientCredits,
    OverPlanResolution,
    QuotaExceeded,
    StorageFull,
)
from framefarm.queue.states import JobState
from framefarm.records import Job, JobUsage, LedgerEntry, UsageDay
from framefarm.repos import exports, ledger
from framefarm.repos import usage as usage_rows

MAX_RANGE_DAYS = 366


@dataclasses.dataclass(frozen=True)
class Plan:
    """A tenant's limits and prices; None: no limit (the server's default for concurrent
    jobs). Resolutions are size presets ("1080p"): an output is within one when its
    shorter side is at most the preset's (1920x1080 and 1080x1920 are both 1080p)."""

    max_concurrent_jobs: int | None = None
    output_minutes_per_month: float | None = None
    storage_bytes: int | None = None
    max_resolution: str | None = None
    credits_per_second: float = 0.0
    # size preset -> credits per second for outputs within it (the smallest tier that
    # holds the output wins; larger outputs pay ``credits_per_second``).
    tiers: Mapping[str, float] = dataclasses.field(default_factory=dict)
    # Code templates (Remotion projects) run a tenant's code on the nodes: off until an
    # admin turns them on for the tenant.
    code_templates: bool = False

    @classmethod
    def load(cls, raw: Mapping[str, Any] | None) -> Plan:
        if not raw:
            return cls()
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"tiers": dict(self.tiers)}

    def rate(self, width: int, height: int) -> float:
        """Credits per output second for this size (0x0, unknown: the base rate)."""
        short = min(width, height)
        if short > 0:
            for preset, rate in sorted(self.tiers.items(), key=lambda kv: SIZE_PRESETS[kv[0]]):
                if short <= SIZE_PRESETS[preset]:
                    return float(rate)
        return float(self.credits_per_second)

    def check_resolution(self, width: int, height: int) -> None:
        if self.max_resolution is None or min(width, height) <= 0:
            return
        limit = SIZE_PRESETS[self.max_resolution]
        if min(width, height) > limit:
            raise OverPlanResolution(
                f"output {width}x{height} is over the plan's maximum resolution "
                f"{self.max_resolution} (shorter side at most {limit} pixels)",
                {"width": width, "height": height, "max_resolution": self.max_resolution})


def price(frames: int, fps: int, rate: float) -> int:
    """Credits for ``frames`` at ``rate`` credits per second: whole credits, rounded up
    (the epsilon keeps 3.0000000001 at 3)."""
    if frames <= 0 or rate <= 0 or fps <= 0:
        return 0
    return math.ceil(frames * rate / fps - 1e-9)


def seconds(frames: int, fps: int) -> float:
    """Output seconds of ``frames`` (0 while the rate is unknown: a code template's job
    before a node prepared it)."""
    return frames / fps if fps > 0 else 0.0


def month_of(day: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day of the calendar month of ``day``."""
    first = day.replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    return first, following - dt.timedelta(days=1)


def estimate(width: int, height: int) -> dict[str, int]:
    """What a job's columns carry for its reservation besides its frames and fps: the
    output's size, which picks the price tier and is checked against the plan."""
    return {"width": width, "height": height}


# -- in the queue's transactions ----------------------------------------------------------------


def reserve(conn: Connection, row: Mapping[str, Any], size: Mapping[str, int] | None, *,
            now: dt.datetime) -> int:
    """Check the job against its tenant's plan and reserve its credits, in the job's
    transaction with the tenant's row locked; write its usage row. Returns the credits
    reserved. Refusals: OverPlanResolution, QuotaExceeded, InsufficientCredits."""
    tenant_id, job_id = row["tenant_id"], row["id"]
    account = ledger.lock_tenant(conn, tenant_id)
    plan = Plan.load(account.plan)
    width, height = (int((size or {}).get("width", 0)), int((size or {}).get("height", 0)))
    frames, fps = int(row["frames_total"]), int(row["fps"])
    today = now.astimezone(dt.UTC).date()
    rate, credits = _afford(conn, tenant_id, plan, account.balance, frames=frames, fps=fps,
                            width=width, height=height, today=today)
    usage_rows.insert(conn, dict(job_id=job_id, tenant_id=tenant_id, day=today, width=width,
                                 height=height, fps=fps, frames_estimated=frames,
                                 credits_per_second=rate, credits_reserved=credits))
    if credits:
        ledger.apply(conn, tenant_id, -credits, "reserve", now=now, job_id=job_id,
                     batch_id=row.get("batch_id"),
                     note=f"{frames} frames at {rate:g} credits per second")
    return credits


def _afford(conn: Connection, tenant_id: str, plan: Plan, balance: int | None, *,
            frames: int, fps: int, width: int, height: int,
            today: dt.date) -> tuple[float, int]:
    """The plan's checks of a render (resolution, this month's output) and its price:
    (credits per second, credits to reserve); refused when the balance is short."""
    plan.check_resolution(width, height)
    if plan.output_minutes_per_month is not None:
        first, last = month_of(today)
        used = usage_rows.output_seconds_between(conn, tenant_id, first, last)
        limit = plan.output_minutes_per_month * 60
        needed = seconds(frames, fps)
        if used + needed > limit + 1e-9:
            raise QuotaExceeded(
                f"this render's {needed:.1f} s would take this month's output to "
                f"{(used + needed) / 60:.2f} minutes; the plan allows "
                f"{plan.output_minutes_per_month:g} (used {used / 60:.2f})",
                {"used_minutes": round(used / 60, 3), "needed_minutes": round(needed / 60, 3),
                 "limit_minutes": plan.output_minutes_per_month})
    rate = plan.rate(width, height)
    credits = price(frames, fps, rate) if balance is not None else 0
    if balance is not None and credits > balance:
        raise InsufficientCredits(
            f"this render needs {credits} credits ({seconds(frames, fps):.2f} s at {rate:g} "
            f"credits per second); the balance is {balance}",
            {"needed": credits, "balance": balance, "short": credits - balance,
             "credits_per_second": rate})
    return rate, credits


def reserve_prepared(conn: Connection, job: Job, *, frames: int, fps: int, width: int,
                     height: int, now: dt.datetime) -> int:
    """A code template's reservation, made once its prepare task found its length and
    size (it reserved nothing when queued), in the transaction that plans its tasks: the
    same checks and price as :func:`reserve`. Returns the credits reserved."""
    account = ledger.lock_tenant(conn, job.tenant_id)
    rate, credits = _afford(conn, job.tenant_id, Plan.load(account.plan), account.balance,
                            frames=frames, fps=fps, width=width, height=height,
                            today=now.astimezone(dt.UTC).date())
    usage_rows.prepared(conn, job.id, width=width, height=height, fps=fps, frames=frames,
                        credits_per_second=rate, credits_reserved=credits)
    if credits:
        ledger.apply(conn, job.tenant_id, -credits, "reserve", now=now, job_id=job.id,
                     batch_id=job.batch_id,
                     note=f"prepared: {frames} frames at {rate:g} credits per second")
    return credits


def settle(conn: Connection, job: Job, *, now: dt.datetime) -> None:
    """The finished job's charge and refund, once, in the transaction that finished it:
    charged for the frames it made (at most what it reserved), the rest refunded. A
    ledger row says so when credits were reserved (kind settle for a succeeded job,
    refund for a cancelled or failed one)."""
    found = usage_rows.get(conn, job.id)
    if found is None or found.settled_at is not None:
        return  # queued before usage was recorded, or settled already
    frames = usage_rows.rendered_frames(conn, job.id)
    fps = found.fps or job.fps  # a code template's rate is known once it was prepared
    reserved = found.credits_reserved
    charged = min(reserved, price(frames, fps, found.credits_per_second))
    export = exports.for_jobs(conn, [job.id]).get(job.id)
    if not usage_rows.settle(conn, job.id, frames=frames, output_seconds=seconds(frames, fps),
                             bytes_stored=export.size if export else 0, charged=charged,
                             refunded=reserved - charged, now=now):
        return
    if reserved:
        ledger.lock_tenant(conn, job.tenant_id)
        kind = "settle" if job.state == JobState.SUCCEEDED else "refund"
        ledger.apply(conn, job.tenant_id, reserved - charged, kind, now=now, job_id=job.id,
                     batch_id=job.batch_id,
                     note=f"{job.state}: charged {charged} of {reserved} reserved for "
                          f"{frames} of {found.frames_estimated} frames")


def check_storage(conn: Connection, tenant_id: str, name: str, adding: int, *,
                  now: dt.datetime, replacing: tuple[str, str] | None = None,
                  lock: bool = False) -> None:
    """Refuse (StorageFull) an upload of ``adding`` bytes that would take the tenant over
    its plan's storage: its assets and unexpired exports. ``lock``: hold the tenant's row
    (the check that goes with writing the asset)."""
    account = ledger.lock_tenant(conn, tenant_id) if lock else ledger.account(conn, tenant_id)
    limit = Plan.load(account.plan).storage_bytes
    if limit is None:
        return
    used = usage_rows.storage_used(conn, tenant_id, now=now, besides=replacing)
    if used + adding > limit:
        raise StorageFull(
            f"uploading {name} ({adding} bytes) would take storage to {used + adding} "
            f"bytes; the plan allows {limit} (used {used}): delete assets or exports first",
            {"name": name, "adding": adding, "used": used, "limit": limit})


# -- what the routes call -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Report:
    """A tenant's usage over days, with its balance and plan."""

    tenant_id: str
    first: dt.date
    last: dt.date
    days: list[UsageDay]
    balance: int | None
    plan: Plan


def parse_range(first: dt.date | str | None, last: dt.date | str | None, *,
                today: dt.date) -> tuple[dt.date, dt.date]:
    """``from`` and ``to`` (dates or YYYY-MM-DD, both included; default: this month so
    far), at most MAX_RANGE_DAYS apart. ValueError says which is wrong."""
    def day(value: dt.date | str | None, name: str, default: dt.date) -> dt.date:
        if value is None:
            return default
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{name}: expected a date as YYYY-MM-DD, got {value!r}") from None

    start = day(first, "from", today.replace(day=1))
    end = day(last, "to", today)
    if end < start:
        raise ValueError(f"to: {end} is before from ({start})")
    if (end - start).days >= MAX_RANGE_DAYS:
        raise ValueError(f"to: from {start} to {end} is over {MAX_RANGE_DAYS} days; ask "
                         "for less")
    return start, end


@dataclasses.dataclass
class Usage:
    """On the database alone (like Accounts), so the admin command line uses it too."""

    db: Database

    def today(self) -> dt.date:
        return self.db.now().astimezone(dt.UTC).date()

    def report(self, tenant_id: str, first: dt.date, last: dt.date) -> Report:
        with self.db.read() as conn:
            account = ledger.account(conn, tenant_id)
            found = usage_rows.days(conn, first, last, tenant_id)
        return Report(tenant_id, first, last, found, account.balance, Plan.load(account.plan))

    def all_days(self, first: dt.date, last: dt.date,
                 tenant_id: str | None = None) -> list[UsageDay]:
        with self.db.read() as conn:
            if tenant_id is not None:
                ledger.account(conn, tenant_id)  # 404 for no such tenant
            return usage_rows.days(conn, first, last, tenant_id)

    def job_usage(self, job_ids: list[str]) -> dict[str, JobUsage]:
        with self.db.read() as conn:
            return usage_rows.for_jobs(conn, job_ids)

    def set_plan(self, tenant_id: str, plan: Plan | None) -> Plan:
        with self.db.tx() as conn:
            ledger.set_plan(conn, tenant_id, plan.as_json() if plan else None)
        return plan or Plan()

    def account(self, tenant_id: str) -> tuple[Plan, int | None]:
        with self.db.read() as conn:
            found = ledger.account(conn, tenant_id)
        return Plan.load(found.plan), found.balance

    def add_credits(self, tenant_id: str, amount: int, note: str | None) -> LedgerEntry:
        """A grant (amount > 0) or an adjustment (amount < 0, never below zero); the
        first one turns credit metering on for the tenant."""
        if amount == 0:
            raise ValueError("amount: give a non-zero number of credits")
        with self.db.tx() as conn:
            balance = ledger.lock_tenant(conn, tenant_id).balance or 0
            if balance + amount < 0:
                raise Conflict(f"the balance is {balance}; taking {-amount} would make it "
                               "negative")
            return ledger.apply(conn, tenant_id, amount, "grant" if amount > 0 else "adjust",
                                now=self.db.now(), note=note)

    def ledger(self, tenant_id: str, *, limit: int = 100,
               before: int | None = None) -> list[LedgerEntry]:
        with self.db.read() as conn:
            ledger.account(conn, tenant_id)  # 404 for no such tenant
            return ledger.entries(conn, tenant_id, limit=limit, before=before)

    def ledger_total(self, tenant_id: str) -> tuple[int | None, int]:
        """(balance, sum of the ledger), read together: always equal (0 for None)."""
        with self.db.read() as conn:
            return ledger.account(conn, tenant_id).balance, ledger.total(conn, tenant_id)


# -- how they are shown -------------------------------------------------------------------------


def day_view(row: UsageDay) -> dict[str, Any]:
    return {"tenant_id": row.tenant_id, "day": row.day.isoformat(), "jobs": row.jobs,
            "frames": row.frames, "output_seconds": round(row.output_seconds, 3),
            "cpu_seconds": {"render": round(row.cpu_render, 3),
                            "audio": round(row.cpu_audio, 3),
                            "assemble": round(row.cpu_assemble, 3),
                            "snapshot": round(row.cpu_snapshot, 3)},
            "bytes_stored": row.bytes_stored, "credits_charged": row.credits_charged,
            "credits_refunded": row.credits_refunded}


def totals(tenant_id: str, day: dt.date, rows: list[UsageDay]) -> UsageDay:
    """The sum of ``rows`` as one row (dated ``day``, the range's first)."""
    def total(name: str) -> Any:
        return sum(getattr(r, name) for r in rows)

    return UsageDay(tenant_id, day, total("jobs"), total("frames"), total("output_seconds"),
                    total("cpu_render"), total("cpu_audio"), total("cpu_assemble"),
                    total("cpu_snapshot"), total("bytes_stored"), total("credits_charged"),
                    total("credits_refunded"))


def report_view(found: Report) -> dict[str, Any]:
    return {"tenant_id": found.tenant_id, "from": found.first.isoformat(),
            "to": found.last.isoformat(), "days": [day_view(d) for d in found.days],
            "totals": day_view(totals(found.tenant_id, found.first, found.days)),
            "balance": found.balance, "plan": found.plan.as_json()}


def entry_view(row: LedgerEntry) -> dict[str, Any]:
    return {"id": row.id, "tenant_id": row.tenant_id, "at": row.at.isoformat(),
            "amount": row.amount, "kind": row.kind, "job_id": row.job_id,
            "batch_id": row.batch_id, "balance_after": row.balance_after, "note": row.note}
