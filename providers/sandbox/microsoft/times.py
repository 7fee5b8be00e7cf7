"""Graph's time formats: dateTimeTimeZone values, Windows zone names, UTC stamps.

https://learn.microsoft.com/graph/api/resources/datetimetimezone . Graph renders
`dateTime` without an offset and with seven fractional digits, and accepts either
Windows ("Pacific Standard Time") or IANA zone names.
"""

from __future__ import annotations

import functools
import itertools
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import tz_win, win_tz

from providers.sandbox.microsoft.errors import GraphError


def zone(name: str | None) -> tzinfo:
    """The tzinfo for a Windows or IANA zone name; unknown names are a 400 as in Graph."""
    if not name or name in ("UTC", "Coordinated Universal Time", "tzone://Microsoft/Utc"):
        return UTC
    try:
        return ZoneInfo(win_tz.get(name, name))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise GraphError(
            400,
            "TimeZoneNotSupportedException",
            f"A valid TimeZone value must be specified. The following TimeZone value is not supported: '{name}'.",
        ) from exc


def parse_local(value: str) -> datetime:
    """Parse a Graph dateTime: up to 7 fractional digits (Python takes 6), optional offset."""
    text = value.strip().replace("Z", "+00:00")
    if "." in text:
        head, rest = text.split(".", 1)
        digits = "".join(itertools.takewhile(str.isdigit, rest))
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise GraphError(400, "ErrorInvalidRequest", f"Cannot convert '{value}' to DateTime.") from exc


def parse_dtz(value: object, field: str) -> tuple[datetime, str]:
    """A `{dateTime, timeZone}` request value as an aware UTC instant plus the zone name given."""
    if not isinstance(value, dict) or "dateTime" not in value:
        raise GraphError(400, "ErrorInvalidRequest", f"The '{field}' property must be a dateTimeTimeZone.")
    name = str(value.get("timeZone") or "UTC")
    local = parse_local(str(value["dateTime"]))
    if local.tzinfo is None:
        local = local.replace(tzinfo=zone(name))
    return local.astimezone(UTC), name


def render_dtz(instant: datetime, zone_name: str) -> dict[str, str]:
    """Render an instant as Graph's `{dateTime, timeZone}` in the given zone."""
    return {"dateTime": seven_digits(instant.astimezone(zone(zone_name))), "timeZone": zone_name}


def seven_digits(moment: datetime) -> str:
    """The wall-clock time in ISO 8601 with Graph's seven fractional digits and no offset.

    isoformat is far cheaper than strftime, and slicing off an offset than replace(tzinfo=None).
    """
    return moment.isoformat(timespec="microseconds")[:26] + "0"


def parse_query_instant(value: str | None, name: str) -> datetime:
    """A calendarView bound: ISO 8601, offset honoured, no offset meaning UTC."""
    if not value:
        raise GraphError(
            400,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters "
            "StartDateTime and EndDateTime.",
        )
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError as exc:
        raise GraphError(400, "ErrorInvalidParameter", f"The parameter '{name}' is not a valid DateTime.") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def utc_stamp(instant: datetime) -> str:
    """`createdDateTime`-style UTC stamp with seven fractional digits and Z."""
    return _utc_stamp(instant.astimezone(UTC))


# Records share instants (created == modified, one `now` for a bulk load). Keyed in UTC, since
# equal datetimes in another zone can differ by fold and so be different instants.
@functools.lru_cache(maxsize=4096)
def _utc_stamp(utc: datetime) -> str:
    return seven_digits(utc) + "Z"


def parse_stamp(value: str) -> datetime:
    """Parse a DateTimeOffset string such as a subscription's expirationDateTime (UTC if naive)."""
    try:
        parsed = parse_local(value)
    except GraphError as exc:
        raise GraphError(400, "InvalidRequest", f"Cannot convert '{value}' to DateTimeOffset.") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def windows_name(iana: str) -> str:
    """The Windows name for an IANA zone, as Graph reports originalStartTimeZone."""
    return tz_win.get(iana, iana)
