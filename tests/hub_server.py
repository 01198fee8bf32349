"""A stand-in for the Hugging Face hub on 127.0.0.1, for the real huggingface_hub client (no network).

It answers what `snapshot_download` and `hf_hub_download` ask: the revision's commit
(`/api/models/ORG/NAME/revision/REV`), the commit's file list (`/api/models/ORG/NAME/tree/COMMIT`), and
each file (`HEAD`/`GET /ORG/NAME/resolve/REV/PATH`, with `X-Repo-Commit` and an `ETag`, the sha256 of the
content, which names its blob in the cache). So the cache it leaves is the client's own: blobs, snapshots,
refs, the tree listings (`trees/<commit>.json`), the `.locks`, with the modes the client gives them.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse


def etag(data: bytes) -> str:
    """The ETag the server sends for `data`: the name of its blob in the cache."""
    return hashlib.sha256(data).hexdigest()


class LocalHub:
    """repo_id -> {commit -> {path -> bytes}} and refs, served while in a `with` block at `endpoint`."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, dict[str, bytes]]] = {}
        self.refs: dict[str, dict[str, str]] = {}
        self.requests: list[tuple[str, str]] = []
        self.endpoint = ""
        self._server: ThreadingHTTPServer | None = None

    def add(
        self, repo_id: str, commit: str, files: dict[str, bytes], refs: tuple[str, ...] = ("main",)
    ) -> None:
        self.repos.setdefault(repo_id, {})[commit] = files
        for ref in refs:
            self.refs.setdefault(repo_id, {})[ref] = commit

    def commit(self, repo_id: str, revision: str) -> str | None:
        if revision in self.repos.get(repo_id, {}):
            return revision
        return self.refs.get(repo_id, {}).get(revision)

    def __enter__(self) -> LocalHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                hub._answer(self, head=False)

            def do_HEAD(self) -> None:
                hub._answer(self, head=True)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self._server.server_port}"
        return self

    def __exit__(self, *exc) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, request: BaseHTTPRequestHandler, *, head: bool) -> None:
        self.requests.append((request.command, request.path))
        parts = unquote(urlparse(request.path).path).strip("/").split("/")
        api = parts[:2] == ["api", "models"]
        if api:
            parts = parts[2:]
        if len(parts) < 4:  # not a model's (the client also asks e.g. /api/agent-harnesses)
            return _send(request, 404, b"{}", {}, head)
        repo_id, kind, revision, path = "/".join(parts[:2]), parts[2], parts[3], "/".join(parts[4:])
        commit = self.commit(repo_id, revision)
        if commit is None:
            code = "RepoNotFound" if repo_id not in self.repos else "RevisionNotFound"
            return _send(request, 404, b'{"error": "not found"}', {"X-Error-Code": code}, head)
        files = self.repos[repo_id][commit]
        if api and kind == "revision":
            info = {"id": repo_id, "sha": commit, "siblings": [{"rfilename": name} for name in files]}
            return _send(request, 200, json.dumps(info).encode(), {"Content-Type": "application/json"}, head)
        if api and kind == "tree":
            tree = [
                {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                for name, data in files.items()
            ]
            return _send(request, 200, json.dumps(tree).encode(), {"Content-Type": "application/json"}, head)
        if kind != "resolve" or path not in files:
            return _send(request, 404, b"", {"X-Error-Code": "EntryNotFound"}, head)
        data = files[path]
        return _send(request, 200, data, {"X-Repo-Commit": commit, "ETag": f'"{etag(data)}"'}, head)


def _send(
    request: BaseHTTPRequestHandler, code: int, body: bytes, headers: dict[str, str], head: bool
) -> None:
    request.send_response(code)
    for name, value in headers.items():
        request.send_header(name, value)
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    if not head:
        request.wfile.write(body)
