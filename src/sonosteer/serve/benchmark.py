"""`sonosteer bench serve`: delivery on loopback with real WebSocket clients, appended to BENCHMARKS.md.

Measures, per render rate and client count: the engine's own rate, the rate the render loop
achieved, delivered FPS per client, engine-output-to-send time (median, p99, from the frame
headers) and frame age at receipt (client receive clock minus the header's send time; one
machine, one clock). Clients run in a separate process (`bench_client`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sonosteer.bench_report import append_benchmark
from sonosteer.blocks import BLOCK_NAMES

ENGINE_SAMPLES = 60


DEMO_TRACK = Path(__file__).resolve().parents[3] / "demo" / "energetic_electronic.opus"


def feature_ids(engine) -> list[int]:
    """One live (not dead) feature per block, spread over the SAE's range."""
    ids = []
    for i, block in enumerate(BLOCK_NAMES):
        info = engine.features()[block]
        fid = (100 + 1000 * i) % info.n_features
        while fid in info.dead_ids:
            fid = (fid + 1) % info.n_features
        ids.append(fid)
    return ids


def performer_scene(stems: list[str], ids: list[int]) -> dict:
    """A scene update that keeps every axis busy: four linked blocks, two prompts, reactive blend."""
    wanted = ["drums", "bass", "other", "vocals"]
    targets = [s if s in stems else stems[0] for s in wanted]
    return {
        "blocks": {
            name: {"link_target": target, "feature_id": fid}
            for name, target, fid in zip(BLOCK_NAMES, targets, ids)
        },
        "prompt": {"a": "a neon city at night", "b": "a foggy forest", "mode": "reactive"},
    }


def engine_rate(engine, controls, quality: int, samples: int = ENGINE_SAMPLES) -> tuple[float, float, float]:
    """(median wall ms, p99 wall ms, median CPU ms of the calling thread) per apply + render alone
    (render_jpeg where the engine encodes its frames itself), after a few unmeasured frames (the
    first embeds the prompts, copies the features)."""
    render = (lambda: engine.render_jpeg(quality)) if getattr(engine, "encodes_jpeg", False) else engine.render
    for _ in range(5):
        engine.apply(controls)
        render()
    wall, cpu = [], []
    for i in range(samples):
        controls.media_time_s = i / 50.0
        t0, c0 = time.perf_counter(), time.thread_time()
        engine.apply(controls)
        render()
        wall.append((time.perf_counter() - t0) * 1000.0)
        cpu.append((time.thread_time() - c0) * 1000.0)
    return float(np.median(wall)), float(np.percentile(wall, 99)), float(np.median(cpu))


def lit_controls(ids: list[int]):
    """FrameControls with all four blocks steering (strength 20, different masks), two prompts."""
    from sonosteer.bridge.frame_controls import FrameControls
    from sonosteer.bridge.masks import preset_mask

    fc = FrameControls(prompt_a="a neon city at night", prompt_b="a foggy forest", prompt_blend=0.3)
    for bc, fid, preset in zip(fc.blocks, ids, ("floor", "ceiling", "center", "fill")):
        bc.feature_id, bc.strength, bc.mask = fid, 20.0, preset_mask(preset)
    return fc


def measure(server, url: str, n_clients: int, seconds: float) -> dict:
    """Run n clients in another process for `seconds`; returns per-client results plus the loop's rate."""
    frames_before = server.render_loop.frame_number
    skipped_before = server.render_loop.skipped
    t0, cpu0 = time.monotonic(), time.process_time()
    proc = subprocess.run(
        [sys.executable, "-m", "sonosteer.serve.bench_client", url, str(n_clients), str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark clients failed:\n{proc.stderr}")
    elapsed, cpu = time.monotonic() - t0, time.process_time() - cpu0
    clients = json.loads(proc.stdout)
    frames = max(1, server.render_loop.frame_number - frames_before)
    return {
        "clients": clients,
        "render_fps": frames / elapsed,
        "cpu_ms_per_frame": cpu * 1000.0 / frames,
        "skipped": server.render_loop.skipped - skipped_before,
    }


def run_benchmark(args) -> int:
    from sonosteer.audio.pipeline import analysis_key, analyze_file
    from sonosteer.serve.server import LiveServer, ServerConfig

    audio = args.audio or DEMO_TRACK
    if not audio.is_file():
        print(f"error: {audio}: no such file; pass --audio FILE", file=sys.stderr)
        return 2
    client_counts = [int(c) for c in str(args.clients).split(",") if c.strip()]
    rates = [float(r) for r in str(args.fps).split(",") if r.strip()]
    print(f"analysing {audio} (cached after the first run) ...", file=sys.stderr)
    bundle = analyze_file(audio)
    engine, reason = _make_engine(args)
    print(f"renderer: {engine.label} ({reason}); warming up ...", file=sys.stderr)
    engine.warmup()
    ids = feature_ids(engine)
    engine_ms, engine_p99, engine_cpu_ms = engine_rate(engine, lit_controls(ids), ServerConfig().jpeg_quality)
    rows = []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="sonosteer-bench-serve-") as tmp:
        for fps in rates:
            config = ServerConfig(data_root=Path(tmp) / f"data-{fps:g}", fps=fps)
            server = LiveServer(engine, config, engine_reason=reason)
            url = server.start_in_thread()
            track = server.add_track_file(audio, analysis_key(audio)[0], bundle)
            server.sessions.load(track.id).update([performer_scene(bundle.stems, ids)])
            try:
                measure(server, url, 1, 1.0)  # warm the pipeline and the latency estimates
                for n in client_counts:
                    result = measure(server, url, n, args.seconds)
                    rows.append(_row(engine, engine_ms, fps, n, result))
                    print(f"  fps {fps:g}, {n} client(s): {rows[-1]}", file=sys.stderr)
            finally:
                server.stop()
    engine.close()
    append_benchmark(
        "Live server delivery (sonosteer bench serve)",
        f"{engine.label}, {args.size}x{args.size}, JPEG quality {ServerConfig().jpeg_quality}, loopback; track {audio.name}; "
        f"clients are WebSocket clients in a separate process, client 0 plays and reports its position "
        f"at 10 Hz; {args.seconds:g} s per row; load average {load:.1f} at the start (shared machines are noisy). "
        f"Engine alone (apply + render, with the nvJPEG encode where the engine encodes), all four blocks steering: {engine_ms:.2f} ms median, {engine_p99:.2f} ms p99 wall, "
        f"{engine_cpu_ms:.2f} ms CPU per frame. output->send = engine output to handing the frame to the "
        f"client's socket (frame header); age = client receive time minus the header's send time; server CPU = the server process's CPU time "
        f"(plan, render, encode, delivery to all clients) per rendered frame. Target fps 0 = uncapped.",
        [
            "engine", "target fps", "clients", "engine fps alone", "render fps", "delivered fps per client (min/median)",
            "encode ms median", "output->send ms median", "output->send ms p99", "age at receipt ms median", "age at receipt ms p99",
            "skipped renders", "server CPU ms per frame",
        ],
        rows,
        path=args.out,
    )
    return 0


def _row(engine, engine_ms: float, fps: float, n: int, result: dict) -> list:
    clients = result["clients"]
    delivered = [c.get("fps", 0.0) for c in clients]
    outputs = np.concatenate([np.asarray(c.get("output_to_send_ms", []), float) for c in clients] or [np.zeros(1)])
    encodes = np.concatenate([np.asarray(c.get("encode_ms", []), float) for c in clients] or [np.zeros(1)])
    ages = np.concatenate([np.asarray(c.get("ages_ms", []), float) for c in clients] or [np.zeros(1)])
    return [
        engine.kind,
        "uncapped" if fps <= 0 else f"{fps:g}",
        n,
        f"{1000.0 / engine_ms:.1f}",
        f"{result['render_fps']:.1f}",
        f"{min(delivered):.1f} / {float(np.median(delivered)):.1f}",
        f"{np.median(encodes):.2f}",
        f"{np.median(outputs):.2f}",
        f"{np.percentile(outputs, 99):.2f}",
        f"{np.median(ages):.2f}",
        f"{np.percentile(ages, 99):.2f}",
        result["skipped"],
        f"{result['cpu_ms_per_frame']:.2f}",
    ]


def _make_engine(args):
    """The renderer to measure: as `sonosteer play` builds it, or SDXL-Turbo with random weights."""
    from sonosteer.engine.cli_options import settings_from_args

    settings = settings_from_args(args, height=args.size, width=args.size)
    if args.random_weights:
        import torch

        from sonosteer.engine.bench import random_parts
        from sonosteer.engine.devices import resolve_device, resolve_dtype
        from sonosteer.engine.steered_engine import SteeredEngine

        device = resolve_device(settings.device)
        torch.manual_seed(0)
        tiny = args.random_weights == "tiny"
        engine = SteeredEngine(random_parts(tiny, device, resolve_dtype(settings.dtype, device)), settings)
        size = "tiny (a CPU check of the path)" if tiny else "full-size"
        return engine, f"{size} SDXL-Turbo architecture with random weights (speed does not depend on their values)"
    from sonosteer.engine.factory import create_renderer

    choice = create_renderer(args.engine, settings)
    return choice.renderer, choice.reason
