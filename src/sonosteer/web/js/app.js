// The instrument page: connects to the server (or to the in-browser mock with ?mock=1), mirrors
// the session, paces frames against the audio, and runs the stage and the panels.

import { AudioTransport } from "./audio_transport.js";
import { BLOCKS } from "./blocks.js";
import { Api } from "./net/api.js";
import { Connection, defaultSocketUrl, nowMs } from "./net/connection.js";
import { Session } from "./net/session.js";
import { categoryColor, sourceColor } from "./palette.js";
import { BlockPanel } from "./panels/block_panel.js";
import { EnsemblePanel } from "./panels/ensemble.js";
import { GlobalPanel } from "./panels/global_panel.js";
import { SceneMenu, TrackMenu } from "./panels/menus.js";
import { StatusLine } from "./panels/status_line.js";
import { TransportBar } from "./panels/transport_bar.js";
import { targetLabel } from "./sources.js";
import { FrameDecoder } from "./stage/frame_decoder.js";
import { FramePacer } from "./stage/frame_pacer.js";
import { Stage } from "./stage/stage.js";
import { toast } from "./ui/dom.js";

const METERS_KEPT = 64;
const MAX_WAITING = 2; // undecoded frames kept while the decoder is busy

async function boot() {
  const params = new URLSearchParams(location.search);
  let api = new Api();
  let openSocket;
  if (params.get("mock") === "1") {
    const { MockServer } = await import("./mock/mock_server.js");
    const mock = new MockServer();
    window.sonosteerMock = mock;
    api = mock.api();
    openSocket = (url) => mock.socket(url);
  }
  const conn = new Connection(defaultSocketUrl(), openSocket);
  const session = new Session(conn);
  const app = new Instrument({ api, conn, session });
  window.sonosteer = app; // for the console and the browser tests
  conn.connect();
}

class Instrument {
  constructor({ api, conn, session }) {
    this.api = api;
    this.conn = conn;
    this.session = session;
    this.schema = null;
    this.categoryNames = [];
    this.categoryColors = {};
    this.meters = new Map();
    this.pacer = new FramePacer({ lateMs: 50, maxDepth: 8, targetDepth: 3 });
    this.stats = { shown: 0, shownTimes: [], ages: [], decodeMs: [], stale: 0, serverDropped: 0, lastFrame: null };
    this.decoder = new FrameDecoder({ maxInFlight: 3 });
    this.waiting = [];

    const audio = document.getElementById("audio");
    this.transport = new AudioTransport(audio, session, { renderLatencyMs: () => this.renderLatencyMs() });
    this.transport.addEventListener("seek", () => {
      this.pacer.flush();
      this.waiting.length = 0;
    });

    const categories = { colorOf: (name) => (name && this.categoryColors[name]) || categoryColor(name, this.categoryNames) };
    this.stage = new Stage(document.getElementById("stage"), BLOCKS, { onPick: (i) => this.blockPanel.select(i) });
    this.blockPanel = new BlockPanel(document.getElementById("block-panel"), {
      session,
      api,
      categories,
      getSchema: () => this.schema,
      backdrop: () => (this.stats.lastFrame ? document.getElementById("frame") : null),
      onSelect: (i) => this.stage.select(i),
    });
    this.globalPanel = new GlobalPanel(document.getElementById("global-panel"), { session, getSchema: () => this.schema });
    this.ensemble = new EnsemblePanel(document.getElementById("global-panel"), { session, onSelect: (i) => this.blockPanel.select(i) });
    this.statusLine = new StatusLine(document.getElementById("status-line"));
    this.transportBar = new TransportBar(document.getElementById("transport"), this.transport, session);
    this.trackMenu = new TrackMenu(document.getElementById("track-menu-anchor"), { api, session });
    this.sceneMenu = new SceneMenu(document.getElementById("scene-menu-anchor"), { api, session });

    conn.addEventListener("frame", (e) => this.onFrame(e.detail));
    conn.addEventListener("protocol-error", (e) => console.warn(`protocol: ${e.detail.message}`));
    session.addEventListener("connection", (e) => this.onConnection(e.detail.connected));
    session.addEventListener("state", () => this.onState());
    session.addEventListener("settings", () => this.syncOrbs());
    session.addEventListener("meters", (e) => this.onMeters(e.detail));
    session.addEventListener("stats", (e) => (this.stats.serverDropped = e.detail.dropped || 0));
    session.addEventListener("error", (e) => toast(e.detail.message || e.detail.code, { error: true }));
    session.addEventListener("transport", (e) => {
      if (typeof e.detail.epoch === "number" && e.detail.epoch !== this.epoch) {
        this.epoch = e.detail.epoch;
        this.pacer.flush();
      }
    });
    this.epoch = 0;

    document.getElementById("fullscreen-button").addEventListener("click", () => this.toggleOutput());
    document.addEventListener("fullscreenchange", () => {
      if (!document.fullscreenElement && document.body.classList.contains("output-mode")) this.setOutput(false);
    });
    window.addEventListener("keydown", (e) => this.onKey(e));
    this.lastStatus = 0;
    this.errors = [];
    requestAnimationFrame((t) => this.loop(t));
  }

  async onConnection(connected) {
    this.statusLine.setEngine(this.session.engine, connected);
    document.getElementById("frame-empty-sub").textContent = connected
      ? (this.session.track ? "starting the render loop…" : "no track loaded: upload one from the track menu")
      : "connecting to the server…";
    if (!connected) return;
    try {
      this.schema = await this.api.schema();
    } catch (err) {
      console.warn(`settings schema unavailable: ${err.message}`);
    }
    try {
      const res = await this.api.categories();
      this.categoryNames = (res.categories || []).map((c) => c.name);
      this.categoryColors = Object.fromEntries((res.categories || []).filter((c) => c.color).map((c) => [c.name, c.color]));
      this.blockPanel.picker.setCategories(this.categoryNames);
    } catch (err) {
      console.warn(`feature categories unavailable: ${err.message}`);
    }
    this.blockPanel.render();
    this.globalPanel.render();
  }

  onState() {
    this.statusLine.setEngine(this.session.engine, this.conn.connected);
    this.statusLine.setSeparator(this.session.track);
    document.getElementById("preview-badge").hidden = !(this.session.engine && this.session.engine.preview);
    document.getElementById("frame-empty-sub").textContent = this.session.track
      ? "starting the render loop…"
      : "no track loaded: upload one from the track menu";
    if (typeof this.session.transport.epoch === "number") this.epoch = this.session.transport.epoch;
    this.syncOrbs();
  }

  /** Orb colour, bloom and caption follow each block's settings. */
  syncOrbs() {
    const s = this.session.settings;
    if (!s || !s.blocks) return;
    BLOCKS.forEach((b, i) => {
      const bs = s.blocks[b.name];
      if (!bs) return;
      this.stage.setOrb(i, {
        color: bs.link_target ? sourceColor(bs.link_target) : "#9a93b8",
        enabled: bs.enabled,
        source: bs.link_target,
        caption: `${bs.link_target ? targetLabel(bs.link_target) : "unlinked"} · #${bs.feature_id}`,
      });
    });
  }

  onFrame(frame) {
    if (frame.epoch < this.epoch) {
      this.stats.stale += 1; // rendered before the latest seek or track load
      return;
    }
    this.waiting.push(frame);
    if (this.waiting.length > MAX_WAITING) {
      this.waiting.shift(); // overflow: the oldest undecoded frame goes
      this.pacer.dropped.overflow += 1;
    }
    this.pumpDecoder();
  }

  /** Decode waiting frames, skipping those already too late to be shown. */
  pumpDecoder() {
    while (this.waiting.length && this.decoder.inFlight < this.decoder.maxInFlight) {
      const frame = this.waiting.shift();
      if (this.transport.playing && (this.transport.mediaTime() - frame.mediaTimeS) * 1000 > this.pacer.lateMs) {
        this.pacer.dropped.late += 1;
        continue;
      }
      this.decoder.decode(frame.jpeg).then((bitmap) => {
        frame.bitmap = bitmap;
        frame.decodedMs = nowMs();
        pushBounded(this.stats.decodeMs, frame.decodedMs - frame.receivedMs, 60);
        if (frame.epoch < this.epoch) {
          bitmap.close();
          this.stats.stale += 1;
        } else {
          this.pacer.push(frame);
        }
      }, (err) => console.warn(`frame ${frame.frameNumber} could not be decoded: ${err.message}`))
        .finally(() => this.pumpDecoder());
    }
  }

  onMeters(m) {
    this.meters.set(m.frame_number, m);
    if (this.meters.size > METERS_KEPT) this.meters.delete(this.meters.keys().next().value);
  }

  /** Median receive-to-ready time plus half a display refresh: the client's render latency. */
  renderLatencyMs() {
    const d = this.stats.decodeMs;
    if (!d.length) return undefined;
    return median(d) + 1000 / 120;
  }

  loop(t) {
    requestAnimationFrame((n) => this.loop(n));
    const now = this.transport.mediaTime();
    const frame = this.pacer.take(now, this.transport.playing);
    if (frame) this.show(frame);
    this.stage.setClock(now, this.session.track && this.session.track.tempo_bpm);
    this.stage.tick(t);
    const pulse = this.stage.beatPulse();
    this.transportBar.tick(pulse);
    this.globalPanel.tick(t / 1000);
    if (t - this.lastStatus > 250) {
      this.lastStatus = t;
      this.updateStatus(t);
    }
  }

  show(frame) {
    this.stage.drawFrame(frame.bitmap);
    frame.bitmap.close();
    const shownMs = nowMs();
    this.stats.shown += 1;
    pushBounded(this.stats.shownTimes, performance.now(), 120);
    pushBounded(this.stats.ages, shownMs - (frame.sendTimeMs - this.conn.clockOffsetMs), 30);
    this.stats.lastFrame = {
      frameNumber: frame.frameNumber,
      mediaTimeS: frame.mediaTimeS,
      epoch: frame.epoch,
      preview: frame.preview,
      shownMediaTimeS: this.transport.mediaTime(),
    };
    const m = this.meters.get(frame.frameNumber);
    if (m) {
      this.stage.setMeters(m);
      this.ensemble.setMeters(m);
      this.globalPanel.setLive({ blend: m.prompt_blend, angle: m.noise_angle_rad });
    }
  }

  updateStatus() {
    const times = this.stats.shownTimes;
    const nowP = performance.now();
    while (times.length && nowP - times[0] > 1000) times.shift();
    const d = this.pacer.dropped;
    this.statusLine.setStats({
      fps: times.length,
      ageMs: this.stats.ages.length ? median(this.stats.ages) : NaN,
      dropped: {
        client: this.pacer.droppedTotal + this.stats.stale,
        late: d.late,
        overflow: d.overflow,
        superseded: d.superseded,
        stale: this.stats.stale,
        server: this.stats.serverDropped,
      },
    });
  }

  onKey(e) {
    const tag = (e.target && e.target.tagName) || "";
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || e.metaKey || e.ctrlKey || e.altKey) return;
    if (e.code === "Space") {
      e.preventDefault();
      this.transport.toggle();
    } else if (e.key === "f" || e.key === "F") {
      e.preventDefault();
      this.toggleOutput();
    } else if (e.key === "Escape" && document.body.classList.contains("output-mode")) {
      this.setOutput(false);
    } else if (/^[1-4]$/.test(e.key)) {
      this.blockPanel.select(Number(e.key) - 1);
    }
  }

  toggleOutput() {
    this.setOutput(!document.body.classList.contains("output-mode"));
  }

  /** Fullscreen output view: only the image, as large as the screen allows (for projection). */
  setOutput(on) {
    document.body.classList.toggle("output-mode", on);
    if (on && document.documentElement.requestFullscreen && !document.fullscreenElement) {
      document.documentElement.requestFullscreen().catch(() => {}); // refused without a gesture: the view still switches
    } else if (!on && document.fullscreenElement) {
      document.exitFullscreen().catch(() => {});
    }
    this.stage.layout();
  }
}

function pushBounded(arr, v, n) {
  arr.push(v);
  if (arr.length > n) arr.shift();
}

function median(arr) {
  const s = [...arr].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

boot();
