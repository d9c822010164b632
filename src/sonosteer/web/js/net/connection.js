// The WebSocket link to the sonosteer server (protocol v1, docs/protocol.md): JSON messages both
// ways, binary frames in. Reconnects with back-off; every (re)connect starts with `welcome`.

import { parseFrame } from "./frame_header.js";

export const PROTOCOL_VERSION = 1;
const CLIENT_NAME = "sonosteer-web/0.1";

export class Connection extends EventTarget {
  /**
   * url: ws:// URL of /ws. openSocket(url): returns a WebSocket-like object (the real one, or
   * the mock server's). Events: "open", "close", "message" (detail: parsed JSON), "frame"
   * (detail: parsed frame with the receive time), "protocol-error" (detail: Error).
   */
  constructor(url, openSocket = (u) => new WebSocket(u)) {
    super();
    this.url = url;
    this.openSocket = openSocket;
    this.socket = null;
    this.nextId = 1;
    this.connected = false;
    this.retryMs = 500;
    this.clockOffsetMs = 0; // server wall clock - client wall clock, from ping/pong
    this.closedByUser = false;
  }

  connect() {
    this.closedByUser = false;
    const socket = this.openSocket(this.url);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    socket.onopen = () => {
      this.connected = true;
      this.retryMs = 500;
      this.sendRaw({ type: "hello", protocol: PROTOCOL_VERSION, client: CLIENT_NAME });
      this.ping();
      this.dispatchEvent(new CustomEvent("open"));
    };
    socket.onclose = () => {
      const was = this.connected;
      this.connected = false;
      if (this.socket !== socket) return;
      this.dispatchEvent(new CustomEvent("close", { detail: { wasConnected: was } }));
      if (!this.closedByUser) {
        setTimeout(() => this.connect(), this.retryMs);
        this.retryMs = Math.min(this.retryMs * 2, 5000);
      }
    };
    socket.onmessage = (ev) => this.receive(ev.data);
  }

  receive(data) {
    const receivedMs = nowMs();
    if (typeof data === "string") {
      let msg;
      try {
        msg = JSON.parse(data);
      } catch (err) {
        this.dispatchEvent(new CustomEvent("protocol-error", { detail: new Error(`server sent invalid JSON: ${err.message}`) }));
        return;
      }
      if (msg.type === "pong") {
        const rtt = receivedMs - msg.client_time_ms;
        this.clockOffsetMs = msg.server_time_ms - (msg.client_time_ms + rtt / 2);
      }
      this.dispatchEvent(new CustomEvent("message", { detail: msg }));
      return;
    }
    try {
      const frame = parseFrame(data);
      frame.receivedMs = receivedMs;
      this.dispatchEvent(new CustomEvent("frame", { detail: frame }));
    } catch (err) {
      this.dispatchEvent(new CustomEvent("protocol-error", { detail: err }));
    }
  }

  sendRaw(msg) {
    if (!this.connected) return false;
    this.socket.send(JSON.stringify(msg));
    return true;
  }

  /** Send a client message with a fresh id; returns the id (or null when not connected). */
  send(msg) {
    const id = this.nextId++;
    return this.sendRaw({ ...msg, id }) ? id : null;
  }

  ping() {
    this.sendRaw({ type: "ping", client_time_ms: nowMs() });
  }

  close() {
    this.closedByUser = true;
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
