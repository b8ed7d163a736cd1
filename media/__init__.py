"""Media: the aiortc media hub -- forwarding, recording, silent monitors, keyframe requests.

Imports nothing else of ours and knows nothing of SQL; it reports through
callbacks set on `MediaHub`.  The aiortc internals that encoded passthrough
needs live only in `media._aiortc_internals`.
"""

from media.errors import MediaError, OfferRejected, PassthroughUnsupported, RecordingError, RoomClosed
from media.hub import MediaHub, Role, SlotInfo
from media.ice import advertise_host_addresses, choose_host_addresses, rtc_configuration
from media.passthrough import EncodedFrame, PassthroughSource, PassthroughTrack, is_keyframe, vp8_frame_size
from media.recorder import RecordedFile, TrackRecorder, recover_unclosed, write_manifest

__all__ = [
    "EncodedFrame",
    "MediaError",
    "MediaHub",
    "OfferRejected",
    "PassthroughSource",
    "PassthroughTrack",
    "PassthroughUnsupported",
    "RecordedFile",
    "RecordingError",
    "Role",
    "RoomClosed",
    "SlotInfo",
    "TrackRecorder",
    "advertise_host_addresses",
    "choose_host_addresses",
    "is_keyframe",
    "recover_unclosed",
    "rtc_configuration",
    "vp8_frame_size",
    "write_manifest",
]
