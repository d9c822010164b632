"""Receiving uploaded audio: streamed to disk with a size limit (never whole in memory), hashed on the way.

Accepts `multipart/form-data` with the file in field `file` (what a browser form or `fetch` with
FormData sends), or the raw file as the request body with `?name=song.mp3`. Anything over the
limit is refused with 413 as soon as the limit is crossed (or at once, from Content-Length),
and the partial file is removed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

_MULTIPART_OVERHEAD_BYTES = 64 * 1024


class UploadError(ValueError):
    """An upload the server refuses; `status` is the HTTP status, `code` the error code."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class ReceivedUpload:
    path: Path
    filename: str
    sha256: str
    size_bytes: int


class _Sink:
    """Writes the file part to disk, counting and hashing, refusing past the limit."""

    def __init__(self, path: Path, max_bytes: int):
        self.path = path
        self.max_bytes = max_bytes
        self.size = 0
        self.digest = hashlib.sha256()
        self.file = open(path, "wb")

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.max_bytes:
            raise UploadError(413, "too_large", f"the upload is larger than the limit of {self.max_bytes / 1e6:.0f} MB")
        self.digest.update(data)
        self.file.write(data)

    def close(self) -> None:
        self.file.close()


class _MultipartFile:
    """Drives python-multipart's streaming parser; only the part named `file` is kept."""

    def __init__(self, boundary: bytes, open_sink: Callable[[str], _Sink]):
        self._open_sink = open_sink
        self.sink: _Sink | None = None
        self.filename = ""
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""
        self._in_file = False
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
            },
        )

    def _part_begin(self) -> None:
        self._headers, self._in_file = {}, False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if options.get(b"name") == b"file" and self.sink is None:
            self.filename = options.get(b"filename", b"upload").decode("utf-8", "replace")
            self.sink = self._open_sink(self.filename)
            self._in_file = True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file and self.sink is not None:
            self.sink.write(data[start:end])


async def receive_upload(request: Request, max_bytes: int, incoming_path: Callable[[str], Path]) -> ReceivedUpload:
    """Stream the request's file to `incoming_path(filename)`; UploadError (413/400) on refusal."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes + _MULTIPART_OVERHEAD_BYTES:
        raise UploadError(413, "too_large", f"the upload ({int(length) / 1e6:.0f} MB) is larger than the limit of {max_bytes / 1e6:.0f} MB")
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    sinks: list[_Sink] = []

    def open_sink(filename: str) -> _Sink:
        sink = _Sink(incoming_path(filename), max_bytes)
        sinks.append(sink)
        return sink

    multipart: _MultipartFile | None = None
    if content_type == b"multipart/form-data":
        boundary = options.get(b"boundary")
        if not boundary:
            raise UploadError(400, "malformed", "multipart upload without a boundary")
        multipart = _MultipartFile(boundary, open_sink)
        filename = ""
    else:
        filename = request.query_params.get("name", "")
        if not filename:
            raise UploadError(400, "malformed", "send the file as multipart field 'file', or as the body with ?name=FILENAME")
        open_sink(filename)
    try:
        async for chunk in request.stream():
            if multipart is not None:
                multipart.parser.write(chunk)
            else:
                sinks[0].write(chunk)
        if multipart is not None:
            multipart.parser.finalize()
            filename = multipart.filename
        if not sinks:
            raise UploadError(400, "malformed", "the multipart upload has no field named 'file'")
        sink = sinks[0]
        if sink.size == 0:
            raise UploadError(415, "invalid_value", f"{filename or 'the upload'} is empty (0 bytes)")
        sink.close()
        return ReceivedUpload(path=sink.path, filename=filename, sha256=sink.digest.hexdigest(), size_bytes=sink.size)
    except ClientDisconnect:
        _discard(sinks)
        raise UploadError(400, "malformed", "the client went away during the upload") from None
    except UploadError:
        _discard(sinks)
        raise
    except Exception as exc:  # a malformed multipart body
        _discard(sinks)
        raise UploadError(400, "malformed", f"could not read the upload: {exc}") from exc


def _discard(sinks: list[_Sink]) -> None:
    for sink in sinks:
        sink.close()
        sink.path.unlink(missing_ok=True)


def probe_audio(path: Path) -> str | None:
    """None if the file decodes as audio (libsndfile, else PyAV), otherwise a message saying why not."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
        if info.frames > 0 and info.samplerate > 0:
            return None
    except Exception:
        pass
    try:
        import av
    except ImportError:
        return "not an audio file that libsndfile can read (wav, flac, ogg, opus, mp3)"
    try:
        with av.open(str(path)) as container:
            if container.streams.audio:
                return None
    except Exception:
        pass
    return "not an audio file (no audio stream found); upload wav, flac, ogg, opus, mp3, m4a or aac"
