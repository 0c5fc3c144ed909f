"""``sip_trace``: every SIP message received and sent, whole, in the log (logger
``sipsvc.sip.trace``), with the values of Authorization and Proxy-Authorization redacted.

The trace is a subclass of the endpoint, chosen once when the app is built: with the trace off
the plain ``SipEndpoint`` runs and the hot path does not even test a flag.
"""

from __future__ import annotations

import logging

from ..logs import TRACE_LOGGER, call_id_of, redact
from ..registrar.policy import Source
from ..sip.message import Request, Response
from .endpoint import SipEndpoint, Target

log = logging.getLogger(TRACE_LOGGER)


def _trace(direction: str, transport: str, peer: tuple, data: bytes) -> None:
    arrow = "from" if direction == "in" else "to"
    log.info("SIP %s %s %s:%s (%d bytes)\n%s", transport, arrow, peer[0], peer[1], len(data), redact(data),
             extra={"direction": direction, "transport": transport, "peer": f"{peer[0]}:{peer[1]}",
                    "call_id": call_id_of(data)})


class TracingSipEndpoint(SipEndpoint):
    def datagram_received(self, data: bytes, address: tuple) -> None:
        _trace("in", "udp", address, data)
        super().datagram_received(data, address)

    def message_received(self, message: Request | Response, source: Source, target: Target) -> None:
        if source.transport != "udp":  # UDP was traced as it arrived, byte for byte
            _trace("in", source.transport, (source.ip, source.port), message.to_bytes())
        super().message_received(message, source, target)

    def _send(self, message: Request | Response, target: Target) -> None:
        _trace("out", target.transport, target.address, message.to_bytes())
        super()._send(message, target)
