// REST client of the sonosteer server (docs/protocol.md, "REST"). Errors become ApiError with
// the server's code and message, so panels can show them as they are.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export class Api {
  constructor(base = "", fetchImpl = (...a) => fetch(...a)) {
    this.base = base;
    this.fetch = fetchImpl;
  }

  async json(method, path, body) {
    const init = { method, headers: {} };
    if (body !== undefined) {
      init.headers["content-type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await this.fetch(this.base + path, init);
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!res.ok) {
      const err = (data && data.error) || {};
      throw new ApiError(res.status, err.code || "http_" + res.status, err.message || text || res.statusText);
    }
    return data;
  }

  health() { return this.json("GET", "/api/health"); }
  schema() { return this.json("GET", "/api/settings/schema"); }
  tracks() { return this.json("GET", "/api/tracks"); }
  categories() { return this.json("GET", "/api/features/categories"); }
  scenes() { return this.json("GET", "/api/scenes"); }
  saveScene(name) { return this.json("POST", "/api/scenes", { name }); }
  loadScene(name) { return this.json("POST", `/api/scenes/${encodeURIComponent(name)}/load`); }
  deleteScene(name) { return this.json("DELETE", `/api/scenes/${encodeURIComponent(name)}`); }
  deleteTrack(id) { return this.json("DELETE", `/api/tracks/${encodeURIComponent(id)}`); }

  /** Features of a block: params {q, category, around, offset, limit}. */
  features(block, params = {}) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") qs.set(k, v);
    return this.json("GET", `/api/features/${encodeURIComponent(block)}?${qs}`);
  }

  feature(block, id) {
    return this.json("GET", `/api/features/${encodeURIComponent(block)}/${id}`);
  }

  /**
   * Upload an audio file; onProgress(fraction) follows the bytes sent. Resolves to the
   * server's {track}. Uses XMLHttpRequest because fetch cannot report upload progress.
   */
  uploadTrack(file, onProgress = () => {}) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", this.base + "/api/tracks");
      xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
      xhr.onerror = () => reject(new ApiError(0, "network", "upload failed: the server could not be reached"));
      xhr.onload = () => {
        let data = null;
        try {
          data = JSON.parse(xhr.responseText);
        } catch {
          data = null;
        }
        if (xhr.status >= 200 && xhr.status < 300) resolve(data);
        else {
          const err = (data && data.error) || {};
          reject(new ApiError(xhr.status, err.code || "http_" + xhr.status, err.message || xhr.statusText));
        }
      };
      const form = new FormData();
      form.append("file", file, file.name);
      xhr.send(form);
    });
  }
}
