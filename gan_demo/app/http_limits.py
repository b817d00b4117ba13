"""Request size limits, enforced before anything reads a body: a 120 MB JSON body once stalled unrelated requests
for up to a minute and added a gigabyte of memory while gradio parsed it.

    demo.launch(..., **launch_options(demo))

* Every POST/PUT/PATCH body is at most GAN_DEMO_MAX_BODY_MB (default 2: the largest sensible request here is a few
  kilobytes of JSON; a hostile-input test sends a 1 MB model name and must get "unknown model", not a 413).
* File uploads (gradio's /upload route) are accepted only when the page has a component that takes files (an image
  to project, say), each at most GAN_DEMO_MAX_UPLOAD_MB (default 10); otherwise /upload answers 403. gradio's own
  max_file_size is set to the same bound. Uploaded files live in gradio's cache and go with it (`delete_cache` of
  build_app: files older than an hour, every hour, and all of them when the server restarts).
A body announced by Content-Length is refused (413) before a byte of it is read; a chunked body is counted as it
arrives and refused as soon as it passes the bound.
"""
from __future__ import annotations

import json
import os

from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

UPLOAD_ROUTE = "/upload"
MULTIPART_SLACK = 64 * 1024       # form boundaries and headers around an uploaded file


def _env_mb(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name) or default)
    except ValueError:
        return default
    return value if value > 0 else default


class _TooLarge(HTTPException):
    """Raised from the body stream: FastAPI passes HTTPExceptions on (any other error while it reads a body
    becomes "400 There was an error parsing the body"), and starlette answers them with their status."""

    def __init__(self, detail: str):
        super().__init__(413, detail)


class BodyLimit:
    """ASGI middleware: bodies above `max_body` bytes (uploads: `max_upload`, or none when `uploads` is False)
    are answered with 413 (403 for an upload nobody asked for) and never read."""

    def __init__(self, app, max_body: int, max_upload: int, uploads: bool):
        self.app, self.max_body, self.max_upload, self.uploads = app, max_body, max_upload, uploads

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        upload = scope["path"].rstrip("/").endswith(UPLOAD_ROUTE)
        if upload and not self.uploads:
            return await _answer(send, 403, "this app takes no file uploads")
        limit = self.max_upload + MULTIPART_SLACK if upload else self.max_body
        what = f"{'an upload' if upload else 'a request body'} may be at most {_mb(limit)}"
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return await _answer(send, 400, "bad Content-Length")
            if int(length) > limit:
                return await _answer(send, 413, f"too large: {what}")
            return await self.app(scope, receive, send)
        received, started = 0, False

        async def counted():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(f"too large: {what}")
            return message

        async def watched(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            if not started:
                await _answer(send, 413, f"too large: {what}")


def _mb(n: int) -> str:
    return f"{n / 2 ** 20:.1f} MB" if n < 10 * 2 ** 20 else f"{n / 2 ** 20:.0f} MB"


async def _answer(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def upload_components(demo) -> list:
    """The page's components that take files from the visitor: of a file-taking kind, input to some event, and
    not made non-interactive."""
    import gradio as gr
    kinds = (gr.File, gr.UploadButton, gr.Image, gr.ImageEditor, gr.Audio, gr.Video, gr.Model3D, gr.Gallery,
             gr.MultimodalTextbox)
    inputs = {id(block) for fn in demo.fns.values() for block in fn.inputs}
    return [b for b in demo.blocks.values()
            if isinstance(b, kinds) and id(b) in inputs and getattr(b, "interactive", None) is not False]


def launch_options(demo) -> dict:
    """launch() arguments that install the limits for this page."""
    max_body = int(_env_mb("GAN_DEMO_MAX_BODY_MB", 2) * 2 ** 20)
    max_upload = int(_env_mb("GAN_DEMO_MAX_UPLOAD_MB", 10) * 2 ** 20)
    uploads = bool(upload_components(demo))
    return dict(max_file_size=max_upload,
                app_kwargs={"middleware": [Middleware(BodyLimit, max_body=max_body, max_upload=max_upload,
                                                      uploads=uploads)]})
