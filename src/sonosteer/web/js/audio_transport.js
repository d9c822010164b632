// The track's audio, played by the page itself: play, pause, seek and rate requests go to the
// server, broadcasts from other pages are followed, and the play position the listener hears is
// reported about 10 times per second (the server's audio clock locks onto it).

import { nowMs } from "./net/connection.js";

const REPORT_EVERY_MS = 100;
const FOLLOW_TOLERANCE_S = 0.3;

export class AudioTransport extends EventTarget {
  /**
   * audio: the <audio> element; session: the Session; renderLatencyMs(): the pacer's measured
   * receive-to-show latency. Events: "seek" (frames queued for the old place are stale),
   * "blocked" (the browser refused to start audio without a click), "change".
   */
  constructor(audio, session, { renderLatencyMs = () => undefined } = {}) {
    super();
    this.audio = audio;
    this.session = session;
    this.renderLatencyMs = renderLatencyMs;
    this.trackId = null;
    this.epoch = 0;
    this.blocked = false;
    session.addEventListener("track", () => this.loadTrack(session.track));
    session.addEventListener("transport", (e) => this.follow(e.detail));
    for (const ev of ["play", "pause", "seeked", "ratechange"]) {
      audio.addEventListener(ev, () => {
        this.report();
        this.emit("change");
      });
    }
    audio.addEventListener("ended", () => {
      this.session.transportRequest("pause");
      this.emit("change");
    });
    audio.addEventListener("loadedmetadata", () => this.emit("change"));
    this.timer = setInterval(() => !audio.paused && this.report(), REPORT_EVERY_MS);
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  get playing() {
    return !this.audio.paused && !this.audio.ended;
  }

  get durationS() {
    const t = this.session.track;
    return (t && t.duration_s) || this.audio.duration || 0;
  }

  /** The media time the listener hears now, in seconds. */
  mediaTime() {
    return this.audio.currentTime;
  }

  loadTrack(track) {
    const id = track ? track.id : null;
    if (id === this.trackId) return;
    this.trackId = id;
    this.audio.pause();
    if (track && track.audio_url) {
      this.audio.src = track.audio_url;
      this.audio.load();
    } else {
      this.audio.removeAttribute("src");
    }
    this.emit("seek");
    this.emit("change");
  }

  /**
   * Follow a transport broadcast or state. Our own requests come back too: the page already did
   * them, and the position in the echo is older than what is playing now, so nothing moves.
   */
  follow(t) {
    if (!this.trackId) return;
    const audio = this.audio;
    if (typeof t.epoch === "number") this.epoch = t.epoch;
    if (t.by && t.by === this.session.clientId) return;
    if (typeof t.rate === "number" && Math.abs(audio.playbackRate - t.rate) > 1e-3) audio.playbackRate = t.rate;
    if (typeof t.position_s === "number" && Math.abs(audio.currentTime - t.position_s) > FOLLOW_TOLERANCE_S) {
      audio.currentTime = t.position_s;
      this.emit("seek");
    }
    if (t.playing && audio.paused) this.startAudio();
    else if (t.playing === false && !audio.paused) audio.pause();
    this.emit("change");
  }

  startAudio() {
    const p = this.audio.play();
    if (p && p.catch) {
      p.then(() => {
        if (this.blocked) {
          this.blocked = false;
          this.emit("change");
        }
      }).catch((err) => {
        if (err && err.name === "NotAllowedError") {
          this.blocked = true;
          this.emit("blocked");
          this.emit("change");
        }
      });
    }
  }

  play() {
    if (!this.trackId) return;
    this.blocked = false;
    this.startAudio();
    this.session.transportRequest("play");
  }

  pause() {
    this.audio.pause();
    this.session.transportRequest("pause");
  }

  toggle() {
    if (this.playing) this.pause();
    else this.play();
  }

  seek(positionS) {
    if (!this.trackId) return;
    const t = Math.min(Math.max(0, positionS), this.durationS || positionS);
    this.audio.currentTime = t;
    this.emit("seek");
    this.session.transportRequest("seek", { position_s: t });
    this.report();
  }

  setRate(rate) {
    this.audio.playbackRate = rate;
    this.session.transportRequest("rate", { rate });
  }

  /** The `position` report: where the listener is, whether it plays, and our render latency. */
  report() {
    if (!this.trackId) return;
    const msg = {
      type: "position",
      position_s: this.audio.currentTime,
      playing: this.playing,
      rate: this.audio.playbackRate,
      client_time_ms: nowMs(),
    };
    const latency = this.renderLatencyMs();
    if (Number.isFinite(latency)) msg.render_latency_ms = latency;
    this.session.conn.sendRaw(msg);
  }
}
