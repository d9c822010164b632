"""Benchmark clients: N WebSocket clients in one process, reading frames for a while; prints JSON.

Run by `sonosteer bench serve` in a separate process, so the clients do not share the server's
interpreter. Client 0 plays the track and reports its play position ten times a second, as a
browser would. Usage: python -m sonosteer.serve.bench_client URL N_CLIENTS SECONDS
"""

from __future__ import annotations

import json
import sys
import threading
import time

from websockets.sync.client import connect

from sonosteer.serve.protocol import FRAME_HEADER, FrameHeader


def _client(url: str, seconds: float, drive: bool, start: threading.Barrier, out: dict) -> None:
    conn = connect(url.replace("http://", "ws://") + "/ws", max_size=None, open_timeout=20).__enter__()
    json.loads(conn.recv(timeout=20))  # welcome
    start.wait()
    t0 = time.monotonic()
    if drive:
        conn.send(json.dumps({"type": "transport", "action": "play", "position_s": 0.0}))
    next_report = t0
    numbers, ages_ms, outputs_ms, encodes_ms, receive_s = [], [], [], [], []
    while (now := time.monotonic()) < t0 + seconds:
        if drive and now >= next_report:
            conn.send(json.dumps({"type": "position", "position_s": now - t0, "playing": True}))
            next_report += 0.1
        try:
            data = conn.recv(timeout=0.05)
        except TimeoutError:
            continue
        if isinstance(data, str):
            continue
        received_ms = time.time() * 1000.0
        header, _ = FrameHeader.unpack(data[: FRAME_HEADER.size])
        numbers.append(header.frame_number)
        ages_ms.append(received_ms - header.send_time_ms)
        outputs_ms.append(header.output_to_send_ms)
        encodes_ms.append(header.encode_ms)
        receive_s.append(time.monotonic())
    conn.close()
    span = receive_s[-1] - receive_s[0] if len(receive_s) > 1 else 0.0
    out.update(
        frames=len(numbers),
        fps=(len(numbers) - 1) / span if span > 0 else 0.0,
        ages_ms=ages_ms,
        output_to_send_ms=outputs_ms,
        encode_ms=encodes_ms,
        first=numbers[0] if numbers else None,
        last=numbers[-1] if numbers else None,
    )


def main(argv: list[str]) -> int:
    url, n_clients, seconds = argv[0], int(argv[1]), float(argv[2])
    results = [{} for _ in range(n_clients)]
    start = threading.Barrier(n_clients)
    threads = [
        threading.Thread(target=_client, args=(url, seconds, i == 0, start, results[i]), daemon=True)
        for i in range(n_clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 60)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
