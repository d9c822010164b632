// The status line: engine kind (SDXL-Turbo or preview), the stem separator the analysis used,
// displayed FPS, frame age, dropped frames. Updated a few times per second, never re-laid out.

import { h } from "../ui/dom.js";

export class StatusLine {
  constructor(root) {
    this.engineTag = h("span", { class: "engine-tag offline" }, "OFFLINE");
    this.sepV = h("span", { class: "v", style: { minWidth: "0" } }, "—");
    this.fpsV = h("span", { class: "v" }, "0");
    this.ageV = h("span", { class: "v" }, "—");
    this.dropV = h("span", { class: "v" }, "0");
    const item = (k, v, title, attrs = {}) => h("span", { class: "status-item", title, ...attrs }, h("span", { class: "k" }, k), v);
    root.replaceChildren(
      h("span", { class: "status-item", id: "status-engine" }, this.engineTag),
      item("SEP", this.sepV, "stem separator used by the analysis", { id: "status-separator" }),
      item("FPS", this.fpsV, "frames shown per second", { id: "status-fps" }),
      item("AGE", this.ageV, "frame age when shown: server send to screen, ms", { id: "status-age" }),
      item("DROP", this.dropV, "frames dropped: late / overflow here, plus the server queue's", { id: "status-drop" }),
    );
    this.root = root;
  }

  /** engine: welcome's engine object or null (disconnected). */
  setEngine(engine, connected) {
    const tag = this.engineTag;
    if (!connected || !engine) {
      tag.className = "engine-tag offline";
      tag.textContent = connected ? "NO ENGINE" : "OFFLINE";
      tag.title = connected ? "" : "not connected to the sonosteer server";
      return;
    }
    const preview = engine.preview || engine.kind === "preview";
    tag.className = `engine-tag ${preview ? "preview" : "sdxl"}`;
    tag.textContent = preview ? "PREVIEW" : "SDXL-TURBO";
    tag.title = [engine.label || engine.kind, engine.reason].filter(Boolean).join("\n");
  }

  setSeparator(track) {
    const a = track && track.analysis;
    const sep = a && (a.separator || (a.backends && a.backends.separator) || (a.stems_backend));
    const name = typeof sep === "string" ? sep : sep && (sep.name || sep.kind);
    this.sepV.textContent = name || (track ? "—" : "no track");
    this.sepV.title = typeof sep === "object" && sep ? JSON.stringify(sep) : name || "";
  }

  /** fps: shown per second; ageMs: median age; dropped: {client, server}. */
  setStats({ fps, ageMs, dropped }) {
    this.fpsV.textContent = fps.toFixed(0);
    this.ageV.textContent = Number.isFinite(ageMs) ? `${Math.round(ageMs)}ms` : "—";
    const total = dropped.client + dropped.server;
    this.dropV.textContent = String(total);
    this.dropV.title = `here: ${dropped.client} (late ${dropped.late}, overflow ${dropped.overflow}, superseded ${dropped.superseded}, stale ${dropped.stale}); server queue: ${dropped.server}`;
  }
}
