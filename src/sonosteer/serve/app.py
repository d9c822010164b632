"""The FastAPI application: REST endpoints, the WebSocket, and the browser UI's static files."""

from __future__ import annotations

import asyncio
import json
import mimetypes
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from sonosteer import __version__
from sonosteer.bridge.settings import SettingsError, settings_schema
from sonosteer.labels.catalog import resolve_block
from sonosteer.labels.categories import CATEGORY_COLORS, UNLABELED_COLOR
from sonosteer.serve.control import UnsupportedProtocol, analysis_json
from sonosteer.serve.protocol import PROTOCOL_VERSION, ProtocolError
from sonosteer.serve.scenes import SceneNameError
from sonosteer.serve.tracks import TrackError, check_track_id
from sonosteer.serve.uploads import UploadError, probe_audio, receive_upload

if TYPE_CHECKING:
    from sonosteer.serve.server import LiveServer

WEB_ROOT = Path(__file__).resolve().parents[1] / "web"
_STATUS = {
    "malformed": 400,
    "invalid_value": 422,
    "out_of_range": 422,
    "unknown_path": 422,
    "unknown_track": 404,
    "not_found": 404,
    "track_not_ready": 409,
    "no_track": 409,
    "too_large": 413,
    "not_audio": 415,
}


class ApiError(Exception):
    """A REST refusal, rendered as {"error": {"code", "message"}} with a fitting status."""

    def __init__(self, code: str, message: str, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or _STATUS.get(code, 400)


class SceneRequest(BaseModel):
    name: str


_UI_MISSING_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>sonosteer</title>
<style>body{font:16px/1.5 system-ui,sans-serif;background:#111;color:#ddd;max-width:40em;margin:4em auto}
code{color:#fc6}</style></head><body><h1>sonosteer server is running</h1>
<p>The browser instrument is not installed in this copy of sonosteer (<code>src/sonosteer/web/</code>
is missing), so there is nothing to play here yet. The server, its REST API and its WebSocket work:
see <a href="/api/health" style="color:#6cf">/api/health</a> and <code>docs/protocol.md</code>.</p>
</body></html>"""


def create_app(server: LiveServer, web_root: Path = WEB_ROOT) -> FastAPI:
    """The application for one LiveServer; its lifespan starts and stops the render pipeline."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        server.on_startup(asyncio.get_running_loop())
        stats_task = asyncio.create_task(_stats_loop(server))
        try:
            yield
        finally:
            stats_task.cancel()
            await server.on_shutdown()

    app = FastAPI(title="sonosteer", version=__version__, lifespan=lifespan, docs_url="/api/docs", redoc_url=None)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "malformed"}.get(exc.status_code, "malformed")
        return JSONResponse({"error": {"code": code, "message": str(exc.detail)}}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        return JSONResponse({"error": {"code": "invalid_value", "message": f"{where}: {first['msg']}"}}, status_code=422)

    def track_or_404(track_id: str):
        try:
            return server.library.get(check_track_id(track_id))
        except TrackError as exc:
            raise ApiError(exc.code, str(exc)) from None

    # -- health and settings -----------------------------------------------------------

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        current = server.sessions.current
        return {
            "status": "ok",
            "version": __version__,
            "protocol": PROTOCOL_VERSION,
            "engine": server.engine_info.to_json(),
            "track": current.track_id if current else None,
            "clients": len(server.hub.clients),
            "uptime_s": round(server.uptime_s(), 3),
            "labels": server.catalog.labels_source,
        }

    @app.get("/api/settings")
    def get_settings() -> dict[str, Any]:
        current = server.sessions.current
        if current is None:
            raise ApiError("no_track", "no track is loaded")
        return current.settings_json()

    @app.get("/api/settings/schema")
    def get_settings_schema() -> dict[str, Any]:
        return settings_schema()

    @app.get("/api/stats")
    def get_stats() -> dict[str, Any]:
        return server.loop_stats()

    # -- tracks ------------------------------------------------------------------------

    @app.get("/api/tracks")
    def list_tracks() -> dict[str, Any]:
        return {"tracks": server.track_list()}

    @app.post("/api/tracks", status_code=202)
    async def upload_track(request: Request) -> JSONResponse:
        try:
            received = await receive_upload(request, server.config.max_upload_bytes, server.library.incoming_path)
        except UploadError as exc:
            raise ApiError(exc.code, str(exc), exc.status) from None
        problem = await asyncio.to_thread(probe_audio, received.path)
        if problem is not None:
            received.path.unlink(missing_ok=True)
            raise ApiError("not_audio", f"{received.filename}: {problem}")
        track = server.library.add_upload(received.path, received.filename, received.sha256)
        server.broadcast_tracks()
        status = 200 if track.status == "ready" else 202
        return JSONResponse({"track": track.summary()}, status_code=status)

    @app.get("/api/tracks/{track_id}")
    def get_track(track_id: str) -> dict[str, Any]:
        track = track_or_404(track_id)
        out = track.summary()
        if track.bundle is not None:
            out["stems"] = track.bundle.stems
            out["analysis"] = analysis_json(track.bundle.manifest)
        return out

    @app.get("/api/tracks/{track_id}/audio")
    def get_track_audio(track_id: str) -> FileResponse:
        track = track_or_404(track_id)
        if not track.audio_path.is_file():
            raise ApiError("not_found", f"the audio file of {track.name} is gone ({track.audio_path})")
        media_type = mimetypes.guess_type(track.audio_path.name)[0] or "application/octet-stream"
        return FileResponse(track.audio_path, media_type=media_type)

    @app.get("/api/tracks/{track_id}/events")
    async def track_events(track_id: str) -> StreamingResponse:
        track = track_or_404(track_id)
        queue = server.subscribe_progress(track.id)

        async def stream():
            try:
                message = track.progress_message()
                while True:
                    yield f"data: {json.dumps(message)}\n\n"
                    if message["status"] in ("ready", "failed"):
                        return
                    message = await queue.get()
            finally:
                server.unsubscribe_progress(track.id, queue)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.delete("/api/tracks/{track_id}")
    def delete_track(track_id: str) -> dict[str, Any]:
        track = track_or_404(track_id)
        try:
            server.sessions.forget(track.id)
            server.library.delete(track.id)
        except ProtocolError as exc:
            raise ApiError(exc.code, exc.message) from None
        except TrackError as exc:
            raise ApiError(exc.code, str(exc)) from None
        server.broadcast_tracks()
        return {"deleted": track.id}

    # -- features ----------------------------------------------------------------------

    @app.get("/api/features/categories")
    def feature_categories() -> dict[str, Any]:
        return {
            "categories": [{"name": n, "color": c} for n, c in CATEGORY_COLORS.items()],
            "unlabeled_color": UNLABELED_COLOR,
        }

    @app.get("/api/features/{block}")
    def features(
        block: str,
        q: str = Query("", max_length=200),
        category: str | None = None,
        around: int | None = Query(None, ge=0),
        offset: int = Query(0, ge=0),
        limit: int = Query(200, ge=1, le=5120),
    ) -> dict[str, Any]:
        try:
            name = resolve_block(block)
        except KeyError as exc:
            raise ApiError("not_found", exc.args[0]) from None
        if category is not None and category not in CATEGORY_COLORS:
            raise ApiError("invalid_value", f"unknown category {category!r}; see /api/features/categories")
        result = server.catalog.search(name, q, category=category, around=around, offset=offset, limit=limit)
        return {
            "block": name,
            "n_features": server.catalog.n_features[name],
            "total": result.total,
            "labels_source": server.catalog.labels_source,
            "features": [f.to_json() for f in result.features],
        }

    @app.get("/api/features/{block}/{feature_id}")
    def feature(block: str, feature_id: int) -> dict[str, Any]:
        try:
            return server.catalog.get(block, feature_id).to_json()
        except KeyError as exc:
            raise ApiError("not_found", exc.args[0]) from None
        except IndexError as exc:
            raise ApiError("not_found", str(exc)) from None

    # -- scenes ------------------------------------------------------------------------

    @app.get("/api/scenes")
    def list_scenes() -> dict[str, Any]:
        return {"scenes": server.scenes.list()}

    @app.post("/api/scenes", status_code=201)
    def save_scene(body: SceneRequest) -> dict[str, Any]:
        current = server.sessions.current
        if current is None:
            raise ApiError("no_track", "no track is loaded, so there is no scene to save")
        try:
            with current.lock:
                scene = current.scene
            return {"scene": server.scenes.save(body.name, scene)}
        except SceneNameError as exc:
            raise ApiError("invalid_value", str(exc)) from None

    @app.get("/api/scenes/{name}")
    def get_scene(name: str) -> dict[str, Any]:
        return _load_scene(server, name).model_dump(mode="json")

    @app.post("/api/scenes/{name}/load")
    def load_scene(name: str) -> dict[str, Any]:
        scene = _load_scene(server, name)
        current = server.sessions.current
        if current is None:
            raise ApiError("no_track", "load a track before loading a scene")
        try:
            current.replace_scene(scene)
        except ProtocolError as exc:
            raise ApiError("invalid_value", f"scene {name!r} does not fit this track: {exc.message}") from None
        server.broadcast_state_threadsafe()
        return {"loaded": name}

    @app.delete("/api/scenes/{name}")
    def delete_scene(name: str) -> dict[str, Any]:
        try:
            server.scenes.delete(name)
        except SceneNameError as exc:
            raise ApiError("invalid_value", str(exc)) from None
        except FileNotFoundError as exc:
            raise ApiError("not_found", str(exc)) from None
        return {"deleted": name}

    # -- the WebSocket -----------------------------------------------------------------

    @app.websocket("/ws")
    async def websocket_endpoint(websocket: WebSocket, frames: int = 1) -> None:
        await websocket.accept()
        client = server.hub.add(websocket, frames_enabled=bool(frames))
        server.hub.send(client, server.controller.welcome(client))
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message.get("text") is not None:
                    server.controller.handle_text(client, message["text"])
                elif message.get("bytes") is not None:
                    server.controller.handle_binary(client)
        except UnsupportedProtocol:
            await asyncio.sleep(0.05)  # let the error reply go out first
            await websocket.close(code=4001, reason="unsupported protocol version")
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            server.controller.on_disconnect(client)
            await server.hub.remove(client)

    @app.api_route("/api/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def unknown_api(path: str) -> None:
        """Anything else under /api is a JSON 404, never a static file or the UI's 405."""
        raise ApiError("not_found", f"no API endpoint /api/{path}")

    # -- the browser UI ----------------------------------------------------------------

    if (web_root / "index.html").is_file():
        app.mount("/", StaticFiles(directory=web_root, html=True), name="web")
    else:

        @app.get("/", response_class=HTMLResponse)
        def ui_missing() -> str:
            return _UI_MISSING_PAGE

    return app


def _load_scene(server: LiveServer, name: str):
    try:
        return server.scenes.load(name)
    except SceneNameError as exc:
        raise ApiError("invalid_value", str(exc)) from None
    except FileNotFoundError as exc:
        raise ApiError("not_found", str(exc)) from None
    except SettingsError as exc:
        raise ApiError("invalid_value", f"scene {name!r} cannot be loaded: {exc}") from None


async def _stats_loop(server: LiveServer) -> None:
    """Once per second, each frame-receiving client gets a `stats` message for its status line."""
    while True:
        await asyncio.sleep(1.0)
        server.send_stats()
