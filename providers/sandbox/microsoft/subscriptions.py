"""Graph subscription semantics: records, lifetime rules, which changes a subscription sees.

https://learn.microsoft.com/graph/api/resources/subscription . No HTTP here; the
validation handshake and deliveries live in `notify.py`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from providers.sandbox.microsoft.errors import GraphError
from providers.sandbox.microsoft.times import parse_stamp, utc_stamp

MIN_MINUTES = 45  # Graph silently raises shorter requests to 45 minutes
MAX_PER_MAILBOX = 1000  # active Outlook subscriptions per mailbox
CHANGE_TYPES = frozenset({"created", "updated", "deleted"})
# Event resources a subscription may watch: the whole mailbox or one calendar.
RESOURCE = re.compile(
    r"^/?(?:me|users/(?P<user>[^/]+))/(?:events|(?P<default>calendar)/events|calendars/(?P<cal>[^/]+)/events)$",
    re.IGNORECASE,
)


@dataclass
class Subscription:
    """One change-notification subscription."""

    id: str
    user_id: str
    application_id: str
    resource: str
    calendar_id: str | None  # None = every calendar of the mailbox
    change_types: frozenset[str]
    change_type: str  # as the client wrote it
    notification_url: str
    lifecycle_url: str | None
    client_state: str | None
    expires: datetime

    def json(self) -> dict[str, Any]:
        """The subscription as Graph renders it."""
        return {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity",
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.application_id,
            "changeType": self.change_type,
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": utc_stamp(self.expires),
            "creatorId": self.user_id,
            "includeResourceData": False,
            "latestSupportedTlsVersion": "v1_2",
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
            "notificationUrlAppId": None,
        }

    def sees(self, calendar_id: str, change_type: str) -> bool:
        """Whether a change of this type in this calendar is notified."""
        in_scope = self.calendar_id is None or self.calendar_id == calendar_id
        return in_scope and change_type in self.change_types


def _bad(message: str) -> GraphError:
    return GraphError(400, "InvalidRequest", message)


def expiry(raw: Any, now: datetime, max_minutes: int) -> datetime:
    """The expiry Graph grants: raised to the 45-minute floor, 400 beyond the cap."""
    if not raw:
        raise _bad("expirationDateTime is a required property for subscription creation.")
    wanted = parse_stamp(str(raw))
    if wanted <= now:
        raise _bad("Subscription expiration can only be in the future.")
    if wanted > now + timedelta(minutes=max_minutes):
        raise GraphError(
            400,
            "ExtensionError",
            f"Subscription expiration can only be {max_minutes} minutes in the future.",
        )
    return max(wanted, now + timedelta(minutes=MIN_MINUTES))


def change_types(raw: Any) -> frozenset[str]:
    """Parse a changeType list such as "created,updated,deleted"."""
    parts = frozenset(p.strip() for p in str(raw or "").split(",") if p.strip())
    if not parts or not parts <= CHANGE_TYPES:
        raise _bad(f"Invalid changeType '{raw}'.")
    return parts


def check_url(url: Any, name: str, allow_http: bool) -> str:
    """A notification URL must be absolute HTTPS (http allowed for loopback sandboxes)."""
    text = str(url or "")
    if text.startswith("https://") or (allow_http and text.startswith("http://")):
        return text
    raise _bad(f"The {name} must be an https URL.")


def build(
    body: dict[str, Any],
    *,
    user_id: str,
    application_id: str,
    calendar_ids: set[str],
    default_calendar_id: str,
    now: datetime,
    max_minutes: int,
    allow_http: bool,
) -> Subscription:
    """A validated subscription from a POST /subscriptions body (not yet handshaken)."""
    resource = str(body.get("resource") or "")
    match = RESOURCE.match(resource)
    if match is None:
        raise _bad(f"Resource '{resource}' is not supported for this subscription type.")
    calendar_id = default_calendar_id if match.group("default") else match.group("cal")
    if calendar_id is not None and calendar_id not in calendar_ids:
        raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
    client_state = body.get("clientState")
    if client_state is not None and len(str(client_state)) > 128:
        raise _bad("clientState must be at most 128 characters.")
    lifecycle = body.get("lifecycleNotificationUrl")
    return Subscription(
        id=str(uuid.uuid4()),
        user_id=user_id,
        application_id=application_id,
        resource=resource,
        calendar_id=calendar_id,
        change_types=change_types(body.get("changeType")),
        change_type=str(body.get("changeType")),
        notification_url=check_url(body.get("notificationUrl"), "notificationUrl", allow_http),
        lifecycle_url=check_url(lifecycle, "lifecycleNotificationUrl", allow_http) if lifecycle else None,
        client_state=None if client_state is None else str(client_state),
        expires=expiry(body.get("expirationDateTime"), now, max_minutes),
    )


class Subscriptions:
    """Every subscription of the Microsoft half, by id."""

    def __init__(self) -> None:
        self.by_id: dict[str, Subscription] = {}

    def reset(self) -> None:
        """Forget all subscriptions."""
        self.by_id.clear()

    def add(self, sub: Subscription, now: datetime) -> None:
        """Keep a subscription that passed validation (1000 live per mailbox at most)."""
        live = [s for s in self.by_id.values() if s.user_id == sub.user_id and s.expires > now]
        if len(live) >= MAX_PER_MAILBOX:
            raise GraphError(
                403,
                "ExtensionError",
                "The maximum number of subscriptions for this mailbox has been reached.",
            )
        self.by_id[sub.id] = sub

    def get(self, sub_id: str, user_id: str | None = None) -> Subscription:
        """One subscription (404 if unknown or someone else's)."""
        sub = self.by_id.get(sub_id)
        if sub is None or (user_id is not None and sub.user_id != user_id):
            raise GraphError(404, "ResourceNotFound", f"The object was not found: subscription '{sub_id}'.")
        return sub

    def remove(self, sub_id: str) -> None:
        """Delete a subscription (missing is fine)."""
        self.by_id.pop(sub_id, None)

    def for_user(self, user_id: str) -> list[Subscription]:
        """A user's subscriptions (expired ones included until removed, as GET shows them)."""
        return [s for s in self.by_id.values() if s.user_id == user_id]

    def live_for(self, user_id: str, calendar_id: str, change_type: str, now: datetime) -> list[Subscription]:
        """Unexpired subscriptions that see this change."""
        return [
            s
            for s in self.by_id.values()
            if s.user_id == user_id and s.expires > now and s.sees(calendar_id, change_type)
        ]
