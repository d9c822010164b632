"""Wire protocol constants and the binary frame header (docs/protocol.md, design.md contract 3)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

PROTOCOL_VERSION = 1
FRAME_MAGIC = b"SSTF"
FRAME_HEADER_VERSION = 1
FRAME_HEADER = struct.Struct("<4sHHIIHHIddffff")
"""magic, version, header_bytes, frame_number, epoch, width, height, flags,
media_time_s, send_time_ms, plan_ms, render_ms, encode_ms, output_to_send_ms."""

FLAG_PREVIEW = 1
MAX_TEXT_MESSAGE_BYTES = 256 * 1024
CLIENT_QUEUE_FRAMES = 2

CLIENT_MESSAGE_TYPES = (
    "hello",
    "set",
    "mask",
    "destination",
    "transport",
    "position",
    "load_track",
    "get_state",
    "ping",
    "stream",
)

ERROR_CODES = (
    "malformed",
    "too_large",
    "unknown_type",
    "unknown_path",
    "invalid_value",
    "out_of_range",
    "unknown_track",
    "track_not_ready",
    "no_track",
    "unsupported_protocol",
    "internal",
)


class ProtocolError(ValueError):
    """A client message the server refuses; becomes an `error` reply, never a closed session."""

    def __init__(self, code: str, message: str, path: str | None = None):
        if code not in ERROR_CODES:
            raise ValueError(f"unknown protocol error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = path

    def to_message(self, request_id: object = None) -> dict:
        out: dict = {"type": "error", "code": self.code, "message": self.message}
        if request_id is not None:
            out["id"] = request_id
        if self.path is not None:
            out["path"] = self.path
        return out


@dataclass(frozen=True)
class FrameHeader:
    """The fixed header in front of every binary frame's JPEG bytes."""

    frame_number: int
    epoch: int
    width: int
    height: int
    flags: int
    media_time_s: float
    send_time_ms: float
    plan_ms: float
    render_ms: float
    encode_ms: float
    output_to_send_ms: float

    def pack(self) -> bytes:
        return FRAME_HEADER.pack(
            FRAME_MAGIC,
            FRAME_HEADER_VERSION,
            FRAME_HEADER.size,
            self.frame_number & 0xFFFFFFFF,
            self.epoch & 0xFFFFFFFF,
            self.width,
            self.height,
            self.flags,
            self.media_time_s,
            self.send_time_ms,
            self.plan_ms,
            self.render_ms,
            self.encode_ms,
            self.output_to_send_ms,
        )

    @classmethod
    def unpack(cls, data: bytes) -> tuple[FrameHeader, bytes]:
        """Split a binary frame message into its header and JPEG bytes; ValueError if it is not one."""
        if len(data) < FRAME_HEADER.size:
            raise ValueError(f"frame message of {len(data)} bytes is shorter than the {FRAME_HEADER.size}-byte header")
        magic, version, header_bytes, *fields = FRAME_HEADER.unpack_from(data)
        if magic != FRAME_MAGIC:
            raise ValueError(f"not a sonosteer frame (magic {magic!r})")
        if version < 1 or header_bytes < FRAME_HEADER.size:
            raise ValueError(f"bad frame header (version {version}, {header_bytes} bytes)")
        return cls(*fields), bytes(data[header_bytes:])
