"""/api/v1 for orders held before the ERP: the approvals and the customer decisions of the console, as JSON
(the console's pages and these routes call the same functions, with the same rules and the same audit)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from webargs.flaskparser import abort

from connector.base.models import Approval, CustomerMatch
from connector.orders import approvals, customer_matches
from connector.web.api import Count, rt
from connector.web.auth import actor, requires
from mappings.text_fields import Text

bp = Blueprint("holds_api", __name__, url_prefix="/api/v1", description="Orders held before the ERP")


class ApprovalQuery(Schema):
    store = Text()
    status = fields.String(validate=validate.OneOf(approvals.STATUSES), load_default="awaiting")
    order = Text(metadata={"description": "order number (#1001) or the store's order id"})


class ApprovalView(Schema):
    id = fields.Integer()
    store = fields.String()
    order_external_id = fields.String()
    order_number = fields.String()
    customer = fields.String()
    total = fields.String()
    reasons = fields.List(fields.String())
    status = fields.String()
    decided_by = fields.String(allow_none=True)
    decision_reason = fields.String(allow_none=True)
    store_cancel = fields.String(allow_none=True)
    store_cancel_error = fields.String(allow_none=True)


class ApprovalList(Schema):
    items = fields.List(fields.Nested(ApprovalView))


class RejectBody(Schema):
    reason = Text(required=True, blank=False, validate=validate.Length(min=1, max=approvals.MAX_REASON))


class BulkApproveBody(Schema):
    store = Text()
    order = Text()
    expected_count = fields.Integer(
        required=True, strict=True, metadata={"description": "the count the person confirmed (awaiting orders)"}
    )


class MatchView(Schema):
    id = fields.Integer()
    store = fields.String()
    order_external_id = fields.String()
    order_number = fields.String()
    buyer = fields.Dict()
    candidates = fields.List(fields.Dict())
    status = fields.String()
    erp_customer_id = fields.String(allow_none=True)
    decided_by = fields.String(allow_none=True)


class MatchQuery(Schema):
    status = fields.String(validate=validate.OneOf(customer_matches.STATUSES), load_default="awaiting")


class MatchList(Schema):
    items = fields.List(fields.Nested(MatchView))


class DecisionBody(Schema):
    link_to = Text(
        allow_none=True,
        load_default=None,
        metadata={"description": "the ERP id of one of the candidates shown; null: a new customer"},
    )


def _approval(row: Approval, slug: str) -> dict[str, Any]:
    return {**{k: getattr(row, k) for k in ApprovalView().fields if k != "store"}, "store": slug}


def _match(row: CustomerMatch, slug: str) -> dict[str, Any]:
    return {**{k: getattr(row, k) for k in MatchView().fields if k != "store"}, "store": slug}


@bp.route("/approvals")
class Approvals(MethodView):
    decorators = [requires("support", "approver")]

    @bp.arguments(ApprovalQuery, location="query")
    @bp.response(200, ApprovalList)
    def get(self, args: dict) -> dict:
        """Orders held by a store's approval rules (awaiting a decision unless `status` says otherwise)."""
        flt = approvals.ApprovalFilter(store=args.get("store"), status=args["status"], order=args.get("order"))
        return {"items": [_approval(a, slug) for a, slug in approvals.list_approvals(rt(), flt)]}


@bp.route("/approvals/<int:approval_id>/approve", methods=["POST"])
@requires("approver")
@bp.response(200, Count)
def approve(approval_id: int) -> dict:
    """Approve one awaiting order: it goes on to the ERP. 0 when it was not awaiting."""
    return {"count": approvals.approve(rt(), ids=[approval_id], actor=actor())}


@bp.route("/approvals/<int:approval_id>/reject", methods=["POST"])
@requires("approver")
@bp.arguments(RejectBody)
@bp.response(200, Count)
def reject(body: dict, approval_id: int) -> dict:
    """Reject one awaiting order with a reason: never sent to the ERP, cancelled in the store."""
    return {"count": int(approvals.reject(rt(), approval_id, body["reason"], actor()))}


@bp.route("/approvals/approve", methods=["POST"])
@requires("approver")
@bp.arguments(BulkApproveBody)
@bp.response(200, Count)
def bulk_approve(body: dict) -> dict:
    """Approve every awaiting order the filter matches, once its count is confirmed."""
    flt = approvals.ApprovalFilter(store=body.get("store"), order=body.get("order"))
    matching = approvals.count_awaiting(rt(), flt)
    if matching != body["expected_count"]:
        abort(
            409,
            message=f"the filter now matches {matching} orders awaiting approval, not {body['expected_count']}; "
            "look again and confirm the new count",
        )
    return {"count": approvals.approve(rt(), flt=flt, actor=actor()) if matching else 0}


@bp.route("/customer-matches")
class CustomerMatches(MethodView):
    decorators = [requires("support", "approver")]

    @bp.arguments(MatchQuery, location="query")
    @bp.response(200, MatchList)
    def get(self, args: dict) -> dict:
        """Orders waiting for a person to say whether their buyer is one of the ERP's similar customers."""
        return {"items": [_match(m, slug) for m, slug in customer_matches.list_matches(rt(), args["status"])]}


@bp.route("/customer-matches/<int:match_id>", methods=["POST"])
@requires("support", "approver")
@bp.arguments(DecisionBody)
@bp.response(200, Count)
def decide(body: dict, match_id: int) -> dict:
    """Link the buyer to one of the candidates (`link_to`), or make a new customer (`link_to`: null)."""
    try:
        return {"count": int(customer_matches.decide(rt(), match_id, body["link_to"], actor()))}
    except customer_matches.NotACandidate as exc:
        abort(422, message=str(exc))
