// An in-browser stand-in for the sonosteer server (open the page with ?mock=1): it speaks
// protocol v1 over a fake WebSocket, answers the REST API, plays a synthetic groove and renders
// frames that show the controls (like the preview renderer). For developing and screenshotting
// the UI without Python; the product always talks to the real server.

import { BLOCK_NAMES } from "../blocks.js";
import { Api } from "../net/api.js";
import { packFrame } from "../net/frame_header.js";
import { getPath, pointer, setPath, splitPath } from "../net/session.js";
import { defaultsOf, schemaAt } from "../schema.js";
import { presetMask } from "../masks.js";
import { MOCK_CATEGORIES, mockFeatures } from "./mock_labels.js";
import { renderWav, SynthMeters, SYNTH_BPM, SYNTH_SECONDS } from "./synth_track.js";

const FPS = 30;
const SIZE = 512;
const SCHEMA_URL = new URL("./settings_schema.json", import.meta.url);

export class MockServer {
  constructor() {
    this.clients = new Set();
    this.nextClient = 1;
    this.seq = 0;
    this.frameNumber = 0;
    this.features = BLOCK_NAMES.map((_, i) => mockFeatures(i));
    this.scenes = new Map();
    this.meters = new SynthMeters();
    this.renderTimes = [];
    this.clientLatencyMs = 0;
    this.transport = { playing: false, position_s: 0, rate: 1, epoch: 1, clock_client: null };
    this.clock = { position_s: 0, wall_ms: performance.now(), playing: false, rate: 1 };
    this.ready = this.init();
  }

  async init() {
    this.schema = await (await fetch(SCHEMA_URL)).json();
    const settings = defaultsOf(this.schema);
    const block = defaultsOf(this.schema, schemaAt(this.schema, ["blocks", "x"]));
    settings.blocks = Object.fromEntries(BLOCK_NAMES.map((n) => [n, structuredClone(block)]));
    // A playable starting point: each block linked to a stem, a feature, prompts.
    const links = ["bass", "drums", "vocals", "other"];
    const feats = [2301, 1187, 3412, 877];
    BLOCK_NAMES.forEach((n, i) => {
      settings.blocks[n].link_target = links[i];
      settings.blocks[n].feature_id = feats[i];
    });
    settings.blocks["mid.0"].spatial.preset = "center";
    settings.blocks["up.0.1"].enabled = false;
    settings.prompt.a = "a cathedral of light, volumetric fog";
    settings.prompt.b = "neon jungle at night, rain";
    settings.prompt.blend = 0.3;
    this.settings = settings;
    const url = URL.createObjectURL(renderWav());
    this.tracks = [{
      id: "00000000mock0001",
      name: "synthetic groove (mock)",
      status: "ready",
      duration_s: SYNTH_SECONDS,
      tempo_bpm: SYNTH_BPM,
      audio_url: url,
      error: null,
      analysis: { separator: "mock", beat_tracker: "mock", stems: ["bass", "drums", "vocals", "other", "drums_low", "drums_mid", "drums_high", "other_mid", "other_high", "bass_harmonic", "drums_percussive", "tension", "global"] },
    }];
    this.track = this.tracks[0];
    // Drawing and JPEG encoding run in a worker: the page's main thread is busy animating the
    // stage, and canvas encoding there waits for idle time.
    this.worker = new Worker(new URL("./mock_render_worker.js", import.meta.url), { type: "module" });
    this.timer = setInterval(() => this.renderTick(), 1000 / FPS);
  }

  // ---------- WebSocket ----------

  socket() {
    const server = this;
    const client = {
      id: `c${this.nextClient++}`,
      frames: true,
      readyState: 0,
      binaryType: "arraybuffer",
      send(text) {
        server.ready.then(() => server.receive(client, text));
      },
      close() {
        client.readyState = 3;
        server.clients.delete(client);
        setTimeout(() => client.onclose && client.onclose({}));
      },
      deliver(data) {
        if (client.readyState === 1 && client.onmessage) client.onmessage({ data });
      },
    };
    this.ready.then(() => {
      client.readyState = 1;
      this.clients.add(client);
      client.onopen && client.onopen({});
      this.sendTo(client, { type: "welcome", protocol: 1, server: "sonosteer mock", client_id: client.id, engine: { kind: "preview", label: "in-browser mock server", preview: true, width: SIZE, height: SIZE }, state: this.state() });
    });
    return client;
  }

  state() {
    const t = this.track && { ...this.track };
    return { type: "state", seq: this.seq, track: t, transport: { ...this.transport }, settings: structuredClone(this.settings), clients: this.clients.size };
  }

  sendTo(client, msg) {
    client.deliver(JSON.stringify(msg));
  }

  broadcast(msg) {
    for (const c of this.clients) this.sendTo(c, msg);
  }

  error(client, code, message, id, path) {
    this.sendTo(client, { type: "error", code, message, ...(id != null ? { id } : {}), ...(path ? { path } : {}) });
  }

  receive(client, text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return this.error(client, "malformed", "not valid JSON");
    }
    const id = msg.id;
    switch (msg.type) {
      case "hello":
      case "stream":
        if (msg.type === "stream") client.frames = !!msg.frames;
        return;
      case "ping":
        return this.sendTo(client, { type: "pong", client_time_ms: msg.client_time_ms, server_time_ms: performance.timeOrigin + performance.now() });
      case "get_state":
        return this.sendTo(client, this.state());
      case "set": {
        const changes = msg.changes || [{ path: msg.path, value: msg.value }];
        for (const c of changes) {
          if (typeof c.path !== "string" || getPath(this.settings, c.path) === undefined && !this.pathAllowsNull(c.path)) {
            return this.error(client, "unknown_path", `no setting at ${c.path}`, id, c.path);
          }
        }
        const out = changes.map((c) => ({ path: pointer(...splitPath(c.path)), value: c.value }));
        for (const c of out) setPath(this.settings, c.path, c.value);
        return this.changed(client, id, out);
      }
      case "mask": {
        const name = typeof msg.block === "number" ? BLOCK_NAMES[msg.block] : msg.block;
        const sp = this.settings.blocks[name] && this.settings.blocks[name].spatial;
        if (!sp) return this.error(client, "invalid_value", `unknown block ${msg.block}`, id);
        // As the server: a preset keeps the drawn mask; a stroke starts from the mask in use.
        const inUse = sp.preset === "custom" && sp.mask ? sp.mask : presetMask(sp.preset);
        if (msg.preset) {
          sp.preset = msg.preset;
        } else if (msg.cells) {
          sp.mask = inUse.map((row) => row.slice());
          for (const [r, c, v] of msg.cells) sp.mask[r][c] = v;
          sp.preset = "custom";
        } else if (msg.mask) {
          sp.mask = msg.mask;
          sp.preset = "custom";
        }
        return this.changed(client, id, [
          { path: pointer("blocks", name, "spatial", "mask"), value: structuredClone(sp.mask) },
          { path: pointer("blocks", name, "spatial", "preset"), value: sp.preset },
        ]);
      }
      case "destination": {
        const p = this.settings.prompt;
        p.a = { a: p.a, b: p.b, t: p.blend };
        p.b = msg.prompt;
        p.blend = 0;
        return this.changed(client, id, ["a", "b", "blend"].map((k) => ({ path: pointer("prompt", k), value: p[k] })));
      }
      case "transport": {
        const t = this.transport;
        const now = this.clockNow();
        if (msg.action === "play") t.playing = true;
        else if (msg.action === "pause") t.playing = false;
        else if (msg.action === "seek") {
          t.epoch += 1;
          this.clock.position_s = msg.position_s;
        } else if (msg.action === "rate") t.rate = msg.rate;
        t.position_s = msg.action === "seek" ? msg.position_s : now;
        this.clock = { ...this.clock, position_s: t.position_s, wall_ms: performance.now(), playing: t.playing, rate: t.rate };
        t.clock_client = client.id;
        this.seq += 1;
        return this.broadcast({ type: "transport", seq: this.seq, by: client.id, id, ...t });
      }
      case "position":
        this.clock = { position_s: msg.position_s, wall_ms: performance.now(), playing: msg.playing, rate: msg.rate || 1 };
        if (Number.isFinite(msg.render_latency_ms)) this.clientLatencyMs = msg.render_latency_ms;
        return;
      case "load_track":
        if (!this.tracks.find((t) => t.id === msg.track_id)) return this.error(client, "unknown_track", `no track ${msg.track_id}`, id);
        this.track = this.tracks.find((t) => t.id === msg.track_id);
        this.transport = { ...this.transport, playing: false, position_s: 0, epoch: this.transport.epoch + 1 };
        return this.broadcast(this.state());
      default:
        return this.error(client, "unknown_type", `unknown message type ${JSON.stringify(msg.type)}`, id);
    }
  }

  pathAllowsNull(path) {
    const keys = splitPath(path);
    const parent = getPath(this.settings, pointer(...keys.slice(0, -1)));
    return parent && typeof parent === "object" && keys[keys.length - 1] in parent;
  }

  changed(client, id, changes) {
    this.seq += 1;
    this.broadcast({ type: "changed", seq: this.seq, by: client.id, id, changes });
  }

  clockNow() {
    const c = this.clock;
    return c.position_s + (c.playing ? ((performance.now() - c.wall_ms) / 1000) * c.rate : 0);
  }

  // ---------- render loop ----------

  async renderTick() {
    if (!this.track || this.busy || !this.clients.size) return;
    this.busy = true;
    const t0 = performance.now();
    // Predictive lookahead, measured like the real server's: pipeline + frame interval + client.
    const lookaheadS = (median(this.renderTimes) + 1000 / FPS + (this.clientLatencyMs || 0)) / 1000;
    const media = Math.min(SYNTH_SECONDS, this.clockNow() + (this.clock.playing ? lookaheadS : 0));
    const meters = this.meterFrame(media);
    const bytes = await new Promise((resolve) => {
      this.worker.onmessage = (e) => resolve(e.data);
      this.worker.postMessage({ t: media, meters, settings: this.settings, frameNumber: this.frameNumber + 1, size: SIZE });
    });
    const renderMs = performance.now() - t0;
    this.renderTimes.push(renderMs);
    if (this.renderTimes.length > 30) this.renderTimes.shift();
    this.frameNumber += 1;
    for (const c of this.clients) {
      if (!c.frames) continue;
      this.sendTo(c, { type: "meters", frame_number: this.frameNumber, ...meters });
      c.deliver(packFrame({
        frameNumber: this.frameNumber, epoch: this.transport.epoch, width: SIZE, height: SIZE, preview: true,
        mediaTimeS: media, sendTimeMs: performance.timeOrigin + performance.now(), renderMs,
      }, bytes));
    }
    if (this.frameNumber % FPS === 0) {
      for (const c of this.clients) this.sendTo(c, { type: "stats", render_fps: FPS, delivered_fps: FPS, dropped: 0, skipped: 0, lookahead_ms: lookaheadS * 1000, latency_ms: { render: renderMs }, clock: { locked: true, error_ms: 0 } });
    }
    this.busy = false;
  }

  /** The meters of one frame: per block the linked stem's envelopes and the resulting strength. */
  meterFrame(t) {
    const beat = 60 / SYNTH_BPM;
    const p = this.settings.prompt;
    const blocks = BLOCK_NAMES.map((name) => {
      const b = this.settings.blocks[name];
      const m = this.meters.sample(b.link_target, t);
      const intensity = b.enabled && b.link_target ? m.energy_smooth : 0;
      const strength = b.stage.home + intensity * (b.stage.right - b.stage.home);
      return { ...m, strength };
    });
    const energy = blocks.reduce((a, b) => a + b.energy_smooth, 0) / blocks.length;
    const blend = p.mode === "slider" ? p.blend : Math.min(1, energy * 1.4);
    const angle = (t / beat) * this.settings.composition.distance * 0.8;
    return { media_time_s: t, beat_phase: (t / beat) % 1, prompt_blend: blend, noise_angle_rad: angle, blocks };
  }

  // ---------- REST ----------

  api() {
    const server = this;
    const json = (status, body) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
    const fail = (status, code, message) => json(status, { error: { code, message } });
    async function mockFetch(url, init = {}) {
      await server.ready;
      const u = new URL(url, location.href);
      const parts = u.pathname.split("/").filter(Boolean).slice(1).map(decodeURIComponent); // drop "api"
      const method = init.method || "GET";
      const body = init.body ? JSON.parse(init.body) : null;
      if (parts[0] === "settings" && parts[1] === "schema") return json(200, server.schema);
      if (parts[0] === "health") return json(200, { status: "ok", protocol: 1, engine: { kind: "preview", preview: true } });
      if (parts[0] === "tracks" && parts.length === 1) {
        if (method === "GET") return json(200, { tracks: server.tracks.map((t) => ({ ...t, current: t === server.track })) });
      }
      if (parts[0] === "tracks" && parts.length === 2 && method === "DELETE") {
        server.tracks = server.tracks.filter((t) => t.id !== parts[1] || t === server.track);
        return json(200, { deleted: parts[1] });
      }
      if (parts[0] === "features" && parts[1] === "categories") {
        return json(200, { categories: MOCK_CATEGORIES.map((name) => ({ name })), unlabeled_color: "#808080" });
      }
      if (parts[0] === "features" && parts.length >= 2) {
        const bi = /^\d+$/.test(parts[1]) ? Number(parts[1]) : BLOCK_NAMES.indexOf(parts[1]);
        const all = server.features[bi];
        if (!all) return fail(404, "unknown_block", `no block ${parts[1]}`);
        if (parts.length === 3) return json(200, all[Number(parts[2])] || {});
        const q = (u.searchParams.get("q") || "").toLowerCase().split(/\s+/).filter(Boolean);
        const cat = u.searchParams.get("category");
        const limit = Number(u.searchParams.get("limit") || 200);
        let list = all.filter((f) => (!cat || f.category === cat) && q.every((w) => `${f.label || ""} ${f.category || ""}`.toLowerCase().includes(w)));
        const around = u.searchParams.get("around");
        if (around !== null && !q.length) {
          const c = Number(around);
          list = [...list].sort((x, y) => Math.abs(x.id - c) - Math.abs(y.id - c)).slice(0, limit).sort((x, y) => x.id - y.id);
        } else list = list.slice(0, limit);
        return json(200, { block: BLOCK_NAMES[bi], n_features: all.length, total: list.length, labels_source: "mock labels", features: list });
      }
      if (parts[0] === "scenes") {
        if (parts.length === 1 && method === "GET") return json(200, { scenes: [...server.scenes.values()].map(({ name, saved_utc, track_id }) => ({ name, saved_utc, track_id })) });
        if (parts.length === 1 && method === "POST") {
          const scene = { name: body.name, saved_utc: new Date().toISOString(), track_id: server.track.id, settings: structuredClone(server.settings) };
          server.scenes.set(body.name, scene);
          return json(201, { scene: { name: scene.name, saved_utc: scene.saved_utc, track_id: scene.track_id } });
        }
        const scene = server.scenes.get(parts[1]);
        if (!scene) return fail(404, "unknown_scene", `no scene ${parts[1]}`);
        if (parts[2] === "load" && method === "POST") {
          server.settings = structuredClone(scene.settings);
          server.seq += 1;
          server.broadcast(server.state());
          return json(200, { loaded: scene.name });
        }
        if (method === "DELETE") {
          server.scenes.delete(parts[1]);
          return json(200, { deleted: parts[1] });
        }
        return json(200, scene.settings);
      }
      return fail(404, "not_found", `mock server has no ${method} ${u.pathname}`);
    }
    return new MockApi(mockFetch, server);
  }
}

/** The real REST client over the mock's fetch; only the upload is simulated. */
class MockApi extends Api {
  constructor(fetchImpl, server) {
    super("", fetchImpl);
    this.server = server;
  }

  /** Upload: keeps the file as a new track after a simulated analysis with progress events. */
  async uploadTrack(file, onProgress) {
    onProgress(1);
    const server = this.server;
    const id = `mock${String(Date.now()).slice(-12)}`;
    const track = { id, name: file.name, status: "analyzing", duration_s: 0, tempo_bpm: 0, audio_url: URL.createObjectURL(file), error: null, analysis: server.track.analysis };
    server.tracks.push(track);
    const stages = ["decoding", "separating stems", "perceptual channels", "beats", "pitch", "coupling"];
    stages.forEach((stage, i) => setTimeout(() => server.broadcast({ type: "progress", track_id: id, status: "analyzing", fraction: (i + 1) / (stages.length + 1), stage }), 400 * (i + 1)));
    setTimeout(() => {
      track.status = "ready";
      const probe = new Audio(track.audio_url);
      probe.addEventListener("loadedmetadata", () => (track.duration_s = probe.duration));
      track.tempo_bpm = 120;
      server.broadcast({ type: "progress", track_id: id, status: "ready", fraction: 1, stage: "ready" });
      server.broadcast({ type: "tracks", tracks: server.tracks });
    }, 400 * (stages.length + 1));
    return { track };
  }
}


function median(arr) {
  if (!arr.length) return 0;
  const s = [...arr].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
