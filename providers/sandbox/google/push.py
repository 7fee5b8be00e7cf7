"""Google push messages: an empty POST with X-Goog-* headers to a channel's address.

The first message of a channel is `sync` (number 1); each change to the watched
calendar then sends `exists` with a rising message number. Stopped or expired channels
send nothing. Receivers ack with 200/201/202/204/102; 500/502/503/504 are retried.
See https://developers.google.com/workspace/calendar/api/guides/push
"""

from __future__ import annotations

from email.utils import format_datetime

from providers.sandbox.delivery import Delivery, RetryPolicy
from providers.sandbox.google.state import Calendar, CalendarState, Channel


def headers(channel: Channel, state: str) -> dict[str, str]:
    """The header set Google sends (token only when the channel has one)."""
    out = {
        "X-Goog-Channel-ID": channel.id,
        "X-Goog-Message-Number": str(channel.number),
        "X-Goog-Resource-ID": channel.resource_id,
        "X-Goog-Resource-URI": channel.resource_uri,
        "X-Goog-Resource-State": state,
        "X-Goog-Channel-Expiration": format_datetime(channel.expiration, usegmt=True),
    }
    if channel.token is not None:
        out["X-Goog-Channel-Token"] = channel.token
    return out


class Pusher:
    """Turns calendar changes into push messages through the shared Delivery."""

    def __init__(self, state: CalendarState, delivery: Delivery) -> None:
        self.state = state
        self.delivery = delivery

    def send(self, channel: Channel, resource_state: str) -> None:
        """Queue one message and advance the channel's message number."""
        self.delivery.send(
            "google",
            channel.address,
            headers=headers(channel, resource_state),
            policy=RetryPolicy.google(),
        )
        channel.number += 1

    def opened(self, channel: Channel) -> None:
        """The `sync` handshake after a watch call."""
        self.send(channel, "sync")

    def changed(self, cal: Calendar) -> None:
        """One `exists` message per live channel on the calendar."""
        for channel in self.state.live_channels(cal):
            self.send(channel, "exists")
