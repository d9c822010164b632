// The link to the sonosteer server (protocol v1, docs/protocol.md). The WebSocket itself lives in
// the frame worker (net/frame_worker.js), which decodes, paces and draws frames off the main
// thread; this class is the page's side: JSON messages in and out, clock posts, events.
// Reconnects with back-off; every (re)connect starts with the server's `welcome`.

export const PROTOCOL_VERSION = 1;
/** A server on this machine stamps the same wall clock as the page: no offset to estimate. */
const SAME_MACHINE = ["127.0.0.1", "localhost", "[::1]", "::1"].includes(location.hostname);
const CLIENT_NAME = "sonosteer-web/0.1";

export class Connection extends EventTarget {
  /**
   * url: ws:// URL of /ws. relaySocket(url): optional; returns a WebSocket-like object whose
   * traffic the page relays to the worker (the in-browser mock server).
   * Events: "open", "close", "message" (detail: parsed JSON), "shown" (detail: the frame just
   * drawn, with its meters), "frame-stats" (detail: pacing counters), "thumb" (detail: a small
   * ImageBitmap of the latest frame), "protocol-error" (detail: Error).
   */
  constructor(url, relaySocket = null) {
    super();
    this.url = url;
    this.relaySocket = relaySocket;
    this.nextId = 1;
    this.connected = false;
    this.retryMs = 500;
    this.clockOffsetMs = 0; // server wall clock - page wall clock, from ping/pong
    this.closedByUser = false;
    this.worker = new Worker(new URL("./frame_worker.js", import.meta.url), { type: "module" });
    this.worker.onmessage = (e) => this.fromWorker(e.data);
    this.worker.onerror = (e) => this.emit("protocol-error", new Error(`frame worker: ${e.message}`));
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Hand the output canvas to the worker, which draws every frame on it from now on. */
  attachCanvas(canvas) {
    const offscreen = canvas.transferControlToOffscreen();
    this.worker.postMessage({ op: "canvas", canvas: offscreen }, [offscreen]);
  }

  connect() {
    this.closedByUser = false;
    if (this.relaySocket) {
      const socket = this.relaySocket(this.url);
      this.socket = socket;
      this.worker.postMessage({ op: "relay" });
      socket.onopen = () => this.fromWorker({ op: "open" });
      socket.onclose = () => this.fromWorker({ op: "close" });
      socket.onmessage = (ev) => {
        const transfer = ev.data instanceof ArrayBuffer ? [ev.data] : [];
        this.worker.postMessage({ op: "data", data: ev.data }, transfer);
      };
      return;
    }
    this.worker.postMessage({ op: "connect", url: this.url });
  }

  fromWorker(msg) {
    switch (msg.op) {
      case "open":
        this.connected = true;
        this.retryMs = 500;
        this.sendRaw({ type: "hello", protocol: PROTOCOL_VERSION, client: CLIENT_NAME });
        this.pongs = [];
        this.ping();
        clearInterval(this.pingTimer);
        this.pingTimer = setInterval(() => this.ping(), 5000);
        this.emit("open");
        break;
      case "close": {
        clearInterval(this.pingTimer);
        const was = this.connected;
        this.connected = false;
        this.emit("close", { wasConnected: was });
        if (!this.closedByUser) {
          setTimeout(() => this.connect(), this.retryMs);
          this.retryMs = Math.min(this.retryMs * 2, 5000);
        }
        break;
      }
      case "text":
        this.receiveText(msg.data, msg.receivedMs);
        break;
      case "send":
        if (this.socket) this.socket.send(msg.text); // relay mode: the worker's outgoing messages
        break;
      case "shown":
        this.emit("shown", msg.frame);
        break;
      case "stats":
        this.emit("frame-stats", msg.stats);
        break;
      case "thumb":
        this.emit("thumb", msg.bitmap);
        break;
      case "error":
        this.emit("protocol-error", new Error(msg.message));
        break;
      default:
        break;
    }
  }

  /** receivedMs: when the worker took the message off the socket (so a busy page skews no pong). */
  receiveText(data, receivedMs = nowMs()) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch (err) {
      this.emit("protocol-error", new Error(`server sent invalid JSON: ${err.message}`));
      return;
    }
    if (msg.type === "pong" && !SAME_MACHINE) {
      // The sample with the shortest round trip bounds the offset best; older ones age out.
      const rtt = receivedMs - msg.client_time_ms;
      this.pongs = [...(this.pongs || []), { rtt, offset: msg.server_time_ms - (msg.client_time_ms + rtt / 2) }].slice(-12);
      this.clockOffsetMs = this.pongs.reduce((a, b) => (b.rtt < a.rtt ? b : a)).offset;
    }
    this.emit("message", msg);
  }

  sendRaw(msg) {
    if (!this.connected) return false;
    this.worker.postMessage({ op: "send", text: JSON.stringify(msg) });
    return true;
  }

  /** Send a client message with a fresh id; returns the id (or null when not connected). */
  send(msg) {
    const id = this.nextId++;
    return this.sendRaw({ ...msg, id }) ? id : null;
  }

  ping() {
    if (!SAME_MACHINE) this.sendRaw({ type: "ping", client_time_ms: nowMs() });
  }

  /** Tell the worker where the audio is, so it shows each frame when its moment is heard. */
  setClock(mediaS, playing, rate) {
    this.worker.postMessage({ op: "clock", wallMs: nowMs(), mediaS, playing, rate });
  }

  /** Frames of an older transport epoch (before a seek or track load) are dropped. */
  setEpoch(epoch) {
    this.worker.postMessage({ op: "epoch", epoch });
  }

  flush() {
    this.worker.postMessage({ op: "flush" });
  }

  close() {
    this.closedByUser = true;
    this.worker.postMessage({ op: "close" });
    if (this.socket) this.socket.close();
  }
}

/** Wall clock in ms since the Unix epoch, the clock the protocol stamps use. */
export function nowMs() {
  return performance.timeOrigin + performance.now();
}

/** The /ws URL of the page's own server. */
export function defaultSocketUrl() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/ws`;
}
