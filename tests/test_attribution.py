"""Channel attribution: a web order of an ERP account with an owner carries the web channel and that owner
into the ERP, the store's rule decides the credit, and the console sums it by owner over a period."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from adapters.erp import RetryableErpError
from adapters.erp.sql_contract import erp_customers
from connector.base.models import AuditEntry, OrderAttribution, Store
from mappings.utc import as_utc
from tests.conftest import load_fixture
from tests.stack import STORE, Stack
from tests.test_api import sign_in
from tests.test_pages import field_error, form_post, html

ORDER = load_fixture("shopify", "order_discount_multiline.json")  # Dana Whitfield, 205.65 USD
PLACED = "2026-11-20T10:15:00-05:00"


def an_account(stack: Stack, owner: str | None = "REP-ANNA", email: str = "dana.whitfield@example.com") -> int:
    """The ERP side: an account the ERP already had before any web order, owned by a sales rep."""
    now = datetime.now(UTC)
    with stack.erp_engine.begin() as conn:
        return conn.execute(
            erp_customers.insert().values(
                email=email, name="Dana Whitfield", external_ids="", owner=owner, created_at=now, updated_at=now
            )
        ).inserted_primary_key[0]


def set_owner(stack: Stack, account: int, owner: str) -> None:
    with stack.erp_engine.begin() as conn:
        conn.execute(erp_customers.update().where(erp_customers.c.id == account).values(owner=owner))


def set_rule(stack: Stack, **settings: str) -> None:
    with stack.rt.sessions.begin() as session:
        store = session.scalars(select(Store).where(Store.slug == STORE)).one()
        kept = {k: v for k, v in store.settings.items() if k not in ("attribution", "split_owner_share")}
        store.settings = {**kept, **settings}


def version(order_id: int, placed: str = PLACED, updated: str | None = None, **changes) -> dict:  # type: ignore[no-untyped-def]
    payload = copy.deepcopy(ORDER)
    payload.update(
        id=order_id, name=f"#{order_id}", order_number=order_id, created_at=placed, updated_at=updated or placed
    )
    payload.update(changes)
    return payload


def stranger(payload: dict) -> dict:
    """The same order from a buyer the ERP has never seen."""
    payload["email"] = payload["contact_email"] = "lee.stranger@example.com"
    payload["customer"] = {**payload["customer"], "id": 7209999999999, "email": "lee.stranger@example.com"}
    payload["customer"]["phone"] = None
    for address in ("billing_address", "shipping_address"):
        payload[address] = {**payload[address], "phone": None}
    return payload


def attributions(stack: Stack) -> list[OrderAttribution]:
    with stack.rt.sessions() as session:
        found = list(session.scalars(select(OrderAttribution).order_by(OrderAttribution.id)))
        session.expunge_all()
    return found


def audited(stack: Stack) -> list[AuditEntry]:
    with stack.rt.sessions() as session:
        found = list(session.scalars(select(AuditEntry).where(AuditEntry.action == "order.attributed")))
        session.expunge_all()
    return found


def credit_of(row) -> tuple:  # type: ignore[no-untyped-def]
    return (row.channel, row.owner, row.owner_share, row.owner_credit)


@pytest.mark.parametrize(
    "rule, settings, share, owner_credit",
    [
        ("owner", {}, "1", "205.65"),
        ("web", {}, "0", "0"),
        ("split", {"split_owner_share": "0.5"}, "0.5", "102.83"),  # 102.825 rounded half up; web has 102.82
    ],
)
def test_an_existing_accounts_web_order_carries_its_owner_and_the_rules_credit(
    stack: Stack, rule: str, settings: dict, share: str, owner_credit: str
) -> None:
    account = an_account(stack)
    set_rule(stack, attribution=rule, **settings)
    stack.post_shopify(version(8001))
    stack.run_jobs()

    (row,) = stack.erp_orders()
    assert row.customer_id == account
    assert credit_of(row) == ("web", "REP-ANNA", Decimal(share), Decimal(owner_credit))
    (event,) = stack.events()
    assert event.status == "succeeded" and "attributed to owner REP-ANNA" in event.result["attribution"]

    # A replay changes nothing; a later version keeps the credit it was booked with, though the rule and the
    # account's owner changed meanwhile, and credits the new total.
    stack.post_shopify(version(8001), event_id="replayed")
    set_rule(stack, attribution="owner" if rule != "owner" else "web")
    set_owner(stack, account, "REP-BOB")
    stack.post_shopify(version(8001, updated="2026-11-20T11:00:00-05:00", note="ring twice"), topic="orders/updated")
    stack.run_jobs()
    (row,) = stack.erp_orders()
    assert as_utc(row.source_updated_at) > datetime(2026, 11, 20, 15, 30, tzinfo=UTC)  # the later version was applied
    assert credit_of(row) == ("web", "REP-ANNA", Decimal(share), Decimal(owner_credit))
    (kept,) = attributions(stack)
    assert (kept.owner, kept.rule, kept.owner_credit) == ("REP-ANNA", rule, Decimal(owner_credit))
    (entry,) = audited(stack)
    assert (entry.actor, entry.target) == (f"rules:{STORE}", f"{STORE} #8001")
    assert entry.detail == {
        "owner": "REP-ANNA",
        "rule": rule,
        "owner_share": share,
        "owner_credit": f"{owner_credit} USD",
        "erp_customer_id": str(account),
    }
    replay = stack.events()[1]
    assert replay.result["note"] == "repeated: the ERP already has this version" and "attribution" not in replay.result


def test_a_customer_the_connector_creates_for_a_web_order_has_no_owner(stack: Stack) -> None:
    an_account(stack)  # Dana's, owned; this buyer is someone else
    set_rule(stack, attribution="owner")
    stack.post_shopify(stranger(version(8002)))
    stack.run_jobs()

    (row,) = stack.erp_orders()
    created = next(c for c in stack.erp_customers() if c.id == row.customer_id)
    assert created.email == "lee.stranger@example.com" and created.owner is None
    assert credit_of(row) == ("web", None, Decimal(0), Decimal(0))
    (event,) = stack.events()
    assert "the account has no owner" in event.result["attribution"]
    assert audited(stack) == []  # nothing was attributed to anyone


def test_the_report_sums_each_owners_web_orders_in_the_period_and_leaves_out_the_rest(stack: Stack) -> None:
    an_account(stack)
    set_rule(stack, attribution="split", split_owner_share="0.5")
    stack.post_shopify(version(8101, "2026-11-05T10:00:00-05:00"))
    stack.post_shopify(version(8102, "2026-11-20T10:00:00-05:00"))
    stack.post_shopify(stranger(version(8103, "2026-11-12T10:00:00-05:00")))
    stack.post_shopify(version(8104, "2026-10-31T18:30:00-05:00"))  # 23:30 UTC on 31 October: before the period
    stack.post_shopify(version(8105, "2026-12-01T00:00:00+00:00"))  # after it
    stack.post_shopify(version(8106, "2026-11-21T10:00:00-05:00"))
    stack.run_jobs()
    cancelled = version(
        8106,
        "2026-11-21T10:00:00-05:00",
        updated="2026-11-22T09:00:00-05:00",
        cancelled_at="2026-11-22T09:00:00-05:00",
        cancel_reason="customer",
    )
    stack.post_shopify(cancelled, topic="orders/cancelled")
    stack.run_jobs()
    assert len(stack.erp_orders()) == 6 and all(e.status == "succeeded" for e in stack.events())
    with stack.rt.sessions.begin() as session:  # a store selling in euros too: its amounts are never added to USD
        session.add(
            OrderAttribution(
                store_id=session.scalars(select(Store.id).where(Store.slug == STORE)).one(),
                order_external_id="9001",
                order_number="#9001",
                erp_customer_id="1",
                owner="REP-ANNA",
                rule="split",
                owner_share=Decimal("0.5"),
                currency="EUR",
                total=Decimal("10.01"),
                owner_credit=Decimal("5.01"),
                placed_at=datetime(2026, 11, 3, tzinfo=UTC),
                source_updated_at=datetime(2026, 11, 3, tzinfo=UTC),
            )
        )

    support = sign_in(stack, ("support@example.com", "battery horse staple correct"), "support")
    page = support.get(f"/console/attribution?from=2026-11-01&to=2026-11-30&store={STORE}")
    assert page.status_code == 200
    usd, eur = table(html(page), "USD"), table(html(page), "EUR")
    # 8101 and 8102 (8106 was cancelled): 2 x 205.65, the owner's half of each rounded half up.
    assert usd["REP-ANNA"] == ["2", "411.30 USD", "205.66 USD", "205.64 USD", "split"]
    assert usd[""] == ["1", "205.65 USD", "0.00 USD", "205.65 USD", "split"]  # 8103, an account without owner
    assert usd["total"] == ["3", "616.95 USD", "205.66 USD", "411.29 USD"]
    assert eur["REP-ANNA"] == ["1", "10.01 EUR", "5.01 EUR", "5.00 EUR", "split"]

    later = html(support.get("/console/attribution?from=2026-12-01&to=2026-12-31"))
    assert table(later, "USD")["REP-ANNA"][:2] == ["1", "205.65 USD"]  # 8105
    refused = support.get("/console/attribution?from=2026-11-31&to=2026-11-01")
    assert refused.status_code == 400 and "a date such as" in html(refused)
    backwards = support.get("/console/attribution?from=2026-11-30&to=2026-11-01")
    assert backwards.status_code == 400 and "on or after the first day" in html(backwards)
    widest = support.get("/console/attribution?from=0001-01-01&to=9999-12-29")
    assert widest.status_code == 200 and table(html(widest), "USD")["total"][0] == "5"  # every order but 8106
    for hostile in ("to=9999-12-31", "store=%00acme", "from=2026-11-01%00", "from[]=x"):
        answer = support.get(f"/console/attribution?{hostile}")
        assert answer.status_code in (200, 400), hostile


def table(page: str, currency: str) -> dict[str, list[str]]:
    """{owner ("" for none, "total" for the footer): its cells} of the currency's table on the report."""
    found = re.search(rf'<table class="attribution" data-currency="{currency}">(.*?)</table>', page, re.S)
    assert found, f"no {currency} table"
    rows: dict[str, list[str]] = {}
    for owner, cells in re.findall(r'<tr data-owner="([^"]*)">(.*?)</tr>', found.group(1), re.S):
        rows[owner] = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", cells, re.S)]
    foot = re.search(r"<tfoot>(.*?)</tfoot>", found.group(1), re.S)
    assert foot
    rows["total"] = [
        re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", foot.group(1), re.S)
    ][:4]
    return rows


def test_the_rule_is_set_on_the_config_page_checked_and_audited(sqlite_stack: Stack) -> None:
    admin = sign_in(sqlite_stack)
    base = [("active", "on"), ("shop_domain", f"{STORE}.myshopify.com"), ("api_version", "2026-01")]
    for share, error in (("1.5", "less than 1"), ("half", "a share such as 0.5"), ("0.12345", "at most 4 decimals")):
        refused = form_post(
            admin, f"/config/stores/{STORE}", [*base, ("attribution", "split"), ("split_owner_share", share)]
        )
        assert refused.status_code == 400 and error in (field_error(html(refused), "split_owner_share") or "")
    unknown = form_post(admin, f"/config/stores/{STORE}", [*base, ("attribution", "whoever")])
    assert unknown.status_code == 400 and field_error(html(unknown), "attribution")

    saved = form_post(
        admin, f"/config/stores/{STORE}", [*base, ("attribution", "split"), ("split_owner_share", "0.40")]
    )
    assert saved.status_code == 302
    with sqlite_stack.rt.sessions() as session:
        store = session.scalars(select(Store).where(Store.slug == STORE)).one()
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "store.update")).one()
    assert (store.settings["attribution"], store.settings["split_owner_share"]) == ("split", "0.4")
    assert {"attribution", "split_owner_share"} <= set(entry.detail["changed"])
    page = html(admin.get(f"/config/stores/{STORE}"))
    assert 'value="0.4"' in page and '<option value="split" selected>' in page


@pytest.mark.parametrize("fails", ["customer_owner", "push_order"])
def test_an_erp_fault_around_the_owner_read_or_the_order_write_books_one_order_with_its_owner(
    stack: Stack, fails: str
) -> None:
    """The owner read fails (nothing written yet), or the order write lands but its answer is lost: the
    retry books one order, credited as the rule says."""
    calls: list[tuple] = []

    def down_once(erp):  # type: ignore[no-untyped-def]
        real = getattr(erp, fails)

        def call(*args):  # type: ignore[no-untyped-def]
            calls.append(args)
            if len(calls) == 1:
                if fails == "push_order":
                    real(*args)  # written; the answer never comes back
                raise RetryableErpError(f"the ERP's {fails} call timed out")
            return real(*args)

        setattr(erp, fails, call)
        return erp

    account = an_account(stack)
    set_rule(stack, attribution="split", split_owner_share="0.5")
    stack.wrap_erp(down_once)
    stack.post_shopify(version(8201))
    stack.run_jobs()
    assert stack.events()[0].status == "pending"
    stack.run_jobs(include_delayed=True)

    (event,) = stack.events()
    (row,) = stack.erp_orders()
    assert event.status == "succeeded" and len(calls) == 2
    assert row.customer_id == account and len(stack.erp_customers()) == 1
    assert credit_of(row) == ("web", "REP-ANNA", Decimal("0.5"), Decimal("102.83"))
    (kept,) = attributions(stack)
    assert (kept.owner, kept.owner_credit) == ("REP-ANNA", Decimal("102.83"))
