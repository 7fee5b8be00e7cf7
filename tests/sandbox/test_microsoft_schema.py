"""The JSON the sandbox returns matches Microsoft's published schema for event, calendar, subscription.

Two independent checks: a compact field → type table copied from the v1.0 resource
pages (learn.microsoft.com/graph/api/resources/{event,calendar,subscription}), and the
msgraph-sdk's generated models (built from Graph's CSDL), which must parse every field
with nothing left over in `additional_data`.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kiota_abstractions.serialization import Parsable
from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
from msgraph.generated.models.calendar import Calendar
from msgraph.generated.models.event import Event
from msgraph.generated.models.subscription import Subscription

from tests.sandbox.test_microsoft_support import WINDOW, Graph, Receiver, new_graph, timed

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")  # createdDateTime etc.
LOCAL = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}$")  # dateTimeTimeZone.dateTime
ODATA_ANNOTATIONS = {"@odata.etag", "@odata.context"}

# field -> accepted JSON types ("dtz" = dateTimeTimeZone, "stamp" = UTC DateTimeOffset).
EVENT_TABLE: dict[str, tuple[Any, ...]] = {
    "@odata.etag": (str,),
    "id": (str,),
    "createdDateTime": ("stamp",),
    "lastModifiedDateTime": ("stamp",),
    "changeKey": (str,),
    "categories": (list,),
    "transactionId": (str, None),
    "originalStartTimeZone": (str,),
    "originalEndTimeZone": (str,),
    "iCalUId": (str,),
    "reminderMinutesBeforeStart": (int,),
    "isReminderOn": (bool,),
    "hasAttachments": (bool,),
    "subject": (str,),
    "bodyPreview": (str,),
    "importance": ("low", "normal", "high"),
    "sensitivity": ("normal", "personal", "private", "confidential"),
    "isAllDay": (bool,),
    "isCancelled": (bool,),
    "isOrganizer": (bool,),
    "responseRequested": (bool,),
    "seriesMasterId": (str, None),
    "showAs": ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown"),
    "type": ("singleInstance", "occurrence", "exception", "seriesMaster"),
    "webLink": (str,),
    "onlineMeetingUrl": (str, None),
    "isOnlineMeeting": (bool,),
    "onlineMeetingProvider": ("unknown", "teamsForBusiness", "skypeForBusiness", "skypeForConsumer"),
    "allowNewTimeProposals": (bool,),
    "isDraft": (bool,),
    "hideAttendees": (bool,),
    "responseStatus": (dict,),
    "body": (dict,),
    "start": ("dtz",),
    "end": ("dtz",),
    "originalStart": ("offset",),
    "location": (dict,),
    "locations": (list,),
    "recurrence": (dict, None),
    "attendees": (list,),
    "organizer": (dict,),
    "onlineMeeting": (dict, None),
}
OPTIONAL_EVENT = {"transactionId", "originalStart"}  # only when set / only on instances
CALENDAR_TABLE: dict[str, tuple[Any, ...]] = {
    "id": (str,),
    "name": (str,),
    "color": (str,),
    "hexColor": (str,),
    "isDefaultCalendar": (bool,),
    "changeKey": (str,),
    "canShare": (bool,),
    "canViewPrivateItems": (bool,),
    "canEdit": (bool,),
    "allowedOnlineMeetingProviders": (list,),
    "defaultOnlineMeetingProvider": (str,),
    "isTallyingResponses": (bool,),
    "isRemovable": (bool,),
    "owner": (dict,),
}
SUBSCRIPTION_TABLE: dict[str, tuple[Any, ...]] = {
    "id": (str,),
    "resource": (str,),
    "applicationId": (str,),
    "changeType": (str,),
    "clientState": (str, None),
    "notificationUrl": (str,),
    "notificationQueryOptions": (str, None),
    "lifecycleNotificationUrl": (str, None),
    "expirationDateTime": ("stamp",),
    "creatorId": (str,),
    "includeResourceData": (bool,),
    "latestSupportedTlsVersion": ("v1_0", "v1_1", "v1_2", "v1_3"),
    "encryptionCertificate": (str, None),
    "encryptionCertificateId": (str, None),
    "notificationUrlAppId": (str, None),
}


def matches(value: Any, accepted: tuple[Any, ...]) -> bool:
    """Whether a JSON value fits one of the accepted kinds."""
    for kind in accepted:
        if kind is None and value is None:
            return True
        if kind is bool and isinstance(value, bool):
            return True
        if kind in (str, int, list, dict) and isinstance(value, kind) and not isinstance(value, bool):
            return True
        if kind == "stamp" and isinstance(value, str) and STAMP.match(value):
            return True
        if kind == "offset" and isinstance(value, str) and datetime.fromisoformat(value.replace("Z", "+00:00")):
            return True
        if kind == "dtz" and isinstance(value, dict) and set(value) == {"dateTime", "timeZone"}:
            return bool(LOCAL.match(value["dateTime"]))
        if isinstance(kind, str) and value == kind:
            return True
    return False


def check_table(item: dict[str, Any], table: dict[str, tuple[Any, ...]], optional: set[str]) -> None:
    """Every field known, well-typed, and every non-optional field present."""
    extra = set(item) - set(table) - ODATA_ANNOTATIONS
    assert not extra, f"fields Graph does not define: {extra}"
    missing = set(table) - set(item) - optional
    assert not missing, f"fields Graph always returns but we do not: {missing}"
    for name, value in item.items():
        if name in table:
            assert matches(value, table[name]), f"{name}={value!r} is not {table[name]}"


def check_sdk(item: dict[str, Any], model: type[Parsable]) -> None:
    """The SDK's generated model parses every field, leaving only OData annotations over."""
    node = JsonParseNodeFactory().get_root_parse_node("application/json", json.dumps(item).encode())
    parsed = node.get_object_value(model)  # type: ignore[type-var]
    leftovers = set(getattr(parsed, "additional_data", {}) or {}) - ODATA_ANNOTATIONS
    assert not leftovers, f"fields the SDK model does not know: {leftovers}"


@pytest.fixture
async def graph(sandbox: Any) -> AsyncIterator[Graph]:
    """A Graph caller for a fresh mailbox."""
    caller = await new_graph(sandbox)
    yield caller
    await caller.close()


async def test_event_shapes(graph: Graph) -> None:
    single = timed("2026-12-01T09:00:00", "2026-12-01T10:00:00", subject="s", transactionId="t")
    daily = {
        "pattern": {"type": "daily", "interval": 1},
        "range": {"type": "numbered", "startDate": "2026-12-02", "numberOfOccurrences": 2},
    }
    series = timed("2026-12-02T09:00:00", "2026-12-02T10:00:00", "Pacific Standard Time", recurrence=daily)
    created = [(await graph.call("POST", "/me/events", json=body)).body for body in (single, series)]
    view = (await graph.call("GET", "/me/calendarView", params=WINDOW)).body["value"]
    delta = (await graph.call("GET", "/me/calendarView/delta", params=WINDOW)).body["value"]
    items = [*created, *view, *delta]
    assert {i["type"] for i in items} == {"singleInstance", "seriesMaster", "occurrence"}
    for item in items:
        item.pop("@odata.context", None)
        check_table(item, EVENT_TABLE, OPTIONAL_EVENT)
        check_sdk(item, Event)
    occurrence = next(i for i in view if i["type"] == "occurrence")
    assert occurrence["seriesMasterId"] == created[1]["id"] and "originalStart" in occurrence
    assert created[1]["recurrence"]["range"]["recurrenceTimeZone"] == "Pacific Standard Time"


async def test_calendar_shapes(graph: Graph) -> None:
    calendars = (await graph.call("GET", "/me/calendars")).body["value"]
    one = (await graph.call("GET", "/me/calendar")).body
    one.pop("@odata.context")
    for item in [*calendars, one]:
        check_table(item, CALENDAR_TABLE, set())
        check_sdk(item, Calendar)


async def test_subscription_shape(graph: Graph) -> None:
    hook = await Receiver().start()
    try:
        expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "changeType": "created",
            "notificationUrl": f"{hook.url}/n",
            "resource": "me/events",
            "expirationDateTime": expires,
        }
        created = (await graph.call("POST", "/subscriptions", json=body)).body
    finally:
        await hook.stop()
    created.pop("@odata.context")
    check_table(created, SUBSCRIPTION_TABLE, set())
    check_sdk(created, Subscription)


def test_the_table_agrees_with_the_sdk_models() -> None:
    """The checked-in table names only properties the SDK's Event model defines."""
    known = set(Event().get_field_deserializers())
    assert set(EVENT_TABLE) - ODATA_ANNOTATIONS <= known
    assert set(CALENDAR_TABLE) <= set(Calendar().get_field_deserializers())
    assert set(SUBSCRIPTION_TABLE) <= set(Subscription().get_field_deserializers())
