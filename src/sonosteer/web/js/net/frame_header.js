// The binary frame message of protocol v1: a 56-byte little-endian header, then JPEG bytes.

export const FRAME_MAGIC = "SSTF";
export const FRAME_HEADER_BYTES = 56;
export const FLAG_PREVIEW = 1;

/** Parse one binary frame message; throws on anything that is not a sonosteer frame. */
export function parseFrame(buffer) {
  if (buffer.byteLength < FRAME_HEADER_BYTES) {
    throw new Error(`frame of ${buffer.byteLength} bytes is shorter than its ${FRAME_HEADER_BYTES}-byte header`);
  }
  const v = new DataView(buffer);
  const magic = String.fromCharCode(v.getUint8(0), v.getUint8(1), v.getUint8(2), v.getUint8(3));
  if (magic !== FRAME_MAGIC) throw new Error(`not a sonosteer frame (magic ${JSON.stringify(magic)})`);
  const headerBytes = v.getUint16(6, true);
  if (headerBytes < FRAME_HEADER_BYTES || headerBytes > buffer.byteLength) {
    throw new Error(`bad frame header length ${headerBytes}`);
  }
  const flags = v.getUint32(20, true);
  return {
    version: v.getUint16(4, true),
    frameNumber: v.getUint32(8, true),
    epoch: v.getUint32(12, true),
    width: v.getUint16(16, true),
    height: v.getUint16(18, true),
    preview: (flags & FLAG_PREVIEW) !== 0,
    mediaTimeS: v.getFloat64(24, true),
    sendTimeMs: v.getFloat64(32, true),
    planMs: v.getFloat32(40, true),
    renderMs: v.getFloat32(44, true),
    encodeMs: v.getFloat32(48, true),
    outputToSendMs: v.getFloat32(52, true),
    jpeg: new Blob([new Uint8Array(buffer, headerBytes)], { type: "image/jpeg" }),
  };
}

/** Build a frame message (used by the in-browser mock server). */
export function packFrame(h, jpegBytes) {
  const out = new ArrayBuffer(FRAME_HEADER_BYTES + jpegBytes.byteLength);
  const v = new DataView(out);
  for (let i = 0; i < 4; i++) v.setUint8(i, FRAME_MAGIC.charCodeAt(i));
  v.setUint16(4, 1, true);
  v.setUint16(6, FRAME_HEADER_BYTES, true);
  v.setUint32(8, h.frameNumber >>> 0, true);
  v.setUint32(12, h.epoch >>> 0, true);
  v.setUint16(16, h.width, true);
  v.setUint16(18, h.height, true);
  v.setUint32(20, h.preview ? FLAG_PREVIEW : 0, true);
  v.setFloat64(24, h.mediaTimeS, true);
  v.setFloat64(32, h.sendTimeMs, true);
  v.setFloat32(40, h.planMs || 0, true);
  v.setFloat32(44, h.renderMs || 0, true);
  v.setFloat32(48, h.encodeMs || 0, true);
  v.setFloat32(52, h.outputToSendMs || 0, true);
  new Uint8Array(out, FRAME_HEADER_BYTES).set(new Uint8Array(jpegBytes));
  return out;
}
