// JPEG -> ImageBitmap off the main thread: a worker decodes, the bitmap is transferred back.
// Frames that are hopeless before decoding (already too late, or pushed out by newer ones) are
// never decoded, so a slow machine sheds work instead of building a backlog.

const WORKER_SRC = `
self.onmessage = async (e) => {
  const { key, jpeg } = e.data;
  try {
    const bitmap = await createImageBitmap(jpeg);
    self.postMessage({ key, bitmap }, [bitmap]);
  } catch (err) {
    self.postMessage({ key, error: String(err && err.message || err) });
  }
};`;

export class FrameDecoder {
  constructor({ maxInFlight = 3 } = {}) {
    this.maxInFlight = maxInFlight;
    this.pending = new Map(); // key -> {resolve, reject}
    this.nextKey = 1;
    try {
      const url = URL.createObjectURL(new Blob([WORKER_SRC], { type: "text/javascript" }));
      this.worker = new Worker(url);
      this.worker.onmessage = (e) => this.onResult(e.data);
    } catch {
      this.worker = null; // e.g. a locked-down page: decode on the main thread instead
    }
  }

  get inFlight() {
    return this.pending.size;
  }

  /** Decode a JPEG Blob to an ImageBitmap. */
  decode(jpeg) {
    if (!this.worker) return createImageBitmap(jpeg);
    const key = this.nextKey++;
    return new Promise((resolve, reject) => {
      this.pending.set(key, { resolve, reject });
      this.worker.postMessage({ key, jpeg });
    });
  }

  onResult({ key, bitmap, error }) {
    const p = this.pending.get(key);
    if (!p) {
      if (bitmap) bitmap.close();
      return;
    }
    this.pending.delete(key);
    if (error) p.reject(new Error(error));
    else p.resolve(bitmap);
  }
}
