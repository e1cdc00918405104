"""A store whose app was uninstalled (its platform's uninstall webhook): disconnected, never silently broken.

Only the body is signed, and a Shop object is the body of other topics too (`shop/update`): a replayed
one must not cut a working store off. So the store is disconnected only once the Admin API refuses our
token (or an admin confirms the event on the console); until then the event is parked with that reason.
Disconnecting drops the store's tokens (the app's client ID and secret stay, for reconnecting), marks
the store, stops every call to it (clients refuse, scheduled work skips it) and keeps taking its
webhooks: shop/redact arrives 48 h after an uninstall. Connecting again clears the mark and runs the
order reconciliation from its cursor, so what happened in between is read back.
"""

from __future__ import annotations

from adapters.clock import utcnow
from connector.base.audit import audit
from connector.base.clients import forget
from connector.base.models import Store
from connector.base.runtime import Runtime, StoreInfo
from connector.orders.compliance import NeedsConfirmation, confirmed_by, uninstalled, webhook_actor
from platforms.registry import platform

TOKEN = "access_token"  # the token a store's API takes (besides what its platform issues and renews)


def app_uninstalled(rt: Runtime, store: StoreInfo, _payload: dict, event_id: int) -> dict:
    actor = confirmed_by(rt, event_id)
    if actor is None and uninstalled(store):
        actor = webhook_actor(store, event_id)
    if actor is None:
        raise NeedsConfirmation(
            "app/uninstalled would disconnect this store, but its Admin API still accepts our token, so the app "
            "is installed: this delivery may be a replay. Nothing was changed. If the merchant did uninstall "
            "the app, an admin can confirm it on this event's page"
        )
    disconnect(rt, store.id, actor)
    return {"note": f"store disconnected by {actor}: its tokens were dropped; reconnect it on /config"}


def disconnect(rt: Runtime, store_id: int, actor: str) -> None:
    with rt.sessions.begin() as session:
        row = session.get_one(Store, store_id, with_for_update=True)
        secrets = rt.box.open(row.secrets)
        tokens = {TOKEN, *platform(row.platform).issued_secrets}
        row.secrets = rt.box.seal({k: v for k, v in secrets.items() if k not in tokens})
        row.disconnected_at = utcnow()
        slug = row.slug

    forget(store_id)  # a cached client would still hold the old token
    audit(rt, actor, "store.disconnected", slug, {"reason": "app/uninstalled"})
