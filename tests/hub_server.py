"""A local Hugging Face Hub for tests: a stdlib HTTP server on 127.0.0.1 that speaks enough of the
Hub API for the real ``huggingface_hub`` 2.x client and ``transformers`` 5.x ``from_pretrained``.

It depends on nothing but the standard library, so any test (or script) can use it. Repos live in
memory: each is a list of immutable commits plus a ``main`` ref, and carries the metadata the Hub
computes or stores (downloads, likes, pipeline tag, gated, license, tags, safetensors parameter
counts). Uploads through ``create_repo`` / ``upload_folder`` become commits that tests read back.

Endpoints (repo ids must be namespaced, ``owner/name``; ``{type}`` is models, datasets or spaces):

- ``GET /api/models``: ``search``, ``author``, ``filter`` (tags, repeatable), ``pipeline_tag``,
  ``gated``, ``num_parameters`` (``min:1M,max:2B``), ``sort`` (descending), ``limit`` (page size),
  ``full``, ``config``, ``expand``; pages of ``page_size`` linked by a ``Link: rel="next"`` header.
  An unknown query parameter or ``expand`` property is a 400, so a client bug cannot pass silently.
- ``GET /api/{type}/{repo}[/revision/{rev}]``: repo info, ``expand`` and ``blobs`` honoured.
- ``GET /api/{type}/{repo}/tree/{rev}[/{path}]`` (``recursive``, paginated) and
  ``POST .../paths-info/{rev}``.
- ``HEAD|GET /[{type}/]{repo}/resolve/{rev}/{path}``: ``ETag``, ``X-Repo-Commit``, ``X-Linked-Etag``
  and ``X-Linked-Size`` for LFS files, ``Content-Length``, ``Range``. Never any ``X-Xet-*``
  header or ``xetHash``, so the client always downloads over plain HTTP.
- ``GET /api/agent-harnesses`` (an empty registry: the client fetches it once a day, so tests
  should count requests by path, not all of them), ``GET /api/whoami-v2``,
  ``POST /api/repos/create``, ``POST /api/validate-yaml`` (README metadata, checked before an
  upload), ``POST /api/{type}/{repo}/preupload/{rev}``
  (every file is "regular": no LFS or Xet upload) and ``POST /api/{type}/{repo}/commit/{rev}``.

Errors carry the ``X-Error-Code`` / ``X-Error-Message`` headers the client maps to
``RepositoryNotFoundError``, ``GatedRepoError``, ``RevisionNotFoundError`` and
``RemoteEntryNotFoundError``. An ``Authorization`` header with a token that is not in
``server.tokens`` is a 401, as on the Hub; writes need a valid token; gated files need a token
whose user is in ``repo.granted_users``.

For tests: ``server.requests`` records every request (``server.count(...)`` and
``server.downloads(...)`` query it), ``server.fail(...)`` makes chosen requests answer an error
status or a truncated body, and ``server.errors`` collects the server's own exceptions.

Example:
    >>> import json, urllib.request
    >>> server = HubServer().start()
    >>> repo = server.add_repo("org/tiny", {"config.json": '{"model_type": "bert"}'},
    ...                        pipeline_tag="fill-mask", downloads=10)
    >>> with urllib.request.urlopen(f"{server.endpoint}/api/models/org/tiny") as answer:
    ...     info = json.load(answer)
    >>> server.stop()
    >>> info["sha"] == repo.sha, info["pipeline_tag"], info["config"], info["tags"]
    (True, 'fill-mask', {'model_type': 'bert'}, ['transformers', 'bert', 'fill-mask'])
"""

from __future__ import annotations

import base64
import datetime as dt
import fnmatch
import functools
import hashlib
import http.server
import itertools
import json
import re
import struct
import threading
import time
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}

# Files stored with Git LFS on the Hub (its default .gitattributes), plus anything over 10 MB.
LFS_SUFFIXES = (
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".h5",
    ".msgpack",
    ".onnx",
    ".parquet",
    ".arrow",
    ".npy",
    ".npz",
    ".model",
    ".zip",
    ".gz",
    ".tar",
)
LFS_MIN_SIZE = 10 * 1024 * 1024
LFS_POINTER_SIZE = 134

MODEL_EXPAND = frozenset(
    {
        "author",
        "baseModels",
        "cardData",
        "childrenModelCount",
        "config",
        "createdAt",
        "disabled",
        "downloads",
        "downloadsAllTime",
        "evalResults",
        "gated",
        "gguf",
        "inference",
        "inferenceProviderMapping",
        "lastModified",
        "library_name",
        "likes",
        "mask_token",
        "model-index",
        "pipeline_tag",
        "private",
        "resourceGroup",
        "safetensors",
        "sha",
        "siblings",
        "spaces",
        "tags",
        "transformersInfo",
        "trendingScore",
        "usedStorage",
        "widgetData",
    }
)
# What GET /api/models returns per model without `expand` (and with `full`), as the Hub does.
MODEL_LIST_FIELDS = (
    "modelId",
    "likes",
    "trendingScore",
    "private",
    "downloads",
    "tags",
    "pipeline_tag",
    "library_name",
    "createdAt",
)
MODEL_FULL_FIELDS = MODEL_LIST_FIELDS + (
    "author",
    "sha",
    "lastModified",
    "gated",
    "disabled",
    "siblings",
)
LIST_MODELS_PARAMS = frozenset(
    {
        "search",
        "author",
        "filter",
        "pipeline_tag",
        "gated",
        "num_parameters",
        "sort",
        "direction",
        "limit",
        "full",
        "config",
        "expand",
        "cursor",
    }
)
SORT_KEYS = {
    "downloads": "downloads",
    "likes": "likes",
    "trendingScore": "trending_score",
    "createdAt": "created_at",
    "lastModified": "last_modified",
}
_UNITS = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}
_EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def git_blob_oid(content: bytes) -> str:
    """The git object id of a file: sha1 of ``b"blob <size>\\0" + content``."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass(frozen=True)
class HubFile:
    """One file of a commit, with the ids the Hub reports for it."""

    path: str
    content: bytes

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def is_lfs(self) -> bool:
        return self.path.endswith(LFS_SUFFIXES) or self.size >= LFS_MIN_SIZE

    @functools.cached_property
    def oid(self) -> str:
        return git_blob_oid(self.content)

    @functools.cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def etag(self) -> str:
        """The Hub's ETag: the sha256 for LFS files, the git blob id otherwise."""
        return self.sha256 if self.is_lfs else self.oid

    def tree_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "type": "file",
            "oid": self.oid,
            "size": self.size,
            "path": self.path,
        }
        if self.is_lfs:
            entry["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": LFS_POINTER_SIZE}
        return entry


@dataclass(frozen=True)
class Commit:
    oid: str
    files: Mapping[str, HubFile]
    title: str
    date: dt.datetime
    parent: str | None = None


@dataclass
class Repo:
    """A repo: its commits, its ``main`` ref and the metadata the Hub keeps about it.

    ``gated`` is ``False``, ``"auto"`` or ``"manual"``. ``license`` and ``languages`` become the
    ``license:<id>`` and language-code tags; ``tags`` are added to the tags the Hub derives from
    the files (library, ``safetensors``, ``pytorch``, the config's ``model_type``, ``custom_code``).
    """

    repo_id: str
    repo_type: str = "model"
    pipeline_tag: str | None = None
    library_name: str | None = None
    tags: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    license: str | None = None
    downloads: int = 0
    likes: int = 0
    trending_score: int = 0
    gated: str | bool = False
    granted_users: set[str] = field(default_factory=set)
    sdk: str | None = None
    created_at: dt.datetime = _EPOCH
    commits: dict[str, Commit] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)

    @property
    def sha(self) -> str:
        return self.refs["main"]

    @property
    def head(self) -> Commit:
        return self.commits[self.sha]

    @property
    def files(self) -> dict[str, bytes]:
        """Contents of the files at ``main``, by path."""
        return {path: f.content for path, f in self.head.files.items()}

    @property
    def last_modified(self) -> dt.datetime:
        return self.head.date

    def commit(self, files: Mapping[str, HubFile], title: str) -> Commit:
        """Record a new commit with exactly these files and move ``main`` to it."""
        parent = self.refs.get("main")
        date = self.created_at + dt.timedelta(minutes=len(self.commits))
        digest = hashlib.sha1(f"{self.repo_type}:{self.repo_id}:{parent}:{title}".encode())
        for path in sorted(files):
            digest.update(f"{path}\0{files[path].oid}\0".encode())
        commit = Commit(digest.hexdigest(), dict(files), title, date, parent)
        self.commits[commit.oid] = commit
        self.refs["main"] = commit.oid
        return commit

    def resolve_revision(self, revision: str) -> Commit | None:
        oid = self.refs.get(revision, revision)
        return self.commits.get(oid)

    # --- what the Hub derives from the files -------------------------------------------------
    def config(self, commit: Commit) -> dict[str, Any] | None:
        """The subset of config.json the Hub exposes in model info."""
        file = commit.files.get("config.json")
        if file is None:
            return None
        try:
            config = json.loads(file.content)
        except ValueError:
            return None
        keys = ("architectures", "model_type", "auto_map", "quantization_config")
        return {key: config[key] for key in keys if key in config}

    def safetensors(self, commit: Commit) -> dict[str, Any] | None:
        """Parameter counts by dtype, read from the headers of the .safetensors files."""
        counts: dict[str, int] = {}
        weights = [f for path, f in sorted(commit.files.items()) if path.endswith(".safetensors")]
        for file in weights:
            (header_size,) = struct.unpack("<Q", file.content[:8])
            header = json.loads(file.content[8 : 8 + header_size])
            for name, tensor in header.items():
                if name != "__metadata__":
                    n = 1
                    for dim in tensor["shape"]:
                        n *= dim
                    counts[tensor["dtype"]] = counts.get(tensor["dtype"], 0) + n
        return {"parameters": counts, "total": sum(counts.values())} if weights else None

    def all_tags(self, commit: Commit) -> list[str]:
        tags: list[str] = []
        if self.library_name:
            tags.append(self.library_name)
        paths = list(commit.files)
        if any(p.endswith(".safetensors") for p in paths):
            tags.append("safetensors")
        if any(p.endswith(".bin") for p in paths):
            tags.append("pytorch")
        config = self.config(commit) or {}
        if isinstance(config.get("model_type"), str):
            tags.append(config["model_type"])
        if self.pipeline_tag:
            tags.append(self.pipeline_tag)
        if config.get("auto_map"):
            tags.append("custom_code")
        tags.extend(self.tags)
        tags.extend(self.languages)
        if self.license:
            tags.append(f"license:{self.license}")
        return list(dict.fromkeys(tags))

    def num_parameters(self) -> int | None:
        info = self.safetensors(self.head)
        return None if info is None else info["total"]

    def properties(self, commit: Commit, *, blobs: bool = False) -> dict[str, Any]:
        """Every property the info endpoints can return, under the Hub's JSON names."""
        siblings = []
        for path, f in sorted(commit.files.items()):
            sibling: dict[str, Any] = {"rfilename": path}
            if blobs:
                sibling.update(size=f.size, blobId=f.oid)
                if f.is_lfs:
                    sibling["lfs"] = {
                        "sha256": f.sha256,
                        "size": f.size,
                        "pointerSize": LFS_POINTER_SIZE,
                    }
            siblings.append(sibling)
        props: dict[str, Any] = {
            "_id": hashlib.md5(self.repo_id.encode()).hexdigest()[:24],
            "id": self.repo_id,
            "author": self.repo_id.split("/")[0],
            "sha": commit.oid,
            "lastModified": _iso(commit.date),
            "createdAt": _iso(self.created_at),
            "private": False,
            "disabled": False,
            "gated": self.gated,
            "downloads": self.downloads,
            "likes": self.likes,
            "trendingScore": self.trending_score,
            "tags": self.all_tags(commit),
            "siblings": siblings,
            "usedStorage": sum(f.size for f in commit.files.values()),
        }
        if self.repo_type == "model":
            props.update(
                modelId=self.repo_id,
                library_name=self.library_name,
                pipeline_tag=self.pipeline_tag,
                config=self.config(commit),
                safetensors=self.safetensors(commit),
                spaces=[],
            )
        elif self.repo_type == "space":
            props.update(sdk=self.sdk, runtime={"stage": "RUNNING"})
        return {key: value for key, value in props.items() if value is not None}


@dataclass(frozen=True)
class Request:
    """One request the server received."""

    method: str
    path: str  # decoded, without the query string
    query: dict[str, list[str]]
    status: int
    authorized: bool


@dataclass
class Failure:
    """An injected failure: requests matching ``method`` and the ``path`` glob get ``status``, or
    (``truncate=True``, file downloads only) the headers of the full file and half its body, or
    (``stall=seconds``) a normal answer after that long: a slow or hanging Hub."""

    path: str
    method: str = "GET"
    status: int = 500
    truncate: bool = False
    stall: float = 0.0
    times: int | None = None  # None: every matching request
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (
            method == self.method
            and fnmatch.fnmatchcase(path, self.path)
            and (self.times is None or self.hits < self.times)
        )


class HubError(Exception):
    """An HTTP error answer, with the headers the huggingface_hub client reads."""

    def __init__(
        self, status: int, message: str, code: str | None = None, commit: str | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.code, self.commit = status, message, code, commit


class HubServer:
    """The local Hub. ``HubServer().start()`` binds 127.0.0.1 on ``port`` (0: a free one).

    Args:
        host: Interface to bind.
        port: Port to bind; 0 lets the OS pick a free one. The socket is bound in ``__init__`` so
            the address is known (and reserved) before the server starts serving.
        page_size: Items per page of model listings and trees (the Hub uses 1000).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, page_size: int = 1000) -> None:
        self.page_size = page_size
        self.tokens: dict[str, str] = {"hf_test_token": "tester"}  # token -> user name
        self.requests: list[Request] = []
        self.failures: list[Failure] = []
        self.errors: list[str] = []  # tracebacks of the server's own bugs
        self.lock = threading.RLock()
        self._repos: dict[tuple[str, str], Repo] = {}
        self._created = itertools.count()
        self._httpd = http.server.ThreadingHTTPServer((host, port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.hub = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, name="hub-server", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    # --- registry ----------------------------------------------------------------------------
    def add_repo(
        self,
        repo_id: str,
        files: Mapping[str, bytes | str | Path] | Path | str | None = None,
        *,
        repo_type: str = "model",
        commit_message: str | None = None,
        **metadata: Any,
    ) -> Repo:
        """Create a repo, or commit a new version of it, with ``files`` (a folder, or paths to
        contents as bytes, text or a local file). ``metadata`` sets ``Repo`` fields, e.g.
        ``pipeline_tag``, ``library_name``, ``downloads``, ``likes``, ``gated``, ``license``,
        ``languages``, ``tags``. Models default to ``library_name="transformers"``."""
        if repo_type not in URL_PREFIXES or repo_id.count("/") != 1:
            raise ValueError(
                f"repo_type must be one of {sorted(URL_PREFIXES)} and repo_id 'owner/name'; "
                f"got {repo_type!r}, {repo_id!r}."
            )
        allowed = set(Repo.__dataclass_fields__) - {"repo_id", "repo_type", "commits", "refs"}
        if set(metadata) - allowed:
            raise TypeError(
                f"Unknown repo metadata {sorted(set(metadata) - allowed)}; use {sorted(allowed)}."
            )
        with self.lock:
            repo = self._repos.get((repo_type, repo_id))
            if repo is None:
                defaults = {"library_name": "transformers"} if repo_type == "model" else {}
                created = _EPOCH + dt.timedelta(hours=next(self._created))
                repo = Repo(repo_id, repo_type, created_at=created, **{**defaults, **metadata})
                self._repos[(repo_type, repo_id)] = repo
            else:
                for key, value in metadata.items():
                    setattr(repo, key, value)
            for key in ("tags", "languages"):
                setattr(repo, key, tuple(getattr(repo, key)))
            if files is not None or "main" not in repo.refs:
                repo.commit(
                    _read_files(files),
                    commit_message or ("Initial commit" if not repo.refs else "Update"),
                )
            return repo

    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        with self.lock:
            try:
                return self._repos[(repo_type, repo_id)]
            except KeyError:
                raise KeyError(f"No {repo_type} repo {repo_id!r} on the test Hub.") from None

    def snapshot(self) -> dict[tuple[str, str], Repo]:
        """A copy of the registry, for ``restore``: repos added or changed later are undone."""
        with self.lock:
            return {
                key: replace(
                    repo,
                    commits=dict(repo.commits),
                    refs=dict(repo.refs),
                    granted_users=set(repo.granted_users),
                )
                for key, repo in self._repos.items()
            }

    def restore(self, snapshot: dict[tuple[str, str], Repo]) -> None:
        """Put back the registry of a ``snapshot()`` (once: its repos are live again)."""
        with self.lock:
            self._repos = dict(snapshot)

    def repos(self, repo_type: str = "model") -> list[Repo]:
        with self.lock:
            return [r for (t, _), r in self._repos.items() if t == repo_type]

    # --- test controls -------------------------------------------------------------------------
    def fail(
        self,
        path: str,
        *,
        method: str = "GET",
        status: int = 500,
        truncate: bool = False,
        stall: float = 0.0,
        times: int | None = None,
    ) -> Failure:
        """Make requests whose decoded path matches the glob ``path`` fail, e.g.
        ``server.fail("/org/m/resolve/*/model.safetensors")``. The client retries 5xx answers to
        API calls with backoff (seconds), but not to file GETs: fail those."""
        failure = Failure(path, method.upper(), status, truncate, stall, times)
        with self.lock:
            self.failures.append(failure)
        return failure

    def reset(self) -> None:
        """Forget requests, failures and errors (repos stay)."""
        with self.lock:
            self.requests.clear()
            self.failures.clear()
            self.errors.clear()

    def count(self, path: str = "*", *, method: str | None = None) -> int:
        """Number of requests whose decoded path matches the glob ``path`` (and ``method``)."""
        with self.lock:
            return sum(
                1
                for r in self.requests
                if fnmatch.fnmatchcase(r.path, path) and (method is None or r.method == method)
            )

    def downloads(self, repo_id: str, repo_type: str = "model") -> list[str]:
        """Paths of the files of ``repo_id`` whose content was served (successful GETs), in turn."""
        prefix = f"/{URL_PREFIXES[repo_type]}{repo_id}/resolve/"
        with self.lock:
            return [
                r.path[len(prefix) :].split("/", 1)[1]
                for r in self.requests
                if r.method == "GET" and r.path.startswith(prefix) and r.status in (200, 206)
            ]


def _read_files(files: Mapping[str, bytes | str | Path] | Path | str | None) -> dict[str, HubFile]:
    if files is None:
        return {}
    if isinstance(files, (str, Path)):
        root = Path(files)
        return {
            p.relative_to(root).as_posix(): HubFile(p.relative_to(root).as_posix(), p.read_bytes())
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }
    out = {}
    for path, content in files.items():
        data = (
            content.read_bytes()
            if isinstance(content, Path)
            else content.encode()
            if isinstance(content, str)
            else bytes(content)
        )
        out[path] = HubFile(path, data)
    return out


def _iso(date: dt.datetime) -> str:
    return date.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMBT]?)\s*", text.upper())
    if match is None:
        raise HubError(400, f"Invalid parameter count {text!r}: use e.g. 110M, 7B or 1000.")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def _flag(value: str | list[str] | None) -> bool:
    """A boolean query parameter (the client sends ``true``/``false``; ``1`` also works)."""
    if isinstance(value, list):
        value = value[-1] if value else None
    return value is not None and value.lower() in ("1", "true")


_REPO_API = r"/api/(?P<kind>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)"
_RESOLVE = (
    r"/(?:(?P<kind>datasets|spaces)/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)"
)


class _Handler(http.server.BaseHTTPRequestHandler):
    """Routes one request to the HubServer that owns this handler's server."""

    protocol_version = "HTTP/1.1"
    server_version = "hf-logme-test-hub"

    # (method, path pattern, endpoint method `_api_<name>`); paths are matched still URL-encoded.
    ROUTES = tuple(
        (method, re.compile(pattern), name)
        for method, pattern, name in (
            ("GET", "/api/whoami-v2", "whoami"),
            ("GET", "/api/agent-harnesses", "agent_harnesses"),
            ("GET", "/api/models", "list_models"),
            ("POST", "/api/repos/create", "create_repo"),
            ("POST", "/api/validate-yaml", "validate_yaml"),
            ("GET", _REPO_API + r"(?:/revision/(?P<rev>[^/]+))?", "repo_info"),
            ("GET", _REPO_API + r"/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?", "tree"),
            ("POST", _REPO_API + r"/paths-info/(?P<rev>[^/]+)", "paths_info"),
            ("POST", _REPO_API + r"/preupload/(?P<rev>[^/]+)", "preupload"),
            ("POST", _REPO_API + r"/commit/(?P<rev>[^/]+)", "commit"),
            ("HEAD", _RESOLVE, "resolve"),
            ("GET", _RESOLVE, "resolve"),
        )
    )

    @property
    def hub(self) -> HubServer:
        return self.server.hub  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr log."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    # --- plumbing -----------------------------------------------------------------------------
    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        self.raw_path = url.path
        self.decoded_path = unquote(url.path)
        self.query = parse_qs(url.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        self.status = 500
        self.user: str | None = None
        self._recorded = False
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                self.close_connection = True  # the unread body would be taken for the next request
                raise HubError(411, "The test Hub reads request bodies with a Content-Length only.")
            self._authenticate()
            failure = self._injected_failure()
            if failure is not None and failure.stall:
                time.sleep(failure.stall)
                failure = None
            if failure is not None and not failure.truncate:
                raise HubError(failure.status, f"Injected failure ({failure.status}) for tests.")
            for method, pattern, name in self.ROUTES:
                match = pattern.fullmatch(self.raw_path)
                if method == self.command and match:
                    self.failure = failure
                    params = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                    getattr(self, f"_api_{name}")(**params)
                    break
            else:
                raise HubError(
                    404, f"{self.command} {self.decoded_path} is not served by the test Hub."
                )
        except HubError as err:
            self._send_error(err)
        except BrokenPipeError:
            pass
        except Exception:  # noqa: BLE001 - a bug in this server: answer 500, keep the traceback for the test
            with self.hub.lock:
                self.hub.errors.append(traceback.format_exc())
            self._send_error(
                HubError(500, "Internal error in the test Hub (see HubServer.errors).")
            )
        finally:
            self._record(self.status)  # if nothing was sent (a broken pipe)

    def send_response(self, code: int, message: str | None = None) -> None:
        """Record the request before its status line goes out: once the client has the answer,
        its test may end and the next one reset the log, which must not then receive this one."""
        self._record(code)
        super().send_response(code, message)

    def _record(self, status: int) -> None:
        if self._recorded:
            return
        self._recorded = True
        with self.hub.lock:
            self.hub.requests.append(
                Request(self.command, self.decoded_path, self.query, status, self.user is not None)
            )

    def _authenticate(self) -> None:
        header = self.headers.get("Authorization")
        if header is None:
            return
        token = header.removeprefix("Bearer ").strip()
        self.user = self.hub.tokens.get(token)
        if self.user is None:
            raise HubError(401, "Invalid credentials in Authorization header")

    def _injected_failure(self) -> Failure | None:
        with self.hub.lock:
            for failure in self.hub.failures:
                if failure.matches(self.command, self.decoded_path):
                    failure.hits += 1
                    return failure
        return None

    def _send(
        self,
        status: int,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        content_length: int | None = None,
    ) -> None:
        self.status = status
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header(
            "Content-Length", str(len(body) if content_length is None else content_length)
        )
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _send_json(
        self, data: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        self._send(
            status,
            json.dumps(data).encode(),
            {"Content-Type": "application/json", **(headers or {})},
        )

    def _send_error(self, err: HubError) -> None:
        headers = {"Content-Type": "application/json", "X-Error-Message": err.message}
        if err.code:
            headers["X-Error-Code"] = err.code
        if err.commit:
            headers["X-Repo-Commit"] = err.commit
        self._send(err.status, json.dumps({"error": err.message}).encode(), headers)

    def _repo(self, kind: str | None, repo_id: str, *, write: bool = False) -> Repo:
        repo_type = REPO_TYPES.get(kind or "models", "model")
        if write and self.user is None:
            raise HubError(401, "You must be authenticated to write to a repo.")
        with self.hub.lock:
            repo = self.hub._repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def _at_revision(self, repo: Repo, revision: str) -> Commit:
        commit = repo.resolve_revision(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def _check_params(self, allowed: frozenset[str]) -> None:
        unknown = sorted(set(self.query) - allowed)
        if unknown:
            raise HubError(400, f"Query parameters {unknown} are not supported by the test Hub.")

    def _select(self, props: dict[str, Any], fields: Iterable[str]) -> dict[str, Any]:
        return {
            "_id": props["_id"],
            "id": props["id"],
            **{k: props[k] for k in fields if k in props},
        }

    def _expand(self) -> list[str] | None:
        expand = self.query.get("expand")
        if expand is None:
            return None
        invalid = sorted(set(expand) - MODEL_EXPAND)
        if invalid:
            raise HubError(400, f'"expand" must be one of {sorted(MODEL_EXPAND)}; got {invalid}.')
        return expand

    def _paginate(self, items: list[Any], page_size: int) -> tuple[list[Any], dict[str, str]]:
        start = int((self.query.get("cursor") or ["0"])[-1])
        page = items[start : start + page_size]
        headers = {}
        if start + page_size < len(items):
            query = [(k, v) for k, values in self.query.items() if k != "cursor" for v in values]
            query.append(("cursor", str(start + page_size)))
            headers["Link"] = f'<{self.hub.endpoint}{self.raw_path}?{urlencode(query)}>; rel="next"'
        return page, headers

    # --- endpoints ----------------------------------------------------------------------------
    def _api_whoami(self) -> None:
        if self.user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        self._send_json(
            {
                "type": "user",
                "name": self.user,
                "fullname": self.user,
                "orgs": [],
                "auth": {
                    "type": "access_token",
                    "accessToken": {"displayName": "test", "role": "write"},
                },
            }
        )

    def _api_agent_harnesses(self) -> None:
        """The registry huggingface_hub fetches once a day to detect AI agents: empty."""
        self._send_json({"standardEnvVars": [], "harnesses": {}})

    def _api_list_models(self) -> None:
        self._check_params(LIST_MODELS_PARAMS)
        q = {
            key: values[-1] for key, values in self.query.items() if key not in ("filter", "expand")
        }
        expand = self._expand()
        if expand is not None and (_flag(q.get("full")) or _flag(q.get("config"))):
            raise HubError(400, "expand cannot be combined with full or config.")
        bounds = {"min": 0, "max": float("inf")}
        for part in filter(None, q.get("num_parameters", "").split(",")):
            key, _, value = part.partition(":")
            if key not in bounds:
                raise HubError(
                    400, f"num_parameters takes 'min:<n>' and/or 'max:<n>'; got {part!r}."
                )
            bounds[key] = _parse_size(value)
        sort = q.get("sort")
        if sort is not None and sort not in SORT_KEYS:
            raise HubError(400, f"sort must be one of {sorted(SORT_KEYS)}; got {sort!r}.")

        def selected(repo: Repo) -> bool:
            n_params = repo.num_parameters()
            return (
                (q.get("search", "").lower() in repo.repo_id.lower())
                and q.get("author", repo.repo_id.split("/")[0]) == repo.repo_id.split("/")[0]
                and set(self.query.get("filter", [])) <= set(repo.all_tags(repo.head))
                and q.get("pipeline_tag", repo.pipeline_tag) == repo.pipeline_tag
                and ("gated" not in q or _flag(q["gated"]) == bool(repo.gated))
                and (
                    "num_parameters" not in q
                    or (n_params is not None and bounds["min"] <= n_params <= bounds["max"])
                )
            )

        models = [repo for repo in self.hub.repos("model") if selected(repo)]
        if sort is not None:  # descending unless direction=1; ties by id
            models.sort(key=lambda r: r.repo_id)
            models.sort(
                key=lambda r: getattr(r, SORT_KEYS[sort]), reverse=q.get("direction") != "1"
            )
        page, headers = self._paginate(models, min(int(q.get("limit", self.hub.page_size)), 1000))
        if expand is not None:
            fields: Iterable[str] = expand
        else:
            fields = MODEL_FULL_FIELDS if _flag(q.get("full")) else MODEL_LIST_FIELDS
            fields = (*fields, "config") if _flag(q.get("config")) else fields
        self._send_json([self._select(r.properties(r.head), fields) for r in page], headers=headers)

    def _api_repo_info(self, kind: str, repo: str, rev: str = "main") -> None:
        self._check_params(frozenset({"expand", "blobs", "securityStatus"}))
        repo_obj = self._repo(kind, repo)
        props = repo_obj.properties(
            self._at_revision(repo_obj, rev), blobs=_flag(self.query.get("blobs"))
        )
        expand = self._expand() if kind == "models" else None
        self._send_json(props if expand is None else self._select(props, expand))

    def _api_tree(self, kind: str, repo: str, rev: str, path: str = "") -> None:
        self._check_params(frozenset({"recursive", "expand", "cursor", "limit"}))
        repo_obj = self._repo(kind, repo)
        commit = self._at_revision(repo_obj, rev)
        entries = _tree_entries(
            commit, path.strip("/"), recursive=_flag(self.query.get("recursive"))
        )
        if entries is None:
            raise HubError(404, f"{path} does not exist on {rev}", "EntryNotFound", commit.oid)
        page, headers = self._paginate(entries, self.hub.page_size)
        self._send_json(page, headers=headers)

    def _api_paths_info(self, kind: str, repo: str, rev: str) -> None:
        repo_obj = self._repo(kind, repo)
        commit = self._at_revision(repo_obj, rev)
        form = parse_qs(self.body.decode(), keep_blank_values=True)
        found = []
        for path in form.get("paths", []):
            path = path.strip("/")
            if path in commit.files:
                found.append(commit.files[path].tree_entry())
            elif _tree_entries(commit, path, recursive=False):
                found.append(_folder_entry(path))
        self._send_json(found)

    def _api_resolve(self, repo: str, rev: str, path: str, kind: str | None = None) -> None:
        repo_obj = self._repo(kind, repo)
        commit = self._at_revision(repo_obj, rev)
        gated_path = path not in ("README.md", ".gitattributes")
        if repo_obj.gated and gated_path and self.user not in repo_obj.granted_users:
            raise HubError(
                401,
                f"Access to model {repo} is restricted. You must have access to it and be "
                "authenticated to access it. Please log in.",
                "GatedRepo",
            )
        file = commit.files.get(path)
        if file is None:
            raise HubError(404, "Entry not found", "EntryNotFound", commit.oid)
        headers = {
            "Content-Type": "application/octet-stream",
            "ETag": f'"{file.etag}"',
            "X-Repo-Commit": commit.oid,
            "Accept-Ranges": "bytes",
        }
        if file.is_lfs:
            headers.update({"X-Linked-Etag": f'"{file.etag}"', "X-Linked-Size": str(file.size)})
        body, status = file.content, 200
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if match and self.command == "GET":
            start = int(match.group(1))
            end = int(match.group(2)) if match.group(2) else file.size - 1
            body, status = file.content[start : end + 1], 206
            headers["Content-Range"] = f"bytes {start}-{start + len(body) - 1}/{file.size}"
        if self.failure is not None and self.failure.truncate and self.command == "GET":
            self._send(status, body[: len(body) // 2], headers, content_length=len(body))
            self.close_connection = True
            return
        self._send(status, body, headers)

    def _api_create_repo(self) -> None:
        if self.user is None:
            raise HubError(401, "You must be authenticated to create a repo.")
        payload = json.loads(self.body or b"{}")
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or self.user}/{payload['name']}"
        url = f"{self.hub.endpoint}/{URL_PREFIXES[repo_type]}{repo_id}"
        with self.hub.lock:
            if (repo_type, repo_id) in self.hub._repos:
                self._send_json(
                    {"error": f"You already created this {repo_type} repo", "url": url}, 409
                )
                return
            files = {".gitattributes": "*.safetensors filter=lfs diff=lfs merge=lfs -text\n"}
            self.hub.add_repo(
                repo_id,
                files,
                repo_type=repo_type,
                sdk=payload.get("sdk"),
                **({"library_name": None} if repo_type == "model" else {}),
            )
        self._send_json({"url": url, "name": repo_id})

    def _api_validate_yaml(self) -> None:
        """A README's metadata block must be closed and made of ``key: value`` entries (roughly
        what the Hub checks before an upload; lists and nested values are not parsed)."""
        lines = json.loads(self.body)["content"].splitlines()
        errors = []
        if lines and lines[0].strip() == "---":
            end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == "---"), None)
            if end is None:
                errors.append("The metadata block opened by '---' is never closed.")
            else:
                errors += [
                    f"Line {i + 1} is not 'key: value': {line!r}"
                    for i, line in enumerate(lines[1:end], 1)
                    if line.strip()
                    and not line[0].isspace()
                    and not line.startswith(("-", "#"))
                    and not re.match(r"[\w.-]+:(\s|$)", line)
                ]
        self._send_json(
            {"errors": [{"message": e} for e in errors], "warnings": []}, 400 if errors else 200
        )

    def _api_preupload(self, kind: str, repo: str, rev: str) -> None:
        repo_obj = self._repo(kind, repo, write=True)
        existing = repo_obj.head.files if rev == "main" else self._at_revision(repo_obj, rev).files
        files = []
        for item in json.loads(self.body)["files"]:
            previous = existing.get(item["path"])
            files.append(
                {
                    "path": item["path"],
                    "uploadMode": "regular",
                    "shouldIgnore": False,
                    "oid": previous.oid if previous is not None else None,
                }
            )
        self._send_json({"files": files, "commitOid": repo_obj.sha})

    def _api_commit(self, kind: str, repo: str, rev: str) -> None:
        repo_obj = self._repo(kind, repo, write=True)
        if rev != "main":
            raise HubError(400, f"The test Hub commits to main only; got revision {rev!r}.")
        files = dict(repo_obj.head.files)
        header = None
        for line in filter(None, (line.strip() for line in self.body.splitlines())):
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                header = value
            elif key == "file":
                content = value["content"]
                data = (
                    base64.b64decode(content)
                    if value.get("encoding") == "base64"
                    else content.encode()
                )
                files[value["path"]] = HubFile(value["path"], data)
            elif key == "deletedFile":
                files.pop(value["path"], None)
            elif key == "deletedFolder":
                folder = value["path"].rstrip("/") + "/"
                files = {p: f for p, f in files.items() if not p.startswith(folder)}
            else:
                raise HubError(
                    400, f"The test Hub accepts no {key!r} operation (uploads are all regular)."
                )
        if header is None:
            raise HubError(400, "The commit payload has no header line.")
        if header.get("parentCommit") not in (None, repo_obj.sha):
            raise HubError(
                412, f"parentCommit {header['parentCommit']} is not the head {repo_obj.sha}."
            )
        with self.hub.lock:
            commit = repo_obj.commit(files, header["summary"])
        url = f"{self.hub.endpoint}/{URL_PREFIXES[repo_obj.repo_type]}{repo}/commit/{commit.oid}"
        self._send_json(
            {"success": True, "commitOid": commit.oid, "commitUrl": url, "hookOutput": ""}
        )


def _tree_entries(commit: Commit, path: str, *, recursive: bool) -> list[dict[str, Any]] | None:
    """Tree entries under ``path`` ("" = root): files and folders; None if ``path`` is no folder."""
    prefix = f"{path}/" if path else ""
    under = sorted(p for p in commit.files if p.startswith(prefix))
    if path and not under:
        return None
    entries: dict[str, dict[str, Any]] = {}
    for file_path in under:
        parts = file_path[len(prefix) :].split("/")
        for depth in range(1, len(parts)):
            folder = prefix + "/".join(parts[:depth])
            if recursive or depth == 1:
                entries.setdefault(folder, _folder_entry(folder))
            if not recursive:
                break
        if recursive or len(parts) == 1:
            entries[file_path] = commit.files[file_path].tree_entry()
    return [entries[key] for key in sorted(entries)]


def _folder_entry(path: str) -> dict[str, Any]:
    return {
        "type": "directory",
        "oid": hashlib.sha1(f"tree:{path}".encode()).hexdigest(),
        "path": path,
    }
