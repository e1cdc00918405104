"""The `connector` command."""

from __future__ import annotations

import errno
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click
from rq import SimpleWorker
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from adapters.erp import ErpError
from adapters.storefront import StorefrontError
from connector.base.audit import audit
from connector.base.crypto import SecretsError
from connector.base.logredact import install_log_redaction
from connector.base.migrate import upgrade
from connector.base.models import InboxEvent, Store
from connector.base.observability import use_json_logs
from connector.base.queue import BurstWorker, RedisJobQueue
from connector.base.runtime import Runtime, install
from connector.base.settings import Settings
from connector.base.stock import read_erp_stock
from connector.demo import SAMPLE_ORDER, run_demo
from connector.jobs import schedules
from connector.orders.compliance import erase_customer
from connector.orders.drains import sweep as run_sweep
from connector.orders.operations import RETRYABLE_STATES, STATUSES, retry_events
from connector.setup import shopify_connect
from connector.setup.config_io import ConfigError, dump_config, load_config
from connector.setup.woo_connect import LOCAL_HOSTS, ConnectError, begin
from connector.sync.erp_refunds import RefundReport, sync_refunds
from connector.sync.erp_refunds import retry_failed as reset_failed_refunds
from connector.sync.fulfillment import ShipmentReport, sync_shipments
from connector.sync.fulfillment import retry_failed as reset_failed
from connector.sync.inventory import sync_inventory
from connector.sync.receipts import ReceiptReport, sync_receipts
from connector.sync.receipts import retry_failed as reset_failed_receipts
from connector.sync.reconcile import backfill as run_backfill
from connector.sync.reconcile import prune as run_prune
from connector.sync.reconcile import reconcile_orders, throttled
from connector.sync.undelivered import UndeliveredReport, sync_undelivered
from connector.sync.undelivered import retry_failed as reset_failed_undelivered
from connector.web.auth import ROLES, AccountError, add_user
from platforms.signatures import sign

if TYPE_CHECKING:  # the commands import what they use when they run: a quick start for the others
    from connector.base.queue import JobQueue, RedisJobQueue
    from connector.base.runtime import Runtime


def _runtime(queue: JobQueue | None = None, *, worker: bool = False) -> Runtime:

    return install(Runtime.from_settings(Settings.from_env(), queue=queue, worker=worker))


def _serving_runtime(*, worker: bool = False) -> Runtime:
    """The runtime of a long-running process (web, worker, scheduler): it refuses to start on a key that
    cannot open the stored secrets, instead of failing every webhook and page later."""

    try:
        rt = _runtime(worker=worker)
        problem = rt.key_problem()
    except SecretsError as exc:
        problem = str(exc)
    if problem:
        _fail(f"not starting: {problem}")
    return rt


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


class _Commands(click.Group):
    """The command group: a database that is not there, or not the connector's yet, is one line saying
    what to do, not a traceback (a newcomer's first `connector events` in another directory)."""

    def invoke(self, ctx: click.Context) -> object:
        from sqlalchemy.exc import OperationalError, ProgrammingError

        try:
            return super().invoke(ctx)
        except (OperationalError, ProgrammingError) as exc:
            _fail(_database_problem(exc))
        except SecretsError as exc:  # e.g. no CONNECTOR_ENCRYPTION_KEY beside a PostgreSQL DATABASE_URL
            _fail(str(exc))


def _database_problem(exc: Exception) -> str:
    url = Settings.from_env().database_url
    text = str(getattr(exc, "orig", exc))
    if "no such table" in text or "does not exist" in text and "relation" in text:
        return (
            f"the database {url} has no connector tables yet: run `connector db upgrade` (`connector run` "
            "does it itself), or point DATABASE_URL at the connector's database"
            + (
                ". The embedded one is instance/connector.db in the directory a command runs in"
                if "sqlite" in url
                else ""
            )
        )
    return f"cannot use the database {url}: {text.strip().splitlines()[0]}"


@click.group(cls=_Commands)
@click.option("--log-level", default="INFO", show_default=True)
def main(log_level: str) -> None:
    """Storefront ⇄ back-office connector."""

    install_log_redaction()  # before anything logs: every logger, every handler, every format
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if Settings.from_env().log_format == "json":
        use_json_logs()


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply Alembic migrations to DATABASE_URL."""

    settings = Settings.from_env()
    upgrade(settings.database_url, revision)
    click.echo(f"database at {revision}: {settings.database_url.split('@')[-1]}")


@main.group()
def config() -> None:
    """Stores, ERP connection and mappings as YAML."""


@config.command("load", short_help="Load stores, ERP and mappings from a YAML file.")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def config_load(path: Path) -> None:
    """Create or update stores, the ERP connection and mapping tables from a YAML file.

    A mapping kind listed under `mappings:` replaces that kind's rows (an empty list clears it); kinds
    not listed are left as they are. Nothing is written when anything in the file is wrong.
    """

    rt = _runtime()
    try:
        counts = load_config(rt, path.read_text())
    except ConfigError as exc:
        _fail(f"{path}: {exc}")
    audit(rt, _cli_actor(), "config.load", str(path), counts)
    click.echo(
        f"loaded {path}: {counts['stores_created']} store(s) created, {counts['stores_updated']} updated, "
        f"ERP {'configured' if counts['erp'] else 'unchanged'}, {counts['mappings']} mapping row(s)"
    )


@config.command("dump", short_help="Print the configuration as YAML, secrets masked.")
def config_dump() -> None:
    """Print the configuration (stores, ERP, every mapping table) as YAML, secrets masked."""

    click.echo(dump_config(_runtime()), nl=False)


@main.group()
def user() -> None:
    """People who sign in to /config and /console."""


@user.command("add", short_help="Add a user, or reset their password and role.")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), default="support", show_default=True)
@click.option(
    "--password",
    envvar="CONNECTOR_NEW_PASSWORD",
    default=None,
    help="Taken from CONNECTOR_NEW_PASSWORD, else asked for (never echoed).",
)
def user_add(email: str, role: str, password: str | None) -> None:
    """Add a user, or reset an existing user's password and role (signs out their sessions)."""

    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    rt = _runtime()
    try:
        add_user(rt, email, password, role)
    except AccountError as exc:
        _fail(str(exc))
    audit(rt, _cli_actor(), "user.add", email.strip().lower(), {"role": role})
    click.echo(f"{email.strip().lower()} can sign in as {role}")


@main.command(short_help="Print a new key for CONNECTOR_ENCRYPTION_KEY.")
def keygen() -> None:
    """Print a new random key for CONNECTOR_ENCRYPTION_KEY (better than a passphrase)."""
    from cryptography.fernet import Fernet

    click.echo(Fernet.generate_key().decode())


@main.group(short_help="Privacy requests for a store's customer.")
def customer() -> None:
    """Privacy requests for a store's customer (WooCommerce has no privacy webhooks)."""


@customer.command("erase", short_help="Erase what is held about one customer.")
@click.argument("store")
@click.option("--email", default=None, help="The customer's email (matched exactly, case and spaces ignored).")
@click.option("--phone", default=None, help="The customer's phone (matched on its digits).")
@click.option("--account", default=None, help="The store's customer id.")
def customer_erase(store: str, email: str | None, phone: str | None, account: str | None) -> None:
    """Erase what the connector holds about one customer of STORE: their stored webhooks are redacted,
    their customer links removed, the file-drop ledger forgets them. The ERP's records stay (the merchant's)."""

    try:
        result = erase_customer(_runtime(), store, email=email, phone=phone, account=account, actor=_cli_actor())
    except (ValueError, LookupError) as exc:
        _fail(str(exc))
    click.echo(f"{store}: {result['note']}")


def _cli_actor() -> str:
    import getpass

    return f"cli:{getpass.getuser()}"


@main.group()
def store() -> None:
    """Connecting stores."""


@store.command("connect-woocommerce", short_help="Print the link that connects a WooCommerce store.")
@click.argument("slug")
@click.argument("url")
def store_connect_woocommerce(slug: str, url: str) -> None:
    """Print the link that connects the WooCommerce store at URL as SLUG (a new store, or new keys for one):
    open it in a browser signed in to the store's WordPress and approve. It works once, for 30 minutes."""

    try:
        link = begin(_runtime(), slug, url, _cli_actor())
    except ConnectError as exc:
        _fail(str(exc))
    click.echo(
        "Open this link in a browser signed in to the store's WordPress and approve (valid once, for 30 minutes):"
    )
    click.echo(link)


@store.command("connect-shopify", short_help="Connect a Shopify store with its app's keys.")
@click.argument("slug")
@click.argument("shop")
@click.option("--client-id", required=True, help="The app's client ID (Dev Dashboard → the app → Settings).")
@click.option(
    "--client-secret",
    envvar="SHOPIFY_CLIENT_SECRET",
    prompt=True,
    hide_input=True,
    help="The app's client secret; asked for when not given (env SHOPIFY_CLIENT_SECRET).",
)
@click.option(
    "--install-link",
    is_flag=True,
    help="Print the install link instead, for an app of another organisation than the store's.",
)
@click.option("--api-base-url", hidden=True, help="Where the shop's API is, when not at SHOP (a test shop).")
def store_connect_shopify(
    slug: str, shop: str, client_id: str, client_secret: str, install_link: bool, api_base_url: str | None
) -> None:
    """Connect the Shopify store SHOP (its myshopify.com host) as SLUG with its app's client ID and secret.

    Without --install-link: the client credentials grant (the merchant's own app): the store is saved, a
    first token is asked for, the webhooks are registered. With it: the link an admin opens in a browser
    signed in to /config (the callback is an admin page), valid once, for 30 minutes."""

    rt = _runtime()
    try:
        if install_link:
            link = shopify_connect.begin(
                rt, slug, shop, client_id, client_secret, _cli_actor(), api_base_url=api_base_url
            )
            click.echo(
                "Open this link in a browser signed in to /config as an admin, then click Install "
                "(valid once, for 30 minutes):"
            )
            click.echo(link)
            return
        outcome = shopify_connect.connect_own_app(rt, slug, shop, client_id, client_secret, api_base_url)
    except (ValueError, StorefrontError) as exc:
        _fail(str(exc))

    audit(rt, _cli_actor(), "store.connect", slug, {"platform": "shopify", "scopes": outcome["scopes"]})
    hooks = outcome["webhooks"]
    click.echo(f"connected {slug} ({shop}); granted: {outcome['scopes'] or '?'}")
    if outcome["missing_scopes"]:
        click.echo(f"missing scopes: {', '.join(outcome['missing_scopes'])} (add them to the app, then run again)")
    click.echo(
        f"webhooks: {outcome['webhook_error']}"
        if outcome["webhook_error"]
        else f"webhooks: {len(hooks['created'])} created, {len(hooks['existing'])} already there"
        + (f"; not subscribed: {', '.join(hooks['skipped'])}" if hooks.get("skipped") else "")
    )


@main.command()
@click.argument("event_ids", nargs=-1, type=int)
@click.option("--failed", is_flag=True, help="Retry every failed event.")
def retry(event_ids: tuple[int, ...], failed: bool) -> None:
    """Retry events by id, or every failed one."""

    if not event_ids and not failed:
        _fail("give event ids or --failed")
    rt = _runtime()
    if event_ids:
        from sqlalchemy import select

        with rt.sessions() as session:
            found = dict(
                session.execute(select(InboxEvent.id, InboxEvent.status).where(InboxEvent.id.in_(event_ids))).all()
            )
        unknown = [str(i) for i in event_ids if i not in found]
        if unknown:  # a mistyped id: nothing is retried, so the person can correct the whole command
            _fail(f"no event {', '.join(unknown)}: nothing was retried (`connector events` lists the latest)")
        for event_id, status in found.items():
            if status not in RETRYABLE_STATES:
                click.echo(f"event {event_id} is {status}: only {', '.join(RETRYABLE_STATES)} events are retried")
    count = retry_events(rt, event_ids or None, failed=failed, actor=_cli_actor())
    click.echo(f"{count} event{'' if count == 1 else 's'} queued for retry")
    if event_ids and not count:
        sys.exit(1)


@main.command(short_help="Re-queue due events whose queue entry was lost.")
@click.option("--grace", type=float, default=None, help="Seconds an event may wait for its own wake-up.")
def sweep(grace: float | None) -> None:
    """Re-enqueue due events whose queue entry was lost (e.g. after Redis was flushed)."""

    _runtime()
    found = run_sweep(grace)
    click.echo(f"re-enqueued drains for {len(found)} store(s), {sum(found.values())} event(s)")


@main.command(short_help="The latest inbox events: state, order, error.")
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only events in this state.")
@click.option("--limit", default=20, show_default=True)
def events(status: str | None, limit: int) -> None:
    """List the latest inbox events with their state and last error."""
    from sqlalchemy import select

    rt = _runtime()
    query = select(InboxEvent, Store.slug).join(Store).order_by(InboxEvent.id.desc()).limit(limit)
    if status:
        query = query.where(InboxEvent.status == status)
    with rt.sessions() as session:
        for event, slug in session.execute(query):
            click.echo(
                f"{event.id:>8}  {event.received_at:%Y-%m-%d %H:%M:%S}  {slug:<16} {event.topic:<20} "
                f"{event.order_number or '-':<10} {event.status:<10} attempts={event.attempts}"
                + (f"  {event.last_error}" if event.last_error and event.status != "succeeded" else "")
            )


@main.command("send-sample", short_help="Post a signed sample order to a connector.")
@click.option("--url", default="http://127.0.0.1:5000", show_default=True)
@click.option("--store", default="demo", show_default=True)
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="An order JSON file (default: a sample order).",
)
def send_sample(url: str, store: str, path: Path | None) -> None:
    """Post a signed Shopify orders/create webhook to a running connector."""
    import uuid

    import requests
    from sqlalchemy import select

    rt = _runtime()
    with rt.sessions() as session:
        row = session.scalars(select(Store).where(Store.slug == store)).first()
        if row is None:
            _fail(f"no store {store!r} in {rt.settings.database_url}")
        secret = rt.store_info(row).webhook_secret
    body = (path or SAMPLE_ORDER).read_bytes()
    try:
        response = requests.post(
            f"{url.rstrip('/')}/webhooks/shopify/{store}",
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Shopify-Topic": "orders/create",
                "X-Shopify-Event-Id": str(uuid.uuid4()),
                "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                "X-Shopify-Hmac-Sha256": sign(secret, body),
            },
            timeout=10,
        )
    except requests.ConnectionError:
        _fail(f"nothing answers at {url}: start the connector first (`connector run`), or give its address with --url")
    except requests.Timeout:
        _fail(f"{url} took more than 10 s to answer: is it the connector, and is it busy?")
    click.echo(f"{response.status_code} {response.text}")


@main.command()
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
def worker(burst: bool) -> None:
    """Run an RQ worker (needs REDIS_URL)."""
    rt = _serving_runtime(worker=True)
    queue = _redis_queue(rt, "the worker needs REDIS_URL; without it `connector run` processes jobs in-process")
    # SimpleWorker: no fork per job. Jobs are batches that reuse the process's pools and ERP client.
    # Maintenance every minute (RQ's default is ten): it is what hands back the concurrency slot of a job
    # whose worker was killed.
    os.register_at_fork(before=rt.release_before_fork)  # RQ forks its scheduler: see release_before_fork
    worker_class = BurstWorker if burst else SimpleWorker
    w = worker_class([queue.queue], connection=queue.redis, maintenance_interval=60)
    w.work(burst=burst, with_scheduler=True)


@main.command(short_help="Run the scheduler (sweeps, syncs, prune).")
@click.option("--sweep-every", type=int, default=60, show_default=True)
def scheduler(sweep_every: int) -> None:
    """Run the RQ cron scheduler: the inbox sweep, each store's inventory sync, order reconciliation and
    webhook check, the shipments, receipts, undelivered parcels and refunds syncs and the daily prune.

    Schedules are read at start: restart the scheduler after adding a store or changing an interval."""
    from rq.cron import CronScheduler

    rt = _serving_runtime()
    queue = _redis_queue(rt, "the scheduler needs REDIS_URL; `connector run` sweeps in-process")
    cron = CronScheduler(connection=queue.redis)
    for name, job, args, interval in schedules(rt, sweep_every):
        cron.register(job, rt.settings.queue_name, args=args or None, interval=interval, name=name)
        click.echo(f"scheduled {name} every {interval} s")
    cron.start()


def _redis_queue(rt: Runtime, refusal: str) -> RedisJobQueue:
    """The RQ queue of a process that needs one (worker, scheduler); without REDIS_URL it stops with `refusal`."""

    if rt.settings.embedded_queue or not isinstance(rt.queue, RedisJobQueue):
        _fail(refusal)
    return rt.queue


def _store_id(rt: Runtime, slug: str) -> int:
    from sqlalchemy import select

    with rt.sessions() as session:
        found = session.scalars(select(Store.id).where(Store.slug == slug)).first()
    if found is None:
        _fail(f"no store {slug!r}")
    return found


@main.command(short_help="Fetch orders whose webhooks were missed.")
@click.argument("store")
def reconcile(store: str) -> None:
    """Feed STORE's orders changed since the last run into the inbox (missed webhooks), then drain."""

    rt = _runtime()
    store_id = _store_id(rt, store)
    attempt = 0
    while True:
        try:
            found = reconcile_orders(rt, store_id)
            break
        except StorefrontError as exc:  # a store that kept answering 429 is waited out a few times (jobs do too)
            pause = throttled(exc, attempt)
            if pause is None:
                _fail(str(exc))
            click.echo(f"{store}: {exc}; listing again in {pause:g} s", err=True)
            time.sleep(pause)
            attempt += 1
    click.echo(f"{store}: {found['seen']} order(s) seen, {found['new']} new event(s); cursor {found['cursor']}")


@main.command(short_help="Import a store's orders changed since a date.")
@click.argument("store", required=False)
@click.option("--all", "all_stores", is_flag=True, help="Every active store, one after the other (after a restore).")
@click.option(
    "--since",
    required=True,
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
    help="Orders changed at or after this date (UTC).",
)
@click.option("--restart", is_flag=True, help="Start over instead of resuming an interrupted backfill.")
@click.option("--page-size", type=click.IntRange(1, 250), default=None, help="Orders per store API page.")
def backfill(store: str | None, all_stores: bool, since: datetime, restart: bool, page_size: int | None) -> None:
    """Import STORE's orders changed since a date through the inbox; resumable. With --all, every active
    store's: what a restored database needs to close the gap since its dump (docs/backup.md, "Backup and restore")."""
    from datetime import UTC

    from sqlalchemy import select

    if all_stores == (store is not None):
        _fail("name one STORE, or --all")
    rt = _runtime()
    if all_stores:
        with rt.sessions() as session:
            slugs = list(session.scalars(select(Store.slug).where(Store.active.is_(True)).order_by(Store.id)))
    else:
        slugs = [str(store)]
    failed = []
    for slug in slugs:
        sid = _store_id(rt, slug)

        def bar(orders: Iterator[dict], slug: str = slug) -> Iterator[dict]:
            with click.progressbar(orders, label=f"{slug}: orders", show_pos=True) as shown:
                yield from shown

        try:
            found = run_backfill(rt, sid, since.replace(tzinfo=UTC), restart=restart, page_size=page_size, progress=bar)
        except StorefrontError as exc:
            click.echo(f"error: {slug}: {exc} (run again to resume)", err=True)
            failed.append(slug)
            continue
        click.echo(
            f"{slug}: {found['seen']} order(s) read, {found['new']} new event(s)"
            + (f", {found['skipped']} already done" if found["skipped"] else "")
            + ("; resumed an earlier run" if found["resumed"] else "")
        )
    if failed:
        _fail(f"not finished for {', '.join(failed)}: run the same command again to resume")


@main.command(short_help="Delete old finished inbox events.")
@click.option(
    "--days", type=click.IntRange(0), default=None, help="Keep this many days (default CONNECTOR_RETENTION_DAYS, 30)."
)
def prune(days: int | None) -> None:
    """Delete succeeded, ignored and skipped inbox events older than the retention period."""

    rt = _runtime()
    count = run_prune(rt, days)
    click.echo(f"pruned {count} event(s) older than {rt.settings.retention_days if days is None else days} day(s)")


@main.command("sync-inventory", short_help="Write what STORE may sell from ERP stock.")
@click.argument("store")
@click.option("--full", is_flag=True, help="Recompute every SKU, not only those whose stock or orders changed.")
@click.option("--no-erp-read", is_flag=True, help="Use the stock mirror as it is; do not read the ERP first.")
def sync_inventory_command(store: str, full: bool, no_erp_read: bool) -> None:
    """Read the ERP's stock changes and write what STORE (a slug) may sell; prints the report."""
    from sqlalchemy import select

    rt = _runtime()
    with rt.sessions() as session:
        row = session.scalars(select(Store).where(Store.slug == store)).first()
    if row is None:
        _fail(f"no store {store!r}")
    if not no_erp_read:
        try:
            click.echo(f"ERP: {read_erp_stock(rt)}")
        except ErpError as exc:
            click.echo(f"ERP stock not read ({exc}); using the mirror as it is", err=True)
    try:
        report = sync_inventory(rt, row.id, full=full)
    except StorefrontError as exc:
        _fail(str(exc))
    click.echo(report.summary())
    if not report.complete:
        sys.exit(1)


@main.command("sync-shipments", short_help="Tell the stores about new ERP shipments.")
@click.option("--retry-failed", is_flag=True, help="Give failed fulfillments a fresh start first.")
def sync_shipments_command(retry_failed: bool) -> None:
    """Read new ERP shipments and tell the stores (fulfillments, notes, completion); prints the report."""
    _sync_feed("shipments", "fulfillment(s)", reset_failed if retry_failed else None, sync_shipments)


@main.command("sync-receipts", short_help="Mark store orders paid from ERP receipts.")
@click.option("--retry-failed", is_flag=True, help="Give failed receipts a fresh start first.")
def sync_receipts_command(retry_failed: bool) -> None:
    """Read the receipts finance recorded in the ERP and mark the store orders paid; prints the report."""
    _sync_feed("receipts", "receipt(s)", reset_failed_receipts if retry_failed else None, sync_receipts)


@main.command("sync-undelivered", short_help="Tell the stores about undelivered parcels.")
@click.option("--retry-failed", is_flag=True, help="Give failed undelivered parcels a fresh start first.")
def sync_undelivered_command(retry_failed: bool) -> None:
    """Read the parcels the ERP recorded as returned undelivered (a COD parcel refused at the door) and
    cancel their store orders, restocked; prints the report."""
    _sync_feed("undelivered parcels", "parcel(s)", reset_failed_undelivered if retry_failed else None, sync_undelivered)


@main.command("sync-refunds", short_help="Refund in the stores the ERP's credit notes.")
@click.option("--retry-failed", is_flag=True, help="Give failed refunds a fresh start first.")
def sync_refunds_command(retry_failed: bool) -> None:
    """Read the credit notes the ERP made itself and refund them in the stores; prints the report."""
    _sync_feed("refunds", "refund(s)", reset_failed_refunds if retry_failed else None, sync_refunds)


def _sync_feed(
    feed: str,
    rows: str,
    reset: Callable[[Runtime], int] | None,
    sync: Callable[[Runtime], ShipmentReport | ReceiptReport | UndeliveredReport | RefundReport],
) -> None:
    rt = _runtime()
    if reset is not None:
        click.echo(f"{reset(rt)} failed {rows} will be tried again")
    try:
        report = sync(rt)
    except ErpError as exc:
        _fail(f"could not read {feed} from the ERP: {exc}")
    click.echo(report.summary())


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(1),
    envvar="WEB_CONCURRENCY",
    default=lambda: web_processes(os.environ.get("DATABASE_URL", "")),
    show_default="one per core; half the cores when the database is on this machine",
    help="gunicorn worker processes (env WEB_CONCURRENCY).",
)
@click.option(
    "--threads",
    type=click.IntRange(1),
    envvar="WEB_THREADS",
    default=4,
    show_default=True,
    help="Threads per worker process for pages and the API; webhooks run on its event loop (env WEB_THREADS).",
)
@click.option(
    "--forwarded-allow-ips",
    envvar="FORWARDED_ALLOW_IPS",
    default="",
    show_default="none",
    help="Comma-separated addresses of your reverse proxies (or *): only from these are "
    "X-Forwarded-For/-Proto believed (env FORWARDED_ALLOW_IPS).",
)
def web(host: str, port: int, workers: int, threads: int, forwarded_allow_ips: str) -> None:
    """Serve the web app with gunicorn (webhooks, pages, API)."""
    _serving_runtime().close()  # checked once here, before gunicorn forks its workers
    os.environ["WEB_THREADS"] = str(threads)  # read by connector.web.asgi in each worker
    # gunicorn's own default believes 127.0.0.1: a proxy-less server would then take any local
    # process's (or a same-host proxy's client's) X-Forwarded-For as the client's address.
    os.execvp(
        sys.executable,
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"{host}:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            WEB_WORKER_CLASS,
            "--forwarded-allow-ips",
            forwarded_allow_ips or "",
            WEB_APP,
        ],
    )


# The web server as `connector web` runs it (bench/intake.py measures the same).
WEB_WORKER_CLASS = "uvicorn_worker.UvicornWorker"
WEB_APP = "connector.web.asgi:create_asgi_app()"


def web_processes(database_url: str) -> int:
    """How many web processes `connector web` starts: one per core, but half the cores (at least one) when
    the database is on this machine, or SQLite. A delivery costs PostgreSQL about a third of what it costs
    the web process, and the web process's inbox commits go together only within a process: on two cores
    with PostgreSQL on them, one web process took 0.97x bare Flask's deliveries a second and two 0.79x
    (two leave a fifth of the machine idle, waiting on commits of half the rows; docs/performance.md)."""
    try:
        url = make_url(database_url or "sqlite://")  # unset: the embedded default, SQLite
    except ArgumentError:  # `connector web` says what is wrong with it before it starts anything
        return cores()
    host = url.host or url.query.get("host") or ""
    if isinstance(host, tuple):  # several hosts (libpq failover): local only if the first is
        host = host[0] if host else ""
    # No host, or a socket's directory: a Unix socket, on this machine.
    local = url.get_backend_name() == "sqlite" or not host or host.startswith("/") or host in LOCAL_HOSTS
    return max(1, cores() // 2) if local else cores()


def cores() -> int:
    """The cores this process may run on. An event loop keeps one core busy on its own: more
    processes than cores only adds switching, and splits the deliveries into smaller commits."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@main.command(short_help="Try it: web and worker, embedded defaults.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
def run(host: str, port: int) -> None:
    """Web and worker in one process on the embedded defaults, with a demo store and ERP."""

    problem = _port_problem(host, port)
    if problem:
        _fail(problem)
    run_demo(Settings.from_env(), host, port)


def _port_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on host:port, said before anything is printed or started."""
    import socket

    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.create_server((host, port), family=family):  # with SO_REUSEADDR, as the server binds
            return None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return (
                f"port {port} on {host} is in use (another connector?): "
                f"pick another with `connector run --port {port + 1}`"
            )
        return f"cannot listen on {host}:{port} ({exc.strerror or exc}): give another with --host or --port"


if __name__ == "__main__":
    main()
