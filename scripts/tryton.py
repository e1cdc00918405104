#!/usr/bin/env python3
"""A real Tryton ERP for the connector's tests and demos: install, initialise, start, stop, reset.

    python3 scripts/tryton.py setup DIR          # venv + database `erp` + master data + snapshot
    python3 scripts/tryton.py start DIR --port P # trytond on 127.0.0.1:P in the background
    python3 scripts/tryton.py stop DIR
    python3 scripts/tryton.py reset DIR          # stop, then put the snapshot back (a file copy)

Standard library only, Python >= 3.11. Layout of DIR:

    venv/               Tryton's own virtualenv (trytond 8.2 + sale, stock, party, product, proteus)
    trytond.conf        sqlite in DIR/db; [web] listen is NOT in the file: `start` passes it in
                        TRYTOND_WEB__LISTEN (a file value would override the environment)
    admin.pass          the admin password (generated once; the tests read it)
    connector.pass      the password of CONNECTOR_LOGIN, the connector's own non-admin Tryton user
    db/erp.sqlite       the live database
    snapshot/erp.sqlite the database right after setup: `reset` copies it back
    trytond.pid, trytond.port, trytond.log   the running server

`setup` is idempotent: an existing venv with the same requirements and an existing snapshot are
reused, so a second run takes a second or two. The master data (company, chart of accounts, fiscal
year, currencies with rates (JPY with 0 decimals, KWD with 3), currency exchange accounts, countries,
payment term, the taxes of the test and demo tax titles, the SHIPPING, TIP, DUTY, ADDITIONAL_FEE and
TAX service products, tips and duties on accounts of their own, and the non-admin user `connector`) is
created in-process with Tryton's own test helpers (trytond.modules.*.tests.tools over proteus); they are
not public API, which is why every Tryton package is pinned to 8.2.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import venv
from pathlib import Path

DATABASE = "erp"
ADMIN_EMAIL = "admin@example.com"
CONNECTOR_LOGIN = "connector"
REQUIREMENTS = [
    "trytond==8.2.*",
    "trytond-sale==8.2.*",
    "trytond-stock==8.2.*",
    "trytond-party==8.2.*",
    "trytond-product==8.2.*",
    "trytond-account-invoice==8.2.*",
    "proteus==8.2.*",
]
MODULES = ["sale", "stock"]  # with --activate-dependencies: account, account_invoice, company, ...
DATA_VERSION = "5"  # bump when the master data below changes: the next setup rebuilds the database
# Exit status when Tryton cannot be installed (PyPI unreachable, no ensurepip...): outside our control,
# so the test harness skips on it; any other failure is a bug to fix and fails the tests.
INSTALL_FAILED = 75

# Runs inside DIR/venv with the server stopped: the master data a sale needs to be confirmed.
INIT_DATA = r"""
import datetime
import os
import sys
from decimal import Decimal

from proteus import Model, config as pconfig
from trytond.modules.account.tests.tools import create_chart, create_fiscalyear, get_accounts
from trytond.modules.account_invoice.tests.tools import create_payment_term, set_fiscalyear_invoice_sequences
from trytond.modules.company.tests.tools import create_company, get_company

conf_file, database, connector_login = sys.argv[1:4]
connector_password = os.environ["TRYTON_CONNECTOR_PASSWORD"]  # not on the command line, where `ps` shows it
# What the connector's Tryton user needs (docs/erp-tryton.md, "ERP: Tryton"): sales (create, quote, confirm), the
# sales administrator's Process button and exception wizards (cancelling a processing sale), stock (cancel
# its shipments), accounting (read taxes and the tax rounding, cancel a draft invoice). By the groups'
# names (ir.model.data cannot be searched over proteus): sale.group_sale, sale.group_sale_admin,
# stock.group_stock, account.group_account.
CONNECTOR_GROUPS = ["Sales", "Sales Administrator", "Stock", "Accounting"]
config = pconfig.set_trytond(database=database, config_file=conf_file)

Country = Model.get("country.country")
COUNTRIES = {
    "US": "United States", "CA": "Canada", "MX": "Mexico", "GB": "United Kingdom", "IE": "Ireland",
    "FR": "France", "DE": "Germany", "NL": "Netherlands", "BE": "Belgium", "LU": "Luxembourg",
    "ES": "Spain", "PT": "Portugal", "IT": "Italy", "AT": "Austria", "CH": "Switzerland",
    "DK": "Denmark", "SE": "Sweden", "NO": "Norway", "FI": "Finland", "PL": "Poland",
    "CZ": "Czechia", "AU": "Australia", "NZ": "New Zealand", "IN": "India", "JP": "Japan",
    "SG": "Singapore", "HK": "Hong Kong", "AE": "United Arab Emirates", "ZA": "South Africa",
    "BR": "Brazil",
}
countries = {}
for code, name in COUNTRIES.items():
    found = Country.find([("code", "=", code)])
    countries[code] = found[0] if found else Country(name=name, code=code)
Country.save([c for c in countries.values() if not c.id or c.id < 0])

Currency = Model.get("currency.currency")
Rate = Model.get("currency.currency.rate")
CURRENCIES = {  # code: (name, symbol, units of the currency per USD, minor unit digits)
    "USD": ("U.S. Dollar", "$", "1", 2), "EUR": ("Euro", "\u20ac", "0.92", 2),
    "GBP": ("Pound Sterling", "\u00a3", "0.79", 2), "AUD": ("Australian Dollar", "A$", "1.52", 2),
    "CAD": ("Canadian Dollar", "C$", "1.37", 2), "INR": ("Indian Rupee", "\u20b9", "83.20", 2),
    "JPY": ("Japanese Yen", "\u00a5", "151", 0), "KWD": ("Kuwaiti Dinar", "KD", "0.307", 3),
}
currencies = {}
for code, (name, symbol, rate, digits) in CURRENCIES.items():
    found = Currency.find([("code", "=", code)])
    currency = found[0] if found else Currency(name=name, symbol=symbol, code=code, digits=digits,
                                               rounding=Decimal(1).scaleb(-digits))
    if not found:
        currency.save()
        Rate(currency=currency, date=datetime.date(2000, 1, 1), rate=Decimal(rate)).save()
    currencies[code] = currency

Company = Model.get("company.company")
Party = Model.get("party.party")
if not Company.find([]):
    party = Party(name="Acme Web Store")
    address = party.addresses[0] if party.addresses else party.addresses.new()
    address.street_unstructured = "1 Commerce Way"
    address.postal_code = "02110"
    address.city = "Boston"
    address.country = countries["US"]
    party.save()
    create_company(party, currencies["USD"])
    create_chart()

accounts = get_accounts()
Category = Model.get("product.category")
category, = Category.find([("name", "=", "Storefront goods")]) or [None]
if category is None:
    category = Category(name="Storefront goods", accounting=True,
                        account_revenue=accounts["revenue"], account_expense=accounts["expense"])
    category.save()

PaymentTerm = Model.get("account.invoice.payment_term")
if not PaymentTerm.find([]):
    term = create_payment_term()
    term.name = "Due on receipt"
    term.save()

company = get_company()
FiscalYear = Model.get("account.fiscalyear")
if not FiscalYear.find([]):  # posting invoices needs one; today's, so the tests' sales fall in it
    fiscalyear = set_fiscalyear_invoice_sequences(create_fiscalyear(company))
    fiscalyear.click("create_period")

# The store's tax titles of the test fixtures and the demo, as Tryton taxes of the same name and rate
# (the connector finds a tax by title and rate when the merchant mapped no code).
Tax = Model.get("account.tax")
# One title may stand for several rates (GST: 10% in Australia, 5% in Canada): a tax per title and rate.
TAXES = [("MA State Tax", "0.0625"), ("FR TVA", "0.20"), ("TVA 20%", "0.20"), ("Sales tax", "0.10"), ("GST", "0.10"),
         ("GST", "0.05"), ("IGST", "0.18"), ("NY State Tax", "0.08875"), ("Colorado State Tax", "0.029"),
         ("Denver City Tax", "0.0481"), ("Consumption Tax", "0.10")]
for title, rate in TAXES:
    if not Tax.find([("name", "=", title), ("rate", "=", Decimal(rate))]):
        Tax(name=title, description=title, type="percentage", rate=Decimal(rate), invoice_account=accounts["tax"],
            credit_note_account=accounts["tax"]).save()

# Tips, duties and additional fees post to accounts of their own: a tip is owed to staff, a duty to
# customs (Tryton's revenue-type accounts, as a product category needs; finance reclassifies them).
Account = Model.get("account.account")


def own_category(name, account_name, code):
    found = Category.find([("name", "=", name)])
    if found:
        return found[0]
    revenue = accounts["revenue"]
    account = Account(name=account_name, code=code, type=revenue.type, parent=revenue.parent)
    account.save()
    own = Category(name=name, accounting=True, account_revenue=account, account_expense=accounts["expense"])
    own.save()
    return own


# Finance posts invoices in the stores' currencies (INR, EUR...) in a USD company: Tryton books the rounding of
# their conversion on the currency exchange accounts, and refuses to post without them.
Configuration = Model.get("account.configuration")
configuration = Configuration(1)
if not configuration.currency_exchange_credit_account:
    revenue = accounts["revenue"]
    exchange = Account(name="Currency exchange", code="FX", type=revenue.type, parent=revenue.parent)
    exchange.save()
    configuration.currency_exchange_credit_account = exchange
    configuration.currency_exchange_debit_account = exchange
    configuration.save()

# Service products for the shipping, fee and (older sales' refunded) tax lines (adapters/erp/tryton.py).
Uom = Model.get("product.uom")
unit, = Uom.find([("name", "=", "Unit")])
Template = Model.get("product.template")
Product = Model.get("product.product")
SERVICES = [("SHIPPING", "Shipping", category), ("TAX", "Sales tax collected by the store", category),
            ("TIP", "Tips", own_category("Tips", "Tips owed to staff", "TIPS")),
            ("DUTY", "Duties and import taxes", own_category("Duties", "Duties collected for customs", "DUTIES")),
            ("ADDITIONAL_FEE", "Additional fees", own_category("Additional fees", "Additional fees", "FEES"))]
for code, name, its_category in SERVICES:
    if Product.find([("code", "=", code)]):
        continue
    template = Template(name=name, type="service", salable=True, default_uom=unit, sale_uom=unit,
                        list_price=Decimal(0), account_category=its_category)
    product = template.products[0] if template.products else template.products.new()
    product.suffix_code = code
    template.save()

# The connector's own login: sales, parties, stock and invoices of the company, nothing of the
# administration (no users, no modules, no chart of accounts).
User = Model.get("res.user")
Group = Model.get("res.group")
if not User.find([("login", "=", connector_login)]):
    user = User(name="Storefront connector", login=connector_login, password=connector_password)
    for group_name in CONNECTOR_GROUPS:
        group, = Group.find([("name", "=", group_name)])
        user.groups.append(group)
    user.companies.append(Company(company.id))
    user.company = Company(company.id)
    user.save()

Location = Model.get("stock.location")
warehouse, = Location.find([("type", "=", "warehouse")], limit=1)
print(f"master data: company, chart, fiscal year, {len(countries)} countries, {len(currencies)} currencies, "
      f"{len(TAXES)} taxes, warehouse {warehouse.code}, products {', '.join(code for code, *_ in SERVICES)}, "
      f"user {connector_login}")
"""


def log(message: str) -> None:
    print(f"[tryton] {message}", flush=True)


class Timer:
    def __init__(self) -> None:
        self.start = time.monotonic()
        self.marks: list[tuple[str, float]] = []
        self.last = self.start

    def mark(self, name: str) -> None:
        now = time.monotonic()
        self.marks.append((name, now - self.last))
        self.last = now

    def report(self) -> str:
        parts = ", ".join(f"{name} {secs:.1f}s" for name, secs in self.marks)
        return f"total {time.monotonic() - self.start:.1f}s ({parts})"


def paths(directory: Path) -> dict[str, Path]:
    d = directory.resolve()
    return {
        "dir": d,
        "venv": d / "venv",
        "python": d / "venv" / "bin" / "python",
        "trytond": d / "venv" / "bin" / "trytond",
        "admin": d / "venv" / "bin" / "trytond-admin",
        "conf": d / "trytond.conf",
        "pass": d / "admin.pass",
        "connector_pass": d / "connector.pass",
        "db_dir": d / "db",
        "db": d / "db" / f"{DATABASE}.sqlite",
        "snapshot": d / "snapshot" / f"{DATABASE}.sqlite",
        "stamp": d / "snapshot" / "setup.json",
        "pid": d / "trytond.pid",
        "port": d / "trytond.port",
        "log": d / "trytond.log",
        "req": d / "venv" / "connector-requirements.txt",
    }


# ---- setup ------------------------------------------------------------------------------------


def setup(directory: Path) -> None:
    p = paths(directory)
    p["dir"].mkdir(parents=True, exist_ok=True)
    timer = Timer()
    wanted = "\n".join(REQUIREMENTS) + "\n"
    if p["trytond"].exists() and p["req"].exists() and p["req"].read_text() == wanted:
        log(f"venv {p['venv']} already installed: reused")
    else:
        if p["venv"].exists():
            shutil.rmtree(p["venv"])
        try:
            venv.EnvBuilder(with_pip=True).create(p["venv"])
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"[tryton] cannot create a virtualenv with pip: {exc}", file=sys.stderr)
            raise SystemExit(INSTALL_FAILED) from None
        run(
            [str(p["python"]), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *REQUIREMENTS],
            fail_code=INSTALL_FAILED,
        )
        p["req"].write_text(wanted)
        log("venv installed")
    timer.mark("venv")

    write_config(p)
    for secret in ("pass", "connector_pass"):
        if not p[secret].exists():
            p[secret].write_text(secrets.token_hex(12) + "\n")
            p[secret].chmod(0o600)

    stamp = read_stamp(p)
    if p["snapshot"].exists() and stamp.get("data_version") == DATA_VERSION and stamp.get("requirements") == wanted:
        if not p["db"].exists():
            restore_snapshot(p)
            log("database restored from the snapshot")
        else:
            log(f"database and snapshot {p['snapshot']} already initialised: reused")
        timer.mark("database")
        log(f"setup done, {timer.report()}")
        return

    if is_running(p):
        stop(directory)
    shutil.rmtree(p["db_dir"], ignore_errors=True)
    p["snapshot"].unlink(missing_ok=True)
    p["db_dir"].mkdir(parents=True)
    p["db"].touch()
    env = dict(os.environ, TRYTONPASSFILE=str(p["pass"]))
    run(
        [
            str(p["admin"]),
            "-c",
            str(p["conf"]),
            "-d",
            DATABASE,
            "-u",
            *MODULES,
            "--activate-dependencies",
            "--email",
            ADMIN_EMAIL,
        ],
        env=env,
    )
    timer.mark("trytond-admin init")

    script = p["dir"] / "init_data.py"
    script.write_text(INIT_DATA)
    run(
        [str(p["python"]), str(script), str(p["conf"]), DATABASE, CONNECTOR_LOGIN],
        env=dict(os.environ, TRYTON_CONNECTOR_PASSWORD=p["connector_pass"].read_text().strip()),
    )
    timer.mark("master data")

    checkpoint(p["db"])
    p["snapshot"].parent.mkdir(parents=True, exist_ok=True)
    tmp = p["snapshot"].with_suffix(".tmp")
    shutil.copyfile(p["db"], tmp)
    tmp.replace(p["snapshot"])
    p["stamp"].write_text(
        json.dumps(
            {"data_version": DATA_VERSION, "requirements": wanted, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
            indent=2,
        )
    )
    timer.mark("snapshot")
    log(f"setup done, {timer.report()}")


def read_stamp(p: dict[str, Path]) -> dict:
    try:
        return json.loads(p["stamp"].read_text())
    except (OSError, ValueError):
        return {}


def write_config(p: dict[str, Path]) -> None:
    text = (
        "# Written by scripts/tryton.py setup. [web] listen comes from TRYTOND_WEB__LISTEN at start.\n"
        "[database]\n"
        "uri = sqlite://\n"
        f"path = {p['db_dir']}\n"
        "\n"
        "[session]\n"
        "max_attempt = 1000\n"
        "\n"
        "[password]\n"
        "length = 8\n"
    )
    if not p["conf"].exists() or p["conf"].read_text() != text:
        p["conf"].write_text(text)


def run(cmd: list[str], env: dict | None = None, fail_code: int = 1) -> None:
    started = time.monotonic()
    result = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    name = Path(cmd[0]).name if not cmd[0].endswith("python") else " ".join(Path(c).name for c in cmd[:3])
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-6000:])
        print(f"[tryton] {name} failed (exit {result.returncode})", file=sys.stderr)
        raise SystemExit(fail_code)
    for line in result.stdout.splitlines():
        if line.strip() and "WARNING: Location" not in line:
            log(f"  {line}")
    log(f"{name}: {time.monotonic() - started:.1f}s")


def checkpoint(db: Path) -> None:
    """Fold the WAL into the main file so a plain copy of it is the whole database."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
    finally:
        conn.close()


def restore_snapshot(p: dict[str, Path]) -> None:
    p["db_dir"].mkdir(parents=True, exist_ok=True)
    for suffix in ("-wal", "-shm", "-journal"):
        Path(str(p["db"]) + suffix).unlink(missing_ok=True)
    tmp = p["db"].with_suffix(".tmp")
    shutil.copyfile(p["snapshot"], tmp)
    tmp.replace(p["db"])


# ---- start / stop / reset ---------------------------------------------------------------------


def read_pid(p: dict[str, Path]) -> int | None:
    try:
        pid = int(p["pid"].read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    return pid if str(p["trytond"]) in cmdline or "trytond" in cmdline and str(p["conf"]) in cmdline else None


def is_running(p: dict[str, Path]) -> bool:
    return read_pid(p) is not None


def rpc_answers(port: int, timeout: float = 2) -> bool:
    body = json.dumps({"id": 1, "method": "common.server.version", "params": []}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/rpc/", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return "result" in json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return False


def start(directory: Path, port: int, wait: float = 60) -> None:
    p = paths(directory)
    if not p["conf"].exists() or not p["db"].exists():
        raise SystemExit(f"[tryton] {p['dir']} is not set up: run `scripts/tryton.py setup {directory}` first")
    if is_running(p):
        running_port = int(p["port"].read_text()) if p["port"].exists() else None
        if running_port == port and rpc_answers(port):
            log(f"already running on 127.0.0.1:{port}")
            return
        stop(directory)
    if rpc_answers(port, timeout=0.5):
        raise SystemExit(f"[tryton] port {port} is taken by another server")
    started = time.monotonic()
    env = dict(os.environ, TRYTOND_WEB__LISTEN=f"127.0.0.1:{port}")
    with open(p["log"], "ab") as logfile:
        proc = subprocess.Popen(
            [str(p["trytond"]), "-c", str(p["conf"]), "-d", DATABASE],
            env=env,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=p["dir"],
        )
    p["pid"].write_text(f"{proc.pid}\n")
    p["port"].write_text(f"{port}\n")
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = p["log"].read_text(errors="replace")[-3000:]
            p["pid"].unlink(missing_ok=True)
            raise SystemExit(f"[tryton] trytond exited with {proc.returncode}; log tail:\n{tail}")
        if rpc_answers(port, timeout=1):
            log(f"trytond pid {proc.pid} answers on http://127.0.0.1:{port}/ ({time.monotonic() - started:.1f}s)")
            return
        time.sleep(0.1)
    stop(directory)
    raise SystemExit(f"[tryton] trytond did not answer on 127.0.0.1:{port} within {wait:.0f}s; see {p['log']}")


def stop(directory: Path, wait: float = 15) -> None:
    p = paths(directory)
    pid = read_pid(p)
    if pid is None:
        p["pid"].unlink(missing_ok=True)
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        if _zombie(pid):
            break
        time.sleep(0.05)
    else:
        if Path(f"/proc/{pid}").exists() and not _zombie(pid):
            os.kill(pid, signal.SIGKILL)
    p["pid"].unlink(missing_ok=True)
    log(f"trytond pid {pid} stopped")


def _zombie(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "State:\tZ" in status


def reset(directory: Path) -> None:
    p = paths(directory)
    if not p["snapshot"].exists():
        raise SystemExit(f"[tryton] no snapshot in {p['snapshot']}: run setup first")
    started = time.monotonic()
    stop(directory)
    restore_snapshot(p)
    log(f"database reset from the snapshot ({time.monotonic() - started:.1f}s)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("setup", "stop", "reset"):
        sub.add_parser(name).add_argument("dir", type=Path)
    start_parser = sub.add_parser("start")
    start_parser.add_argument("dir", type=Path)
    start_parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    if args.command == "setup":
        setup(args.dir)
    elif args.command == "start":
        start(args.dir, args.port)
    elif args.command == "stop":
        stop(args.dir)
    else:
        reset(args.dir)


if __name__ == "__main__":
    main()
