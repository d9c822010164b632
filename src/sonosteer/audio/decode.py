"""Decode an audio file to mono float32 at the analysis rate, block by block, with a chunked hash.

soundfile (libsndfile) reads wav/flac/ogg/opus/mp3 in blocks and soxr resamples them as a stream,
so memory stays at the size of the output; m4a/aac/webm and anything libsndfile refuses go
through PyAV. Every failure becomes an AudioInputError that says what is wrong with the file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from sonosteer.audio.errors import AudioInputError

HASH_CHUNK_BYTES = 1 << 20
BLOCK_FRAMES = 1 << 16


@dataclass(frozen=True)
class DecodedAudio:
    """Mono samples at `sample_rate_hz`, plus what the source file was."""

    samples: np.ndarray
    sample_rate_hz: int
    source_rate_hz: int
    source_channels: int
    decoder: str

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate_hz


def hash_file(path: Path | str) -> str:
    """SHA-256 of the file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def check_readable(path: Path) -> None:
    """Raise AudioInputError for a missing, unreadable or empty file."""
    if not path.exists():
        raise AudioInputError(f"{path}: no such file")
    if not path.is_file():
        raise AudioInputError(f"{path}: is not a file (give the path of an audio file)")
    if path.stat().st_size == 0:
        raise AudioInputError(f"{path}: the file is empty (0 bytes); export or download it again")


def _soundfile_blocks(path: Path) -> tuple[Iterator[np.ndarray], int, int]:
    import soundfile as sf

    info = sf.info(str(path))
    if info.frames == 0:
        raise AudioInputError(f"{path}: the file holds no audio samples")
    expected = int(info.frames)

    def blocks() -> Iterator[np.ndarray]:
        got = 0
        with sf.SoundFile(str(path)) as f:
            while True:
                block = f.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
                if len(block) == 0:
                    break
                got += len(block)
                yield block
        if got < 0.99 * expected:
            raise AudioInputError(
                f"{path}: the file is truncated (its header announces {expected / info.samplerate:.1f} s, "
                f"only {got / info.samplerate:.1f} s decode); export or download it again"
            )

    return blocks(), int(info.samplerate), int(info.channels)


def _pyav_blocks(path: Path) -> tuple[Iterator[np.ndarray], int, int]:
    import av

    container = av.open(str(path))
    streams = container.streams.audio
    if not streams:
        container.close()
        raise AudioInputError(f"{path}: the file has no audio stream")
    stream = streams[0]
    rate, channels = int(stream.rate), int(stream.channels)
    if not rate or not channels:
        container.close()
        raise AudioInputError(f"{path}: the audio stream has no sample rate or channel layout")

    def blocks() -> Iterator[np.ndarray]:
        with container:
            for frame in container.decode(stream):
                arr = frame.to_ndarray()
                if arr.dtype.kind in "iu":
                    arr = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)
                arr = arr.astype(np.float32, copy=False)
                if frame.format.is_planar:
                    yield arr.T
                else:
                    yield arr.reshape(-1, channels)

    return blocks(), rate, channels


def decode_mono(path: Path | str, sample_rate_hz: int) -> DecodedAudio:
    """Decode `path` to mono float32 at `sample_rate_hz` (channels averaged, streamed resampling).

    Raises AudioInputError for missing, empty, corrupt, truncated or non-audio files.
    """
    import soxr

    path = Path(path)
    check_readable(path)
    errors: list[str] = []
    for decoder, opener in (("soundfile", _soundfile_blocks), ("pyav", _pyav_blocks)):
        try:
            blocks, rate, channels = opener(path)
            resampler = None if rate == sample_rate_hz else soxr.ResampleStream(rate, sample_rate_hz, 1, "float32", "HQ")
            parts: list[np.ndarray] = []
            for block in blocks:
                mono = block.mean(axis=1, dtype=np.float32)
                parts.append(mono if resampler is None else resampler.resample_chunk(mono))
            if resampler is not None:
                parts.append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
            samples = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        except AudioInputError:
            raise
        except Exception as exc:  # noqa: BLE001 - every decoder failure is reported together below
            errors.append(f"{decoder}: {exc}")
            continue
        if len(samples) == 0:
            errors.append(f"{decoder}: decoded no samples")
            continue
        if not np.all(np.isfinite(samples)):
            raise AudioInputError(f"{path}: decoding produced NaN/inf samples; the file is corrupt")
        return DecodedAudio(samples.astype(np.float32, copy=False), sample_rate_hz, rate, channels, decoder)
    raise AudioInputError(
        f"{path}: cannot decode this file as audio ({'; '.join(errors)}). "
        "Supported: wav, flac, ogg, opus, mp3, and m4a/aac/webm through PyAV; "
        "if it is one of these, the file is probably corrupt or truncated: export it again."
    )
