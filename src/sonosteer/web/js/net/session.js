// The page's mirror of the server session (track, transport, performer settings) and the
// messages that change it. Local edits apply at once (the controls never lag) and are confirmed
// or corrected by the server's `changed` broadcast.
//
// Settings paths are the bridge's JSON pointers ("/blocks/mid.0/stage/right"); dotted paths
// ("blocks.1.stage.right", block by index or name) are understood too when the server sends them.

import { BLOCK_NAMES } from "../blocks.js";

/** Split a settings path into keys: JSON pointer, or dotted with block names kept whole. */
export function splitPath(path) {
  if (path.startsWith("/")) {
    return path.slice(1).split("/").map((k) => k.replace(/~1/g, "/").replace(/~0/g, "~"));
  }
  const parts = path.split(".");
  if (parts[0] === "blocks" && parts.length > 1) {
    if (/^\d+$/.test(parts[1]) && BLOCK_NAMES[Number(parts[1])]) {
      return ["blocks", BLOCK_NAMES[Number(parts[1])], ...parts.slice(2)];
    }
    for (const name of BLOCK_NAMES) {
      const n = name.split(".").length;
      if (parts.slice(1, 1 + n).join(".") === name) return ["blocks", name, ...parts.slice(1 + n)];
    }
  }
  return parts;
}

/** The canonical (JSON pointer) form of a path given as keys. */
export function pointer(...keys) {
  return "/" + keys.map((k) => String(k).replace(/~/g, "~0").replace(/\//g, "~1")).join("/");
}

export function getPath(obj, path) {
  let cur = obj;
  for (const key of splitPath(path)) {
    if (cur == null) return undefined;
    cur = cur[key];
  }
  return cur;
}

export function setPath(obj, path, value) {
  const keys = splitPath(path);
  let cur = obj;
  for (let i = 0; i < keys.length - 1; i++) {
    if (cur[keys[i]] == null || typeof cur[keys[i]] !== "object") cur[keys[i]] = {};
    cur = cur[keys[i]];
  }
  cur[keys[keys.length - 1]] = value;
}

/**
 * Events: "state" (whole session replaced), "settings" (detail: {paths, remote}),
 * "transport" (detail: transport broadcast), "track" (track changed), "progress", "tracks",
 * "stats", "pong", "error" (detail: server error message), "connection" (detail: {connected}).
 */
export class Session extends EventTarget {
  constructor(connection) {
    super();
    this.conn = connection;
    this.clientId = null;
    this.engine = null;
    this.track = null;
    this.transport = { playing: false, position_s: 0, rate: 1, epoch: 0 };
    this.settings = null;
    this.clients = 0;
    this.seq = 0;
    this.pending = new Map(); // path -> id of our latest unconfirmed change
    connection.addEventListener("message", (e) => this.onMessage(e.detail));
    connection.addEventListener("open", () => this.emit("connection", { connected: true }));
    connection.addEventListener("close", () => this.emit("connection", { connected: false }));
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  onMessage(msg) {
    switch (msg.type) {
      case "welcome":
        this.clientId = msg.client_id;
        this.engine = msg.engine;
        this.applyState(msg.state);
        break;
      case "state":
        this.applyState(msg);
        break;
      case "changed":
        this.applyChanged(msg);
        break;
      case "transport":
        this.trackSeq(msg.seq);
        this.transport = { ...this.transport, ...pick(msg, ["playing", "position_s", "rate", "epoch", "clock_client"]) };
        this.emit("transport", msg);
        break;
      case "error":
        if (msg.id != null && [...this.pending.values()].includes(msg.id)) {
          // A change of ours was refused: drop the optimistic value, take the server's again.
          for (const [path, id] of this.pending) if (id === msg.id) this.pending.delete(path);
          this.conn.send({ type: "get_state" });
        }
        this.emit("error", msg);
        break;
      case "progress":
      case "tracks":
      case "stats":
      case "pong":
        this.emit(msg.type, msg);
        break;
      default:
        break; // unknown message types are ignored (protocol: additive changes keep v1)
    }
  }

  trackSeq(seq) {
    if (typeof seq !== "number") return;
    if (this.seq && seq > this.seq + 1) this.conn.send({ type: "get_state" });
    this.seq = Math.max(this.seq, seq);
  }

  applyState(state) {
    const oldTrack = this.track && this.track.id;
    this.seq = state.seq || 0;
    this.track = state.track || null;
    this.transport = { ...this.transport, ...(state.transport || {}) };
    this.settings = state.settings || null;
    this.clients = state.clients || 0;
    this.pending.clear();
    this.emit("state", state);
    if ((this.track && this.track.id) !== oldTrack) this.emit("track", this.track);
    this.emit("transport", this.transport);
  }

  applyChanged(msg) {
    this.trackSeq(msg.seq);
    if (!this.settings) return;
    const mine = msg.by === this.clientId;
    const paths = [];
    for (const change of msg.changes || []) {
      const path = pointer(...splitPath(change.path));
      const value = change.value;
      const pendingId = this.pending.get(path);
      if (mine && pendingId != null && msg.id != null && msg.id < pendingId) continue; // superseded
      if (mine && pendingId === msg.id) this.pending.delete(path);
      if (!mine && pendingId != null) this.pending.delete(path);
      setPath(this.settings, path, value);
      paths.push(path);
    }
    if (paths.length) this.emit("settings", { paths, remote: !mine });
  }

  get(path) {
    return this.settings ? getPath(this.settings, path) : undefined;
  }

  /** Change one setting (path as in the bridge's schema). */
  set(path, value) {
    return this.setMany([{ path, value }]);
  }

  /** Change several settings atomically. */
  setMany(changes) {
    if (!this.settings) return null;
    changes = changes.map(({ path, value }) => ({ path: pointer(...splitPath(path)), value }));
    for (const { path, value } of changes) setPath(this.settings, path, value);
    const id = changes.length === 1
      ? this.conn.send({ type: "set", path: changes[0].path, value: changes[0].value })
      : this.conn.send({ type: "set", changes });
    if (id != null) for (const { path } of changes) this.pending.set(path, id);
    this.emit("settings", { paths: changes.map((c) => c.path), remote: false });
    return id;
  }

  /**
   * Paint a stroke, apply a preset, or replace a block's mask (protocol `mask`). `local`
   * ({mask, preset}) is what the painter already shows; it is applied at once and echoes of
   * older strokes are ignored, so a fast stroke never flickers.
   */
  mask(block, payload, local) {
    const id = this.conn.send({ type: "mask", block, ...payload });
    if (local && this.settings) {
      const paths = [];
      for (const [key, value] of Object.entries(local)) {
        const path = pointer("blocks", block, "spatial", key);
        setPath(this.settings, path, value);
        if (id != null) this.pending.set(path, id);
        paths.push(path);
      }
      this.emit("settings", { paths, remote: false });
    }
    return id;
  }

  destination(prompt) {
    return this.conn.send({ type: "destination", prompt });
  }

  transportRequest(action, extra = {}) {
    return this.conn.send({ type: "transport", action, ...extra });
  }

  loadTrack(trackId) {
    return this.conn.send({ type: "load_track", track_id: trackId });
  }
}

function pick(obj, keys) {
  const out = {};
  for (const k of keys) if (obj[k] !== undefined) out[k] = obj[k];
  return out;
}
