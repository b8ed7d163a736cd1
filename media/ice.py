"""ICE set-up for the hub and for in-process test/simulator peers.

Two rules from ARCHITECTURE.md live here:

1. Every peer gets explicit ICE servers (by default none).  aiortc's default is
   Google's public STUN server; on a closed network each gathering then
   stalls for 5 s (see the reference RESULTS.md), so `rtc_configuration()`
   never falls back to it.
2. On a loopback-only machine aioice gathers no candidate at all (it lists
   interfaces and skips 127.0.0.1), and aiortc then never starts ICE.  The
   hub therefore chooses its host addresses itself: `advertise_host_addresses`
   makes each ICE gatherer of a peer connection bind exactly the given
   addresses (e.g. 127.0.0.1) and put them in the SDP.  Call it after
   `setRemoteDescription` / `addTransceiver` and before `setLocalDescription`,
   which is when aiortc gathers.  A browser peer on the same machine needs
   Chromium's `--allow-loopback-in-peer-connection` to pair with it.

`rtc_configuration` also sets the max-bundle policy.  With aiortc's default
("balanced") a second transceiver of the same kind shares the first one's
transport and is marked bundled at creation; when the BUNDLE group later
moves the first one to the primary transport, the second is left behind on a
transport aiortc then stops, and that m-line never carries media (aiortc
1.16; seen with two audio m-lines after a video one).  With max-bundle every
transceiver uses the first one's transport from the start, which is what
every browser negotiates anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aioice.ice import get_host_addresses
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer, RTCIceTransportPolicy, RTCPeerConnection

from media._aiortc_internals import gather_on_addresses, ice_gatherers

logger = logging.getLogger(__name__)

LOOPBACK_ADDRESSES: tuple[str, ...] = ("127.0.0.1",)


def rtc_configuration(ice_servers: Sequence[RTCIceServer] = (), *, relay_only: bool = False) -> RTCConfiguration:
    """Exactly these ICE servers (none by default, never Google's), max-bundle.

    `relay_only`: aiortc's iceTransportPolicy `relay` (aioice's TransportPolicy.RELAY): no host
    or server-reflexive candidate is gathered, only the TURN relay's.
    """
    policy = RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
    return RTCConfiguration(iceServers=list(ice_servers), iceTransportPolicy=policy,
                            bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


def choose_host_addresses(explicit: Sequence[str] | None = None) -> list[str]:
    """The host addresses a peer should advertise.

    An explicit list wins.  Otherwise the machine's interface addresses as
    aioice would pick them; if there are none (only loopback), 127.0.0.1 so a
    loopback-only run still connects.
    """
    if explicit is not None:
        return list(explicit)
    found = get_host_addresses(use_ipv4=True, use_ipv6=True)
    if not found:
        logger.info("no non-loopback interface found; advertising %s", LOOPBACK_ADDRESSES)
        return list(LOOPBACK_ADDRESSES)
    return found


def advertise_host_addresses(pc: RTCPeerConnection, addresses: Sequence[str]) -> None:
    """Make every ICE gatherer of ``pc`` gather host candidates on ``addresses`` only."""
    if not addresses:
        raise ValueError("advertise_host_addresses needs at least one address")
    for gatherer in ice_gatherers(pc):
        gather_on_addresses(gatherer, addresses)
