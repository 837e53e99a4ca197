"""The search page: a small FastAPI app over a :class:`Catalogue`, served by uvicorn.

Routes: ``/`` the page (plain HTML + JS from ``static/``), ``/api/search?q=`` tracks by name,
``/api/neighbours?track=&k=`` neighbours of a catalogue track, ``POST /api/upload?name=&k=``
neighbours of an uploaded audio file (raw body, capped), ``/api/map`` the 2-D map, and
``/audio/{id}`` a track's audio by FAISS id (Starlette's ``FileResponse``: HTTP range requests,
so players can seek). Errors are JSON ``{"error", "hint"}`` with a 4xx status.

Example:
    >>> app = create_app(Catalogue.load("my_index/"), max_upload_bytes=50 * 2**20)
    >>> serve(app, host="127.0.0.1", port=8000)          # blocks; Ctrl-C stops
"""

from __future__ import annotations

import mimetypes
import tempfile
from pathlib import Path

from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from audioclr.data.scan import FFMPEG_EXTS, SOUNDFILE_EXTS
from audioclr.errors import AudioclrError, AudioReadError
from audioclr.search.catalogue import MAX_K, Catalogue, OutsideSources, UnknownTrack

STATIC = Path(__file__).with_name("static")


class UploadTooLarge(AudioclrError):
    """An upload over the server's cap (HTTP 413)."""


def _status(exc: AudioclrError) -> int:
    if isinstance(exc, UnknownTrack):
        return 404
    if isinstance(exc, OutsideSources):
        return 403
    if isinstance(exc, UploadTooLarge):
        return 413
    if isinstance(exc, AudioReadError):
        return 415
    return 400


def create_app(cat: Catalogue, max_upload_bytes: int) -> FastAPI:
    """The page's app over ``cat``; uploads over ``max_upload_bytes`` get 413."""
    app = FastAPI(title="audioclr search", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    n_tracks = len(cat.tix.table)

    @app.exception_handler(AudioclrError)
    async def _error(request: Request, exc: AudioclrError) -> JSONResponse:
        return JSONResponse({"error": str(exc), "hint": exc.hint}, status_code=_status(exc))

    @app.get("/")
    def page() -> FileResponse:
        return FileResponse(STATIC / "page.html", media_type="text/html")

    @app.get("/api/info")
    def info() -> dict:
        return {"tracks": n_tracks, "max_k": MAX_K, "max_upload_bytes": max_upload_bytes}

    @app.get("/api/search")
    def search(q: str = "", limit: int = Query(50, ge=1, le=500)) -> dict:
        return {"query": q, "matches": cat.find(q, limit)}

    @app.get("/api/map")
    def catalogue_map() -> dict:
        return cat.map_points()

    @app.get("/api/neighbours")
    def neighbours(track: str, k: int = 10) -> dict:
        return cat.neighbours_of_track(track, k)

    @app.post("/api/upload")
    async def upload(request: Request, name: str = "upload", k: int = 10) -> dict:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_upload_bytes:
            raise _too_large(int(declared), max_upload_bytes)
        suffix = Path(name).suffix.lower()
        suffix = suffix if suffix in SOUNDFILE_EXTS | FFMPEG_EXTS else ""
        with tempfile.TemporaryDirectory(prefix="audioclr-upload-") as tmp:
            path = Path(tmp) / f"upload{suffix}"
            size = 0
            with open(path, "wb") as fh:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > max_upload_bytes:
                        raise _too_large(size, max_upload_bytes)
                    fh.write(chunk)
            try:
                return await run_in_threadpool(cat.neighbours_of_file, path, Path(name).name, k)
            except AudioReadError as exc:
                reason = str(exc).replace(f"{path}: ", "")
                raise AudioReadError(
                    f"{Path(name).name!r} is not audio this server can read ({reason})",
                    hint="upload a wav, flac, ogg or mp3 file",
                ) from exc

    @app.get("/audio/{track}")
    def audio(track: int) -> FileResponse:
        path = cat.audio_path(track)
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=kind)

    return app


def _too_large(size: int, cap: int) -> UploadTooLarge:
    return UploadTooLarge(
        f"upload of {size / 2**20:.1f} MB or more is over this server's cap of "
        f"{cap / 2**20:.1f} MB",
        hint="upload a shorter excerpt, or restart audioclr serve with a larger --max-upload-mb",
    )


def serve(app: FastAPI, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run ``app`` with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="warning")
