// The client-side frame consumer ("ruthless" pacing): frames are shown when the audio reaches
// the media time they were rendered for. Frames more than `lateMs` late are dropped, early ones
// are held, and when the queue overflows the oldest are dropped down to a target depth. While
// playing, the picture never steps back in media time (the server's lookahead varies a little).

export class FramePacer {
  constructor({ lateMs = 50, maxDepth = 8, targetDepth = 3 } = {}) {
    this.lateMs = lateMs;
    this.maxDepth = maxDepth;
    this.targetDepth = targetDepth;
    this.queue = [];  // sorted by mediaTimeS
    this.shownMediaTimeS = -Infinity;
    this.dropped = { late: 0, overflow: 0, superseded: 0 };
  }

  get droppedTotal() {
    return this.dropped.late + this.dropped.overflow + this.dropped.superseded;
  }

  /** Queue a frame {frameNumber, mediaTimeS, bitmap?, ...}. */
  push(frame) {
    let i = this.queue.length;
    while (i > 0 && this.queue[i - 1].mediaTimeS > frame.mediaTimeS) i--;
    this.queue.splice(i, 0, frame);
    if (this.queue.length > this.maxDepth) {
      const excess = this.queue.length - this.targetDepth;
      for (const f of this.queue.splice(0, excess)) release(f);
      this.dropped.overflow += excess;
    }
  }

  /**
   * The frame to show at audio time nowS, or null to keep the current one.
   * While playing: the newest frame already due, unless it is more than lateMs late or older
   * than the frame on screen; frames it supersedes are dropped. While paused the clock stands
   * still, so the newest frame wins.
   */
  take(nowS, playing) {
    if (!playing) {
      if (!this.queue.length) return null;
      const newest = this.queue.pop();
      for (const f of this.queue) release(f);
      this.queue.length = 0;
      this.shownMediaTimeS = newest.mediaTimeS;
      return newest;
    }
    let chosen = null;
    while (this.queue.length && this.queue[0].mediaTimeS <= nowS) {
      const f = this.queue.shift();
      if ((nowS - f.mediaTimeS) * 1000 > this.lateMs) {
        this.dropped.late += 1;
        release(f);
        continue;
      }
      if (f.mediaTimeS < this.shownMediaTimeS) {
        this.dropped.superseded += 1; // older than the picture already on screen
        release(f);
        continue;
      }
      if (chosen) {
        this.dropped.superseded += 1; // overtaken by a newer due frame
        release(chosen);
      }
      chosen = f;
    }
    if (chosen) this.shownMediaTimeS = chosen.mediaTimeS;
    return chosen;
  }

  /** Forget queued frames (after a seek they belong to another place in the track). */
  flush() {
    for (const f of this.queue) release(f);
    this.queue.length = 0;
    this.shownMediaTimeS = -Infinity;
  }
}

function release(frame) {
  if (frame.bitmap && frame.bitmap.close) frame.bitmap.close();
}
