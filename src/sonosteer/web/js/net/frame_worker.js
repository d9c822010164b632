// The frame worker: owns the WebSocket, decodes JPEG frames, paces them against the page's
// audio clock and draws them on the transferred output canvas, all off the main thread, so a
// busy page (orbs, panels) never delays or backs up the picture. JSON messages go on to the page;
// each frame's `meters` are handed over when that frame is shown.
//
// Page -> worker: {op: "connect", url} | {op: "relay"} | {op: "data", data} | {op: "send", text}
//   | {op: "clock", wallMs, mediaS, playing, rate} | {op: "epoch", epoch} | {op: "flush"}
//   | {op: "canvas", canvas} | {op: "close"}
// Worker -> page: {op: "open"} | {op: "close"} | {op: "text", data} | {op: "send", text} (relay)
//   | {op: "shown", frame} | {op: "stats", stats} | {op: "thumb", bitmap} | {op: "error", message}

import { FramePacer } from "../stage/frame_pacer.js";
import { parseFrame } from "./frame_header.js";

const MAX_IN_FLIGHT = 3;  // concurrent decodes
const MAX_WAITING = 2;    // undecoded frames kept while the decoder is busy (oldest dropped)
const METERS_KEPT = 64;
const THUMB_EVERY_MS = 300;
const STATS_EVERY_MS = 250;

const state = {
  socket: null,
  relay: false,
  clock: { wallMs: 0, mediaS: 0, playing: false, rate: 1 },
  epoch: 0,
  pacer: new FramePacer({ lateMs: 50, maxDepth: 8, targetDepth: 3 }),
  waiting: [],
  inFlight: 0,
  stale: 0,
  decodeMs: [],
  meters: new Map(),
  canvas: null,
  ctx: null,
  lastThumbMs: 0,
  lastStatsMs: 0,
  shownTimes: [],
};

const wallNow = () => performance.timeOrigin + performance.now();

/** The audio time the listener hears now, extrapolated from the page's latest clock post. */
function mediaNow() {
  const c = state.clock;
  return c.playing ? c.mediaS + ((wallNow() - c.wallMs) / 1000) * c.rate : c.mediaS;
}

function post(msg, transfer) {
  self.postMessage(msg, transfer || []);
}

function connect(url) {
  const socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  state.socket = socket;
  socket.onopen = () => post({ op: "open" });
  socket.onclose = () => {
    if (state.socket === socket) post({ op: "close" });
  };
  socket.onmessage = (e) => receive(e.data);
}

function receive(data) {
  if (typeof data === "string") {
    // Meters wait for their frame; everything else goes straight on to the page.
    if (data.startsWith('{"type":"meters"') || data.startsWith('{"type": "meters"')) {
      try {
        const m = JSON.parse(data);
        state.meters.set(m.frame_number, m);
        if (state.meters.size > METERS_KEPT) state.meters.delete(state.meters.keys().next().value);
      } catch (err) {
        post({ op: "error", message: `bad meters message: ${err.message}` });
      }
      return;
    }
    post({ op: "text", data, receivedMs: wallNow() });
    return;
  }
  let frame;
  try {
    frame = parseFrame(data);
  } catch (err) {
    post({ op: "error", message: err.message });
    return;
  }
  frame.receivedMs = wallNow();
  if (frame.epoch !== state.epoch) {
    // Another transport epoch: before the latest seek, or another track's session (each track
    // counts its own epochs, so "older" cannot be told by the number alone).
    state.stale += 1;
    return;
  }
  state.waiting.push(frame);
  if (state.waiting.length > MAX_WAITING) {
    state.waiting.shift();
    state.pacer.dropped.overflow += 1;
  }
  pump();
}

/** Decode waiting frames, skipping those already too late to be shown. */
function pump() {
  while (state.waiting.length && state.inFlight < MAX_IN_FLIGHT) {
    const frame = state.waiting.shift();
    if (state.clock.playing && (mediaNow() - frame.mediaTimeS) * 1000 > state.pacer.lateMs) {
      state.pacer.dropped.late += 1;
      continue;
    }
    state.inFlight += 1;
    createImageBitmap(frame.jpeg).then((bitmap) => {
      frame.bitmap = bitmap;
      frame.decodedMs = wallNow();
      pushBounded(state.decodeMs, frame.decodedMs - frame.receivedMs, 60);
      if (frame.epoch !== state.epoch) {
        bitmap.close();
        state.stale += 1;
      } else {
        state.pacer.push(frame);
      }
    }, (err) => post({ op: "error", message: `frame ${frame.frameNumber} could not be decoded: ${err.message}` }))
      .finally(() => {
        state.inFlight -= 1;
        pump();
      });
  }
}

function show(frame) {
  const { canvas, ctx } = state;
  if (canvas.width !== frame.bitmap.width || canvas.height !== frame.bitmap.height) {
    canvas.width = frame.bitmap.width;
    canvas.height = frame.bitmap.height;
  }
  ctx.drawImage(frame.bitmap, 0, 0);
  const shownMs = wallNow();
  pushBounded(state.shownTimes, shownMs, 120);
  post({
    op: "shown",
    frame: {
      frameNumber: frame.frameNumber,
      epoch: frame.epoch,
      mediaTimeS: frame.mediaTimeS,
      preview: frame.preview,
      width: frame.width,
      height: frame.height,
      sendTimeMs: frame.sendTimeMs,
      receivedMs: frame.receivedMs,
      shownMs,
      shownMediaTimeS: mediaNow(),
      playing: state.clock.playing,
      meters: state.meters.get(frame.frameNumber) || null,
    },
  });
  if (shownMs - state.lastThumbMs > THUMB_EVERY_MS) {
    state.lastThumbMs = shownMs;
    const bitmap = frame.bitmap;
    createImageBitmap(bitmap, { resizeWidth: 128, resizeHeight: 128, resizeQuality: "medium" })
      .then((thumb) => post({ op: "thumb", bitmap: thumb }, [thumb]))
      .finally(() => bitmap.close());
  } else {
    frame.bitmap.close();
  }
}

function tick() {
  if (state.canvas) {
    const frame = state.pacer.take(mediaNow(), state.clock.playing);
    if (frame) show(frame);
  }
  const now = wallNow();
  if (now - state.lastStatsMs > STATS_EVERY_MS) {
    state.lastStatsMs = now;
    while (state.shownTimes.length && now - state.shownTimes[0] > 1000) state.shownTimes.shift();
    post({
      op: "stats",
      stats: {
        fps: state.shownTimes.length,
        dropped: { ...state.pacer.dropped, stale: state.stale },
        decodeMedianMs: median(state.decodeMs),
        queued: state.pacer.queue.length,
      },
    });
  }
  schedule();
}

function schedule() {
  if (self.requestAnimationFrame && state.canvas) self.requestAnimationFrame(tick);
  else setTimeout(tick, 8);
}

self.onmessage = (e) => {
  const msg = e.data;
  switch (msg.op) {
    case "connect":
      connect(msg.url);
      break;
    case "relay":
      state.relay = true; // the page carries the socket (the in-browser mock server)
      break;
    case "data":
      receive(msg.data);
      break;
    case "send":
      if (state.relay) post({ op: "send", text: msg.text });
      else if (state.socket && state.socket.readyState === 1) state.socket.send(msg.text);
      break;
    case "clock":
      state.clock = { wallMs: msg.wallMs, mediaS: msg.mediaS, playing: msg.playing, rate: msg.rate };
      break;
    case "epoch":
      if (msg.epoch !== state.epoch) {
        state.epoch = msg.epoch;
        flush();
      }
      break;
    case "flush":
      flush();
      break;
    case "canvas":
      state.canvas = msg.canvas;
      state.ctx = msg.canvas.getContext("2d");
      break;
    case "close":
      if (state.socket) state.socket.close();
      break;
    default:
      break;
  }
};

function flush() {
  state.pacer.flush();
  state.waiting.length = 0;
}

function pushBounded(arr, v, n) {
  arr.push(v);
  if (arr.length > n) arr.shift();
}

function median(arr) {
  if (!arr.length) return null;
  const s = [...arr].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

schedule();
