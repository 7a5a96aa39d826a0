"""``framefarm admin``: tenants, API keys, plans, credits and usage, on the configured
database directly (FRAMEFARM_DATABASE_URL or the data dir's SQLite). A refusal of the
service is printed and exits 1."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from framefarm.document import choices

if TYPE_CHECKING:
    from framefarm.application.accounts import Accounts
    from framefarm.application.usage import Usage

admin_app = typer.Typer(help="Tenants, API keys, plans, credits and usage (talks to the "
                        "database directly).", no_args_is_help=True)
err = Console(stderr=True, soft_wrap=True)
out = Console()

DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="default: "
                                                 "FRAMEFARM_DATA_DIR or ./framefarm-data")]


def _db_url(data_dir: Path | None) -> str:
    from framefarm.settings import Settings

    return (Settings(data_dir=data_dir) if data_dir is not None else Settings()).db_url


@contextlib.contextmanager
def _service(data_dir: Path | None) -> Iterator[tuple[Accounts, Usage]]:
    """The tenants, keys and usage of the configured database; a refusal is printed,
    exit 1."""
    from framefarm.application.accounts import Accounts
    from framefarm.application.usage import Usage
    from framefarm.db.database import open_database
    from framefarm.queue.errors import ServiceError

    db = open_database(_db_url(data_dir))
    try:
        yield Accounts(db), Usage(db)
    except ServiceError as exc:
        err.print(f"[bold red]failed:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    except ValueError as exc:
        err.print(f"[bold red]invalid:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    finally:
        db.close()


@contextlib.contextmanager
def _accounts(data_dir: Path | None) -> Iterator[Accounts]:
    with _service(data_dir) as (accounts, _):
        yield accounts


# -- tenants and keys ---------------------------------------------------------------------------


@admin_app.command("create-tenant")
def create_tenant(
    name: Annotated[str, typer.Argument(help="the tenant's unique name")],
    admin: Annotated[bool, typer.Option(help="give its key admin rights")] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Create a tenant and print its API key (shown once).

    Example: framefarm admin create-tenant acme
    """
    with _accounts(data_dir) as accounts:
        tenant_id, key_id, key = accounts.create_tenant_with_key(name, admin=admin)
    out.print(f"tenant {tenant_id}\napi key {key}\nkey id {key_id}", soft_wrap=True)


@admin_app.command("create-key")
def create_key(
    tenant_id: Annotated[str, typer.Argument(help="the tenant's id")],
    admin: Annotated[bool, typer.Option(help="give the key admin rights")] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Create another API key for a tenant.

    Example: framefarm admin create-key ten_0123456789abcdef
    """
    with _accounts(data_dir) as accounts:
        key_id, key = accounts.add_key(tenant_id, admin=admin)
    out.print(f"api key {key}\nkey id {key_id}", soft_wrap=True)


@admin_app.command("list-keys")
def list_keys(
    tenant_id: Annotated[str, typer.Argument(help="the tenant's id")],
    data_dir: DataDirOpt = None,
) -> None:
    """List a tenant's API keys, one a line: id, active or revoked, admin or tenant,
    created, revoked (the keys themselves are never shown).

    Example: framefarm admin list-keys ten_0123456789abcdef
    """
    with _accounts(data_dir) as accounts:
        keys = accounts.keys(tenant_id)
    for key in keys:
        revoked = key.revoked_at.isoformat() if key.revoked_at else "-"
        out.print(f"{key.id}  {'revoked' if key.revoked_at else 'active'}  "
                  f"{'admin' if key.admin else 'tenant'}  {key.created_at.isoformat()}  "
                  f"{revoked}", soft_wrap=True, highlight=False)


@admin_app.command("revoke-key")
def revoke_key(
    key_id: Annotated[str, typer.Argument(help="the key's id (see list-keys)")],
    data_dir: DataDirOpt = None,
) -> None:
    """Revoke an API key: the API refuses it (401) from the next request on.

    Example: framefarm admin revoke-key key_0123456789abcdef
    """
    with _accounts(data_dir) as accounts:
        key = accounts.revoke_key(key_id)
    out.print(f"revoked {key.id} of tenant {key.tenant_id}", soft_wrap=True)


@admin_app.command("tenants")
def tenants(data_dir: DataDirOpt = None) -> None:
    """List the tenants with their credit balance and this month's output minutes (of
    their plan's).

    Example: framefarm admin tenants
    """
    from framefarm.application.usage import Plan, month_of

    with _service(data_dir) as (accounts, usage):
        first, last = month_of(usage.today())
        found = accounts.list_tenants()
        used: dict[str, float] = {}
        for day in usage.all_days(first, last):
            used[day.tenant_id] = used.get(day.tenant_id, 0.0) + day.output_seconds
    table = Table("id", "name", "balance", "output this month", "plan limit")
    for tenant in found:
        limit = Plan.load(tenant.plan).output_minutes_per_month
        table.add_row(tenant.id, tenant.name,
                      "-" if tenant.credit_balance is None else str(tenant.credit_balance),
                      f"{used.get(tenant.id, 0.0) / 60:.2f} min",
                      "-" if limit is None else f"{limit:g} min")
    out.print(table)


# -- plans, credits, usage ----------------------------------------------------------------------


def _tiers(values: list[str]) -> dict[str, float]:
    """'720p=1' ... -> {"720p": 1.0}."""
    presets = choices.SizePreset.__args__  # type: ignore[attr-defined]
    found: dict[str, float] = {}
    for value in values:
        preset, _, rate = value.partition("=")
        if preset not in presets:
            raise ValueError(f"--tier {value!r}: expected PRESET=CREDITS, PRESET one of "
                             f"{', '.join(presets)}")
        try:
            found[preset] = float(rate)
        except ValueError:
            raise ValueError(f"--tier {value!r}: {rate!r} is not a number") from None
        if found[preset] < 0:
            raise ValueError(f"--tier {value!r}: credits per second cannot be negative")
    return found


@admin_app.command("plan")
def plan(
    tenant_id: Annotated[str, typer.Argument(help="the tenant's id")],
    max_concurrent_jobs: Annotated[int | None, typer.Option(min=1)] = None,
    output_minutes: Annotated[float | None, typer.Option(
        min=0, help="output minutes per calendar month")] = None,
    storage_bytes: Annotated[int | None, typer.Option(min=0, help="assets and exports kept")]
    = None,
    max_resolution: Annotated[choices.SizePreset | None, typer.Option(
        help="the largest output (its shorter side)")] = None,
    credits_per_second: Annotated[float | None, typer.Option(min=0)] = None,
    tier: Annotated[list[str] | None, typer.Option(
        help="PRESET=CREDITS: credits per second for outputs within PRESET (repeat it)")]
    = None,
    code_templates: Annotated[bool | None, typer.Option(
        "--code-templates/--no-code-templates",
        help="let the tenant render code templates (Remotion projects run its code)")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="start from an empty plan")] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Show a tenant's plan, or change the fields given (the others stay).

    Example: framefarm admin plan ten_0123456789abcdef --output-minutes 600
    --max-resolution 1080p --credits-per-second 2 --tier 720p=1
    """
    import dataclasses

    from framefarm.application.usage import Plan

    given: dict[str, Any] = {
        "max_concurrent_jobs": max_concurrent_jobs, "output_minutes_per_month": output_minutes,
        "storage_bytes": storage_bytes, "max_resolution": max_resolution,
        "credits_per_second": credits_per_second, "code_templates": code_templates}
    given = {k: v for k, v in given.items() if v is not None}
    with _service(data_dir) as (_, usage):
        if tier:
            given["tiers"] = _tiers(tier)
        current, balance = usage.account(tenant_id)
        if given or clear:
            current = usage.set_plan(tenant_id, dataclasses.replace(
                Plan() if clear else current, **given))
    for name, value in current.as_json().items():
        out.print(f"{name} {'-' if value is None else value}", highlight=False)
    out.print(f"credit_balance {'-' if balance is None else balance}", highlight=False)


@admin_app.command("credits")
def credits(
    tenant_id: Annotated[str, typer.Argument(help="the tenant's id")],
    add: Annotated[int, typer.Option("--add", help="credits to grant (negative: take back)")],
    note: Annotated[str | None, typer.Option(help="why, kept in the ledger")] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Grant credits to a tenant (the first grant turns credit metering on).

    Example: framefarm admin credits ten_0123456789abcdef --add 5000 --note "March"
    """
    with _service(data_dir) as (_, usage):
        entry = usage.add_credits(tenant_id, add, note)
    out.print(f"{entry.kind} {entry.amount:+d}: balance {entry.balance_after}",
              highlight=False)


@admin_app.command("usage")
def usage_table(
    tenant: Annotated[str | None, typer.Option(help="only this tenant's id")] = None,
    first: Annotated[str | None, typer.Option("--from", help="YYYY-MM-DD (default: the "
                                              "first of this month)")] = None,
    last: Annotated[str | None, typer.Option("--to", help="YYYY-MM-DD, included "
                                             "(default: today)")] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Usage per tenant and UTC day: jobs, frames, output seconds, node CPU-seconds by
    step, bytes of exports, credits charged.

    Example: framefarm admin usage --from 2026-03-01 --to 2026-03-31
    """
    from framefarm.application.usage import parse_range

    with _service(data_dir) as (_, usage):
        start, end = parse_range(first, last, today=usage.today())
        days = usage.all_days(start, end, tenant)
    table = Table("tenant", "day", "jobs", "frames", "output s", "cpu render", "cpu audio",
                  "cpu assemble", "cpu snapshot", "bytes", "credits",
                  title=f"usage {start} .. {end}")
    for d in days:
        table.add_row(d.tenant_id, d.day.isoformat(), str(d.jobs), str(d.frames),
                      f"{d.output_seconds:.2f}", f"{d.cpu_render:.2f}", f"{d.cpu_audio:.2f}",
                      f"{d.cpu_assemble:.2f}", f"{d.cpu_snapshot:.2f}", str(d.bytes_stored),
                      str(d.credits_charged))
    out.print(table)
    if not days:
        out.print(f"no jobs from {start} to {end}", highlight=False)
