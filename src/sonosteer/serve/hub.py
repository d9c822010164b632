"""Delivery to clients: per-client bounded frame queues, control-message queues, broadcasts.

Lives on the server's asyncio loop. Each client has its own sender task; frames go into a
queue of `CLIENT_QUEUE_FRAMES` that drops its oldest frame when full, so a slow or stalled
client loses frames and never slows the render loop or the other clients. Control messages
are never dropped; a client that lets `MAX_PENDING_MESSAGES` of them pile up is disconnected.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket

from sonosteer.serve.encoder import EncodedFrame
from sonosteer.serve.protocol import CLIENT_QUEUE_FRAMES, FrameHeader
from sonosteer.serve.rolling import RateMeter, RollingStats

MAX_PENDING_MESSAGES = 1000


@dataclass
class Client:
    """One connected WebSocket client and its delivery state."""

    id: str
    websocket: WebSocket
    frames_enabled: bool = True
    frames: deque[EncodedFrame] = field(default_factory=lambda: deque(maxlen=CLIENT_QUEUE_FRAMES))
    messages: deque[str] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    delivered: int = 0
    dropped: int = 0
    render_latency_ms: float | None = None
    delivered_rate: RateMeter = field(default_factory=RateMeter)
    output_to_send_ms: RollingStats = field(default_factory=lambda: RollingStats(256))
    closed: bool = False
    task: asyncio.Task | None = None


class Hub:
    """All connected clients; frame fan-out and JSON broadcasts. Use only on the event loop,
    except the `*_threadsafe` methods."""

    def __init__(self, on_first_send: Callable[[int, float], None] | None = None):
        self.clients: dict[str, Client] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ids = itertools.count(1)
        self._on_first_send = on_first_send
        self._last_sent_frame = -1

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    # -- clients -----------------------------------------------------------------------

    def add(self, websocket: WebSocket, frames_enabled: bool = True) -> Client:
        client = Client(id=f"c{next(self._ids)}", websocket=websocket, frames_enabled=frames_enabled)
        self.clients[client.id] = client
        client.task = asyncio.get_running_loop().create_task(self._sender(client), name=f"send-{client.id}")
        return client

    async def remove(self, client: Client) -> None:
        client.closed = True
        self.clients.pop(client.id, None)
        client.wake.set()
        if client.task is not None and client.task is not asyncio.current_task():
            client.task.cancel()
            try:
                await client.task
            except (asyncio.CancelledError, Exception):
                pass

    # -- JSON messages -----------------------------------------------------------------

    def send(self, client: Client, message: dict[str, Any]) -> None:
        self._enqueue(client, json.dumps(message, separators=(",", ":")))

    def broadcast(self, message: dict[str, Any]) -> None:
        text = json.dumps(message, separators=(",", ":"))
        for client in list(self.clients.values()):
            self._enqueue(client, text)

    def broadcast_threadsafe(self, message: dict[str, Any]) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.broadcast, message)

    def _enqueue(self, client: Client, text: str) -> None:
        if client.closed:
            return
        if len(client.messages) >= MAX_PENDING_MESSAGES:
            # The client has not read for a long time: let it go rather than grow without bound.
            client.closed = True
            asyncio.get_running_loop().create_task(self._close(client, 1008, "client too slow"))
            return
        client.messages.append(text)
        client.wake.set()

    # -- frames ------------------------------------------------------------------------

    def publish_frame_threadsafe(self, frame: EncodedFrame) -> None:
        """Called by the encoder thread."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.publish_frame, frame)

    def publish_frame(self, frame: EncodedFrame) -> None:
        for client in self.clients.values():
            if not client.frames_enabled or client.closed:
                continue
            if len(client.frames) == client.frames.maxlen:
                client.dropped += 1  # deque(maxlen) drops the oldest on append
            client.frames.append(frame)
            client.wake.set()

    # -- the sender task ---------------------------------------------------------------

    async def _sender(self, client: Client) -> None:
        ws = client.websocket
        try:
            while not client.closed:
                await client.wake.wait()
                client.wake.clear()
                while not client.closed and (client.messages or client.frames):
                    if client.messages:
                        await ws.send_text(client.messages.popleft())
                        continue
                    frame = client.frames.popleft()
                    now = time.perf_counter()
                    output_to_send_ms = (now - frame.output_time_s) * 1000.0
                    header = FrameHeader(
                        frame_number=frame.frame_number,
                        epoch=frame.epoch,
                        width=frame.width,
                        height=frame.height,
                        flags=frame.flags,
                        media_time_s=frame.media_time_s,
                        send_time_ms=time.time() * 1000.0,
                        plan_ms=frame.plan_ms,
                        render_ms=frame.render_ms,
                        encode_ms=frame.encode_ms,
                        output_to_send_ms=output_to_send_ms,
                    ).pack()
                    client.output_to_send_ms.add(output_to_send_ms)
                    if frame.frame_number > self._last_sent_frame:
                        self._last_sent_frame = frame.frame_number
                        if self._on_first_send is not None:
                            self._on_first_send(frame.frame_number, now)
                    if frame.meters_json is not None:
                        await ws.send_text(frame.meters_json)
                    await ws.send_bytes(header + frame.jpeg)
                    client.delivered += 1
                    client.delivered_rate.tick(time.perf_counter())
        except asyncio.CancelledError:
            raise
        except Exception:
            # The socket went away mid-send; the receive side notices and removes the client.
            client.closed = True

    async def _close(self, client: Client, code: int, reason: str) -> None:
        try:
            await client.websocket.close(code=code, reason=reason)
        except Exception:
            pass
        await self.remove(client)
