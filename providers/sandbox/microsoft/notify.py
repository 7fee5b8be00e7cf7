"""Graph's outbound side: the validation handshake, change and lifecycle notifications.

https://learn.microsoft.com/graph/change-notifications-delivery-webhooks and
.../change-notifications-lifecycle-events . Everything leaves through the shared
`Delivery`, so drop/duplicate/delay knobs, retries and the delivery log apply.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from yarl import URL

from providers.sandbox.context import SandboxContext
from providers.sandbox.delivery import RetryPolicy
from providers.sandbox.microsoft.errors import GraphError
from providers.sandbox.microsoft.events import StoredEvent
from providers.sandbox.microsoft.subscriptions import Subscription, Subscriptions

TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"  # the tenant Microsoft uses for personal accounts
LIFECYCLE_EVENTS = frozenset({"reauthorizationRequired", "subscriptionRemoved", "missed"})
VALIDATION_TEXT = "Validation: Testing client application reachability for subscription Request-Id: "
JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


def _stamp(sub: Subscription) -> str:
    """subscriptionExpirationDateTime as notifications carry it (with an offset)."""
    expires = sub.expires
    return expires.strftime("%Y-%m-%dT%H:%M:%S.") + f"{expires.microsecond:06d}0+00:00"


def change_item(sub: Subscription, user_id: str, event: StoredEvent, change_type: str) -> dict[str, Any]:
    """One changeNotification (basic, without resource data)."""
    path = f"Users/{user_id}/Events/{event.id}"
    return {
        "subscriptionId": sub.id,
        "subscriptionExpirationDateTime": _stamp(sub),
        "changeType": change_type,
        "resource": path,
        "resourceData": {
            "@odata.type": "#Microsoft.Graph.Event",
            "@odata.id": path,
            "@odata.etag": event.etag,
            "id": event.id,
        },
        "clientState": sub.client_state,
        "tenantId": TENANT_ID,
    }


def lifecycle_item(sub: Subscription, lifecycle_event: str) -> dict[str, Any]:
    """One lifecycle notification."""
    return {
        "subscriptionId": sub.id,
        "subscriptionExpirationDateTime": _stamp(sub),
        "tenantId": TENANT_ID,
        "clientState": sub.client_state,
        "lifecycleEvent": lifecycle_event,
    }


class Notifier:
    """Sends validations and notifications for the Microsoft half."""

    def __init__(self, ctx: SandboxContext, subscriptions: Subscriptions) -> None:
        self.ctx = ctx
        self.subscriptions = subscriptions

    def _policy(self) -> RetryPolicy:
        return RetryPolicy.graph(self.ctx.settings.notification_timeout)

    async def validate(self, url: str) -> None:
        """Graph's handshake: the receiver must echo the decoded token as 200 text in time."""
        # Graph's tokens contain spaces and colons, so an echo that is not URL-decoded fails.
        token = VALIDATION_TEXT + str(uuid.uuid4())
        target = str(URL(url).update_query(validationToken=token))
        status, text = await self.ctx.delivery.call(
            "microsoft",
            target,
            headers={"Content-Type": "text/plain; charset=utf-8"},
            wait_s=self.ctx.settings.validation_timeout,
        )
        if status is None:
            raise GraphError(400, "InvalidRequest", "Subscription validation request timed out.")
        if status != 200:
            raise GraphError(
                400,
                "InvalidRequest",
                f"Subscription validation request failed. HTTP status code is '{status}'. "
                "Notification endpoint must respond with 200 OK to validation request.",
            )
        if text != token:
            raise GraphError(
                400,
                "InvalidRequest",
                "Subscription validation request failed. Response must exactly match validationToken query parameter.",
            )

    def changed(self, user_id: str, event: StoredEvent, change_type: str) -> None:
        """Notify every live subscription that sees this change (one POST each)."""
        now = self.ctx.clock()
        for sub in self.subscriptions.live_for(user_id, event.calendar_id, change_type, now):
            body = {"value": [change_item(sub, user_id, event, change_type)]}
            self._send(sub.notification_url, body)

    def lifecycle(self, sub: Subscription, lifecycle_event: str) -> None:
        """Send a lifecycle notification; subscriptionRemoved also deletes the subscription."""
        if lifecycle_event not in LIFECYCLE_EVENTS:
            raise ValueError(f"lifecycleEvent must be one of {sorted(LIFECYCLE_EVENTS)}")
        if sub.lifecycle_url is None:
            raise ValueError("the subscription has no lifecycleNotificationUrl")
        self._send(sub.lifecycle_url, {"value": [lifecycle_item(sub, lifecycle_event)]})
        if lifecycle_event == "subscriptionRemoved":
            self.subscriptions.remove(sub.id)

    def _send(self, url: str, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.ctx.delivery.send("microsoft", url, headers=JSON_HEADERS, body=payload, policy=self._policy())
