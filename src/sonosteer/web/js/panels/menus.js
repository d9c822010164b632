// The top bar's menus: tracks (load one, upload a new one with upload and analysis progress,
// delete) and scenes (save the whole instrument state by name, load, delete).

import { dismissOnOutside, fill, formatTime, h, toast } from "../ui/dom.js";

export class TrackMenu {
  constructor(anchor, { api, session }) {
    this.anchor = anchor;
    this.api = api;
    this.session = session;
    this.button = anchor.querySelector("#track-button");
    this.nameEl = anchor.querySelector("#track-name");
    this.metaEl = anchor.querySelector("#track-meta");
    this.dotEl = anchor.querySelector(".track-dot");
    this.tracks = [];
    this.progress = new Map(); // track id or upload key -> {name, fraction, stage, status, error}
    this.menu = null;
    this.fileInput = h("input", { type: "file", accept: "audio/*,.opus,.ogg,.flac,.wav,.mp3,.m4a", hidden: true, id: "upload-input" });
    this.fileInput.addEventListener("change", () => {
      for (const f of this.fileInput.files) this.upload(f);
      this.fileInput.value = "";
    });
    anchor.appendChild(this.fileInput);
    this.button.addEventListener("click", () => (this.menu ? this.close() : this.open()));
    session.addEventListener("track", () => this.renderButton());
    session.addEventListener("tracks", (e) => {
      this.tracks = e.detail.tracks || [];
      this.renderMenu();
    });
    session.addEventListener("progress", (e) => this.onProgress(e.detail));
    session.addEventListener("connection", (e) => e.detail.connected && this.reload());
    // Dropping an audio file anywhere on the page uploads it.
    window.addEventListener("dragover", (e) => e.preventDefault());
    window.addEventListener("drop", (e) => {
      e.preventDefault();
      for (const f of e.dataTransfer.files) this.upload(f);
    });
    this.renderButton();
  }

  async reload() {
    try {
      this.tracks = (await this.api.tracks()).tracks || [];
    } catch (err) {
      toast(`Tracks unavailable: ${err.message}`, { error: true });
    }
    this.renderMenu();
  }

  renderButton() {
    const t = this.session.track;
    this.nameEl.textContent = t ? t.name : "no track: upload one";
    this.metaEl.textContent = t ? `${formatTime(t.duration_s)}${t.tempo_bpm ? ` · ${t.tempo_bpm.toFixed(0)} BPM` : ""}` : "";
    const busy = [...this.progress.values()].some((p) => p.status === "analyzing" || p.status === "uploading");
    this.dotEl.className = `track-dot${busy ? " busy" : t ? " ready" : ""}`;
  }

  onProgress(p) {
    const known = this.tracks.find((t) => t.id === p.track_id);
    const prev = this.progress.get(p.track_id) || {};
    this.progress.set(p.track_id, { name: prev.name || (known && known.name) || p.track_id, ...p });
    if (p.status === "ready") {
      toast(`Analysis finished: ${this.progress.get(p.track_id).name}`);
      setTimeout(() => {
        this.progress.delete(p.track_id);
        this.renderMenu();
        this.renderButton();
      }, 1500);
      this.reload();
    } else if (p.status === "failed") {
      toast(`Analysis failed: ${p.error || "unknown error"}`, { error: true, ms: 8000 });
    }
    this.renderMenu();
    this.renderButton();
  }

  async upload(file) {
    const key = `upload:${file.name}:${Date.now()}`;
    this.progress.set(key, { name: file.name, status: "uploading", fraction: 0, stage: "uploading" });
    this.renderMenu();
    this.renderButton();
    try {
      const res = await this.api.uploadTrack(file, (f) => {
        this.progress.set(key, { name: file.name, status: "uploading", fraction: f, stage: `uploading ${Math.round(f * 100)}%` });
        this.renderMenu();
      });
      this.progress.delete(key);
      const track = res && res.track;
      if (track && track.status === "ready") {
        toast(`${track.name} is ready (analysed before)`);
        this.reload();
      } else if (track) {
        if (!this.progress.has(track.id)) {
          this.progress.set(track.id, { name: track.name || file.name, status: "analyzing", fraction: 0, stage: "queued" });
        }
      }
    } catch (err) {
      this.progress.delete(key);
      toast(`Upload of ${file.name} refused: ${err.message}`, { error: true, ms: 8000 });
    }
    this.renderMenu();
    this.renderButton();
  }

  open() {
    this.menu = h("div", { class: "menu", id: "track-menu" });
    this.anchor.appendChild(this.menu);
    this.closeFn = dismissOnOutside(this.menu, this.button, () => {
      this.menu && this.menu.remove();
      this.menu = null;
    });
    this.reload();
    this.renderMenu();
  }

  close() {
    if (this.closeFn) this.closeFn();
  }

  renderMenu() {
    if (!this.menu) return;
    const current = this.session.track && this.session.track.id;
    const items = this.tracks.map((t) =>
      h("div", {
        class: `menu-item${t.id === current ? " current" : ""}`,
        dataset: { track: t.id },
        onclick: () => {
          if (t.status !== "ready") return;
          this.session.loadTrack(t.id);
          this.close();
        },
      },
      h("span", { class: `track-dot ${t.status === "ready" ? "ready" : t.status === "analyzing" ? "busy" : ""}` }),
      h("span", { class: "grow" }, t.name),
      h("span", { class: "meta" }, t.status === "ready" ? `${formatTime(t.duration_s)}${t.tempo_bpm ? ` · ${Math.round(t.tempo_bpm)}` : ""}` : t.status),
      t.id !== current
        ? h("button", {
          type: "button", class: "x", title: "remove from the library",
          onclick: async (e) => {
            e.stopPropagation();
            try {
              await this.api.deleteTrack(t.id);
              this.reload();
            } catch (err) {
              toast(err.message, { error: true });
            }
          },
        }, "✕")
        : null));
    const jobs = [...this.progress.entries()].map(([key, p]) =>
      h("div", { class: "menu-item", dataset: { progress: key }, style: { flexDirection: "column", alignItems: "stretch", gap: "0" } },
        h("div", { style: { display: "flex", gap: "8px" } },
          h("span", { class: "grow" }, p.name),
          h("span", { class: "meta", style: p.status === "failed" ? { color: "var(--danger)" } : {} }, p.status === "failed" ? "failed" : p.stage || p.status)),
        h("div", { class: "progress" }, h("div", { style: { width: `${Math.round((p.fraction || 0) * 100)}%` } })),
        p.error ? h("div", { class: "hint", style: { marginTop: "4px", whiteSpace: "normal" } }, p.error) : null));
    const drop = h("div", { class: "upload-drop", id: "upload-drop", onclick: () => this.fileInput.click() },
      h("div", { style: { color: "var(--text)", fontWeight: "560" } }, "Upload a track"),
      h("div", { class: "hint" }, "click or drop audio here · wav flac ogg opus mp3"));
    fill(this.menu,
      h("div", { class: "menu-title" }, "Library"),
      items.length ? items : h("div", { class: "menu-empty" }, "No tracks yet."),
      jobs.length ? [h("div", { class: "menu-sep" }), h("div", { class: "menu-title" }, "Analysing"), jobs] : null,
      h("div", { class: "menu-sep" }),
      drop,
    );
  }
}

export class SceneMenu {
  constructor(anchor, { api, session }) {
    this.anchor = anchor;
    this.api = api;
    this.session = session;
    this.button = anchor.querySelector("#scene-button");
    this.menu = null;
    this.scenes = [];
    this.button.addEventListener("click", () => (this.menu ? this.close() : this.open()));
    this.input = h("input", { class: "input", placeholder: "Scene name", maxlength: 64, id: "scene-name" });
    this.input.addEventListener("keydown", (e) => {
      e.stopPropagation();
      if (e.key === "Enter") this.saveFromInput();
    });
  }

  saveFromInput() {
    const name = this.input.value.trim();
    if (!/^[A-Za-z0-9 _.-]{1,64}$/.test(name) || name.startsWith(".")) {
      toast("A scene name is 1-64 letters, digits, spaces, _ - . (not starting with .)", { error: true });
      return;
    }
    this.save(name);
  }

  async reload() {
    try {
      this.scenes = (await this.api.scenes()).scenes || [];
    } catch (err) {
      this.scenes = [];
      toast(`Scenes unavailable: ${err.message}`, { error: true });
    }
    this.render();
  }

  open() {
    this.menu = h("div", { class: "menu right", id: "scene-menu" });
    this.anchor.appendChild(this.menu);
    this.closeFn = dismissOnOutside(this.menu, this.button, () => {
      this.menu && this.menu.remove();
      this.menu = null;
    });
    this.render();
    this.reload();
    setTimeout(() => this.input.focus());
  }

  close() {
    if (this.closeFn) this.closeFn();
  }

  async save(name) {
    try {
      await this.api.saveScene(name);
      toast(`Scene “${name}” saved`);
      this.reload();
    } catch (err) {
      toast(`Could not save the scene: ${err.message}`, { error: true });
    }
  }

  async load(name) {
    try {
      await this.api.loadScene(name);
      toast(`Scene “${name}” loaded`);
      this.close();
    } catch (err) {
      toast(`Could not load the scene: ${err.message}`, { error: true });
    }
  }

  render() {
    if (!this.menu) return;
    const input = this.input;
    const save = () => this.saveFromInput();
    const trackId = this.session.track && this.session.track.id;
    const items = this.scenes.map((s) =>
      h("div", { class: "menu-item", dataset: { scene: s.name }, onclick: () => this.load(s.name) },
        h("span", { class: "grow" }, s.name),
        h("span", { class: "meta" }, `${s.track_id && s.track_id !== trackId ? "other track · " : ""}${shortDate(s.saved_utc)}`),
        h("button", {
          type: "button", class: "x", title: "delete scene",
          onclick: async (e) => {
            e.stopPropagation();
            try {
              await this.api.deleteScene(s.name);
              this.reload();
            } catch (err) {
              toast(err.message, { error: true });
            }
          },
        }, "✕")));
    fill(this.menu,
      h("div", { class: "menu-title" }, "Save the instrument"),
      h("div", { class: "menu-row" }, input, h("button", { type: "button", class: "btn primary", id: "scene-save", onclick: save }, "Save")),
      h("div", { class: "menu-sep" }),
      h("div", { class: "menu-title" }, "Scenes"),
      items.length ? items : h("div", { class: "menu-empty" }, "No scenes saved yet."),
    );
  }
}

function shortDate(utc) {
  if (!utc) return "";
  const d = new Date(utc);
  if (Number.isNaN(d.getTime())) return "";
  return d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}
