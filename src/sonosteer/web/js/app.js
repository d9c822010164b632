// The instrument page: connects to the server (or to the in-browser mock with ?mock=1), mirrors
// the session, feeds the frame worker the audio clock, and runs the stage and the panels.

import { AudioTransport } from "./audio_transport.js";
import { BLOCKS } from "./blocks.js";
import { Api } from "./net/api.js";
import { Connection, defaultSocketUrl } from "./net/connection.js";
import { Session } from "./net/session.js";
import { categoryColor, sourceColor } from "./palette.js";
import { BlockPanel } from "./panels/block_panel.js";
import { EnsemblePanel } from "./panels/ensemble.js";
import { GlobalPanel } from "./panels/global_panel.js";
import { SceneMenu, TrackMenu } from "./panels/menus.js";
import { StatusLine } from "./panels/status_line.js";
import { TransportBar } from "./panels/transport_bar.js";
import { targetLabel } from "./sources.js";
import { Stage } from "./stage/stage.js";
import { toast } from "./ui/dom.js";

async function boot() {
  const params = new URLSearchParams(location.search);
  let api = new Api();
  let relaySocket = null;
  if (params.get("mock") === "1") {
    const { MockServer } = await import("./mock/mock_server.js");
    const mock = new MockServer();
    window.sonosteerMock = mock;
    api = mock.api();
    relaySocket = (url) => mock.socket(url);
  }
  const conn = new Connection(defaultSocketUrl(), relaySocket);
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
    this.stats = { shown: 0, ages: [], serverDropped: 0, lastFrame: null, frame: null };
    this.thumb = null;

    const audio = document.getElementById("audio");
    this.transport = new AudioTransport(audio, session, { renderLatencyMs: () => this.renderLatencyMs() });
    this.transport.addEventListener("seek", () => conn.flush());

    const categories = { colorOf: (name) => (name && this.categoryColors[name]) || categoryColor(name, this.categoryNames) };
    this.stage = new Stage(document.getElementById("stage"), BLOCKS, { onPick: (i) => this.blockPanel.select(i) });
    this.blockPanel = new BlockPanel(document.getElementById("block-panel"), {
      session,
      api,
      categories,
      getSchema: () => this.schema,
      backdrop: () => this.thumb,
      onSelect: (i) => this.stage.select(i),
    });
    this.globalPanel = new GlobalPanel(document.getElementById("global-panel"), { session, getSchema: () => this.schema });
    this.ensemble = new EnsemblePanel(document.getElementById("global-panel"), { session, onSelect: (i) => this.blockPanel.select(i) });
    this.statusLine = new StatusLine(document.getElementById("status-line"));
    this.transportBar = new TransportBar(document.getElementById("transport"), this.transport, session);
    this.trackMenu = new TrackMenu(document.getElementById("track-menu-anchor"), { api, session });
    this.sceneMenu = new SceneMenu(document.getElementById("scene-menu-anchor"), { api, session });

    conn.attachCanvas(document.getElementById("frame"));
    conn.addEventListener("shown", (e) => this.onShown(e.detail));
    conn.addEventListener("frame-stats", (e) => (this.stats.frame = e.detail));
    conn.addEventListener("thumb", (e) => {
      if (this.thumb) this.thumb.close();
      this.thumb = e.detail;
    });
    conn.addEventListener("protocol-error", (e) => console.warn(`protocol: ${e.detail.message}`));
    session.addEventListener("connection", (e) => this.onConnection(e.detail.connected));
    session.addEventListener("state", () => this.onState());
    session.addEventListener("settings", () => this.syncOrbs());
    session.addEventListener("stats", (e) => (this.stats.serverDropped = e.detail.dropped || 0));
    session.addEventListener("error", (e) => toast(e.detail.message || e.detail.code, { error: true }));
    session.addEventListener("transport", (e) => {
      if (typeof e.detail.epoch === "number") conn.setEpoch(e.detail.epoch);
    });

    document.getElementById("fullscreen-button").addEventListener("click", () => this.toggleOutput());
    document.addEventListener("fullscreenchange", () => {
      if (!document.fullscreenElement && document.body.classList.contains("output-mode")) this.setOutput(false);
    });
    window.addEventListener("keydown", (e) => this.onKey(e));
    // Space on a focused button would also click it on key-up: the instrument owns Space.
    window.addEventListener("keyup", (e) => {
      if (e.code === "Space" && !isTextField(e.target)) e.preventDefault();
    });
    this.lastStatus = 0;
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
    const engine = this.session.engine;
    const badge = document.getElementById("preview-badge");
    badge.hidden = !(engine && engine.preview);
    badge.title = (engine && engine.reason) || "";
    if (engine && engine.preview && !this.previewNoted) {
      this.previewNoted = true;
      toast(`Preview renderer: frames draw the controls as colour fields; no images are generated.${engine.reason ? ` Why: ${engine.reason}.` : ""}`, { ms: 7000 });
    }
    document.getElementById("frame-empty-sub").textContent = this.session.track
      ? "starting the render loop…"
      : "no track loaded: upload one from the track menu";
    if (typeof this.session.transport.epoch === "number") this.conn.setEpoch(this.session.transport.epoch);
    const analysis = (this.session.track && this.session.track.analysis) || {};
    this.stage.setBeats(analysis.beats_s, analysis.downbeats_s);
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

  /** Median receive-to-ready (decode) time plus half a display refresh: the client's render latency. */
  renderLatencyMs() {
    const f = this.stats.frame;
    if (!f || f.decodeMedianMs === null) return undefined;
    return f.decodeMedianMs + 1000 / 120;
  }

  loop(t) {
    requestAnimationFrame((n) => this.loop(n));
    const now = this.transport.mediaTime();
    this.conn.setClock(now, this.transport.playing, this.transport.audio.playbackRate);
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

  /** The worker drew a frame: bookkeeping, and the orbs take that frame's meters. */
  onShown(frame) {
    this.stats.shown += 1;
    pushBounded(this.stats.ages, frame.shownMs - (frame.sendTimeMs - this.conn.clockOffsetMs), 30);
    this.stats.lastFrame = frame;
    if (this.stats.shown === 1) this.stage.markHasFrame();
    const m = frame.meters;
    if (m) {
      const blocks = (this.session.settings && this.session.settings.blocks) || {};
      const spans = BLOCKS.map((b) => {
        const st = blocks[b.name] && blocks[b.name].stage;
        return st ? Math.max(Math.abs(st.left), Math.abs(st.right), 1e-6) : 30;
      });
      this.stage.setMeters(m, spans);
      this.ensemble.setMeters(m);
      this.blockPanel.setMeters(m);
      this.globalPanel.setLive({ blend: m.prompt_blend, angle: m.noise_angle_rad });
    }
  }

  updateStatus() {
    const f = this.stats.frame || { fps: 0, dropped: { late: 0, overflow: 0, superseded: 0, stale: 0 } };
    const d = f.dropped;
    this.statusLine.setStats({
      fps: f.fps,
      ageMs: this.stats.ages.length ? median(this.stats.ages) : NaN,
      dropped: { ...d, client: d.late + d.overflow + d.superseded + d.stale, server: this.stats.serverDropped },
    });
  }

  onKey(e) {
    if (isTextField(e.target) || e.metaKey || e.ctrlKey || e.altKey) return;
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

function isTextField(el) {
  const tag = (el && el.tagName) || "";
  return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (el && el.isContentEditable);
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
