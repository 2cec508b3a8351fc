#!/usr/bin/env python3
"""Berth vs Distribution: the same HTTP client, the same operations, one run.

Started by `tests/bench/run`, which builds Berth, starts both registries (and
optionally a baseline Berth built from an older commit) on 127.0.0.1 and
stops them afterwards. This script only measures and prints: it asserts
nothing about timings.

Berth requires Docker token auth on /v2/: the client asks the token service
named by the 401 challenge for one token covering every bench repository
(HTTP Basic with the admin's credentials, before any timing) and sends it as
`Authorization: Bearer` on every request to that registry. A registry whose
`GET /v2/` answers 200 without a token (Distribution here, or a baseline
Berth that predates auth) gets no Authorization header at all.

Server CPU: with the server's PID, /proc/<pid>/stat utime+stime is read
before and after every timed batch of that registry; the sum over the
batches divided by the samples is "cpu µs/req".

Every operation runs in rounds that alternate which registry goes first
(B D, D B, B D, ...), so background load on the machine lands on both. Each
registry gets a warm-up before the first round. Per operation and registry
it reports the median latency and the throughput:

- sequential rows (one keep-alive connection): ops/s = samples / sum of
  request times (client-side work outside the timed section, such as
  generating random blobs, is not counted);
- `x4` rows (4 threads, one connection each): ops/s = samples / wall time.

Python standard library only.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import platform
import re
import statistics
import sys
import threading
import time
import urllib.parse

KIB = 1024
MIB = 1024 * 1024

OCTET = "application/octet-stream"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

# Berth keeps repositories in projects: `library` is public and always there.
REPO_PUSH = "library/bench/push"
REPO_PUT = "library/bench/manifests"
REPO_READ = "library/bench/read"
REPO_TAGS = "library/bench/tags"
REPOS = (REPO_PUSH, REPO_PUT, REPO_READ, REPO_TAGS)
TAG_COUNT = 200

# The scopes of the one bench token (a registry with auth).
SCOPES = tuple(f"repository:{r}:pull,push" for r in REPOS)

CLK_TCK = os.sysconf("SC_CLK_TCK")

# Batches per registry and operation, alternating who goes first: many small
# batches for sequential ops (so slow drifts in fsync latency or background
# load hit both registries alike), fewer for the threaded ones.
ROUNDS = 10
ROUNDS_THREADED = 4


class BenchError(Exception):
    pass


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------
# HTTP client: one keep-alive connection per host, redirects resolved by hand


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


class Client:
    """A client for one registry; keep one per thread."""

    def __init__(self, base_url: str, timeout: float = 120.0,
                 headers: dict[str, str] | None = None):
        self.base = base_url.rstrip("/") + "/"
        self.netloc = urllib.parse.urlsplit(self.base).netloc
        self.timeout = timeout
        self.conns: dict[str, http.client.HTTPConnection] = {}
        # Sent with every request to the registry's own host (not to a
        # redirect elsewhere): the bearer token, if the registry wants one.
        self.default_headers = dict(headers or {})

    def close(self) -> None:
        for c in self.conns.values():
            c.close()
        self.conns.clear()

    def _conn(self, netloc: str) -> http.client.HTTPConnection:
        c = self.conns.get(netloc)
        if c is None:
            c = http.client.HTTPConnection(netloc, timeout=self.timeout)
            self.conns[netloc] = c
        return c

    def url(self, path_or_url: str) -> str:
        """Resolves a path or a Location (absolute or relative)."""
        return urllib.parse.urljoin(self.base, path_or_url)

    def request(
        self,
        method: str,
        path_or_url: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        expect: tuple[int, ...] = (200,),
    ) -> Response:
        url = self.url(path_or_url)
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http":
            raise BenchError(f"only plain http is supported here, got {url}")
        target = parts.path + ("?" + parts.query if parts.query else "")
        if self.default_headers and parts.netloc == self.netloc:
            hdrs = {**self.default_headers, **(headers or {})}
        else:
            hdrs = headers or {}
        for attempt in (0, 1):
            conn = self._conn(parts.netloc)
            reused = conn.sock is not None
            try:
                conn.request(method, target, body=body, headers=hdrs)
                r = conn.getresponse()
                data = r.read()
            except (
                http.client.RemoteDisconnected,
                ConnectionResetError,
                BrokenPipeError,
                ConnectionAbortedError,
            ):
                # A keep-alive connection the server had closed: retry once
                # on a fresh one. A fresh connection failing is an error.
                conn.close()
                if reused and attempt == 0:
                    continue
                raise
            resp = Response(r.status, r.headers, data)
            break
        if resp.status not in expect:
            raise BenchError(
                f"{method} {url} answered {resp.status}, expected {expect}: "
                f"{resp.body[:300]!r}"
            )
        return resp

    def get_following(self, path: str, headers: dict[str, str] | None = None) -> Response:
        """GET, following up to 3 redirects (a blob GET may answer 307)."""
        url = path
        for _ in range(4):
            r = self.request("GET", url, headers=headers, expect=(200, 301, 302, 303, 307, 308))
            if r.status == 200:
                return r
            loc = r.header("Location")
            if not loc:
                raise BenchError(f"redirect from {url} without a Location")
            url = self.url(loc)
        raise BenchError(f"too many redirects from {path}")


def with_digest(location: str, digest: str) -> str:
    sep = "&" if "?" in location else "?"
    return f"{location}{sep}digest={urllib.parse.quote(digest, safe=':')}"


def location_of(r: Response, what: str) -> str:
    loc = r.header("Location")
    if not loc:
        raise BenchError(f"{what}: no Location header in the {r.status} answer")
    return loc


# --------------------------------------------------------------------------
# Docker token auth (Berth); a registry without auth gets no header at all


def challenge_of(url: str) -> dict[str, str] | None:
    """None if `GET /v2/` answers 200 without a token, else the Bearer
    challenge's parameters (realm, service, ...)."""
    c = Client(url, timeout=10)
    try:
        r = c.request("GET", "/v2/", expect=(200, 401))
    finally:
        c.close()
    if r.status == 200:
        return None
    www = r.header("WWW-Authenticate") or ""
    if not www.lower().startswith("bearer "):
        raise BenchError(f"{url}: GET /v2/ answered 401 without a Bearer challenge: {www!r}")
    params = dict(re.findall(r'(\w+)="([^"]*)"', www))
    if "realm" not in params:
        raise BenchError(f"{url}: Bearer challenge without a realm: {www!r}")
    return params


class TokenService:
    """The token service a registry's challenge names, with the bench's
    credentials (the bootstrap admin)."""

    def __init__(self, challenge: dict[str, str], user: str, password: str):
        self.realm = challenge["realm"]
        self.service = challenge.get("service", "")
        self.basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.client = Client(self.realm, timeout=60)
        self.refresh_token: str | None = None

    def _query(self, scopes, offline: bool) -> str:
        q = [("service", self.service)] if self.service else []
        q += [("scope", sc) for sc in scopes]
        if offline:
            q.append(("offline_token", "true"))
        sep = "&" if "?" in self.realm else "?"
        return self.realm + sep + urllib.parse.urlencode(q)

    def token(self, scopes) -> str:
        """One access token (Basic auth: one password check on the server)."""
        r = self.client.request("GET", self._query(scopes, offline=self.refresh_token is None),
                                headers={"Authorization": self.basic})
        doc = json.loads(r.body)
        if self.refresh_token is None:
            self.refresh_token = doc.get("refresh_token")
        return doc["token"]

    def fresh_tokens(self, scopes, count: int) -> list[str]:
        """`count` distinct access tokens the registry has never seen. Through
        the OAuth2 refresh grant when a refresh token was handed out (no
        argon2 password check per token), else by Basic auth each time."""
        out = []
        for _ in range(count):
            if self.refresh_token:
                form = urllib.parse.urlencode([
                    ("grant_type", "refresh_token"),
                    ("refresh_token", self.refresh_token),
                    ("service", self.service),
                    ("scope", " ".join(scopes)),
                ]).encode()
                r = self.client.request(
                    "POST", self.realm, body=form,
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
                out.append(json.loads(r.body)["token"])
            else:
                out.append(self.token(scopes))
        if len(set(out)) != len(out):
            raise BenchError("the token service handed out the same token twice")
        return out

    def close(self) -> None:
        self.client.close()


# --------------------------------------------------------------------------
# Registry operations (the same code for every registry)


def push_single_post(c: Client, repo: str, data: bytes, digest: str) -> int:
    """POST ?digest= with the body. Returns the status (201 or 202)."""
    r = c.request(
        "POST",
        f"/v2/{repo}/blobs/uploads/?digest={urllib.parse.quote(digest, safe=':')}",
        body=data,
        headers={"Content-Type": OCTET},
        expect=(201, 202),
    )
    if r.status == 202:
        # The registry opened a session instead: finish it the spec's way.
        loc = location_of(r, "single POST")
        c.request("PUT", with_digest(loc, digest), body=data,
                  headers={"Content-Type": OCTET}, expect=(201,))
    return r.status


def push_post_put(c: Client, repo: str, data: bytes, digest: str) -> None:
    """POST (no body) then PUT ?digest= with the whole blob."""
    r = c.request("POST", f"/v2/{repo}/blobs/uploads/", expect=(202,))
    loc = location_of(r, "POST")
    c.request("PUT", with_digest(loc, digest), body=data,
              headers={"Content-Type": OCTET}, expect=(201,))


def push_chunked(c: Client, repo: str, data: bytes, digest: str, chunk: int) -> None:
    r = c.request("POST", f"/v2/{repo}/blobs/uploads/", expect=(202,))
    loc = location_of(r, "POST")
    for start in range(0, len(data), chunk):
        part = data[start:start + chunk]
        r = c.request(
            "PATCH",
            loc,
            body=part,
            headers={
                "Content-Type": OCTET,
                "Content-Range": f"{start}-{start + len(part) - 1}",
            },
            expect=(202,),
        )
        # Always continue at the newest Location (Distribution's carries _state).
        loc = location_of(r, "PATCH")
    c.request("PUT", with_digest(loc, digest), expect=(201,))


def put_manifest(c: Client, repo: str, ref: str, body: bytes) -> Response:
    return c.request(
        "PUT",
        f"/v2/{repo}/manifests/{ref}",
        body=body,
        headers={"Content-Type": OCI_MANIFEST},
        expect=(201,),
    )


def make_manifest(config: tuple[str, int], layers: list[tuple[str, int]], note: str) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config[0], "size": config[1]},
        "layers": [
            {"mediaType": OCI_LAYER, "digest": d, "size": s} for d, s in layers
        ],
        "annotations": {"org.example.bench": note},
    }
    return json.dumps(doc, separators=(",", ":")).encode()


# --------------------------------------------------------------------------
# Fixture: the same read data for both registries


class Fixture:
    def __init__(self) -> None:
        self.config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": []},
                "config": {},
            },
            separators=(",", ":"),
        ).encode()
        self.blob_4k = os.urandom(4 * KIB)
        self.blob_8m = os.urandom(8 * MIB)
        self.small_layers = [os.urandom(4 * KIB), os.urandom(4 * KIB)]
        self.d_config = sha256(self.config)
        self.d_4k = sha256(self.blob_4k)
        self.d_8m = sha256(self.blob_8m)
        self.d_small = [sha256(b) for b in self.small_layers]
        # bench/read: config + the 4 KiB and the 8 MiB blob as layers.
        self.read_manifest = make_manifest(
            (self.d_config, len(self.config)),
            [(self.d_4k, len(self.blob_4k)), (self.d_8m, len(self.blob_8m))],
            "read",
        )
        self.d_read_manifest = sha256(self.read_manifest)
        # bench/manifests and bench/tags: config + 2 small layers.
        self.small_ref = (
            (self.d_config, len(self.config)),
            [(d, len(b)) for d, b in zip(self.d_small, self.small_layers)],
        )
        self.tags_manifest = make_manifest(*self.small_ref, "tags")

    def load(self, c: Client) -> dict:
        """Pushes the fixture (untimed). Returns what was learnt."""
        info: dict = {}
        # Does the registry accept a whole blob in a single POST?
        status = push_single_post(c, REPO_READ, self.config, self.d_config)
        info["single_post"] = status == 201
        for repo in (REPO_READ, REPO_PUT, REPO_TAGS):
            push_post_put(c, repo, self.config, self.d_config)
        push_post_put(c, REPO_READ, self.blob_4k, self.d_4k)
        push_chunked(c, REPO_READ, self.blob_8m, self.d_8m, 2 * MIB)
        for repo in (REPO_PUT, REPO_TAGS):
            for data, d in zip(self.small_layers, self.d_small):
                push_post_put(c, repo, data, d)
        r = put_manifest(c, REPO_READ, "latest", self.read_manifest)
        got = r.header("Docker-Content-Digest")
        if got and got != self.d_read_manifest:
            raise BenchError(f"manifest digest {got}, expected {self.d_read_manifest}")
        for i in range(TAG_COUNT):
            put_manifest(c, REPO_TAGS, f"t{i:03d}", self.tags_manifest)
        self.verify(c)
        return info

    def verify(self, c: Client) -> None:
        """Reads everything back once, with full checks (untimed)."""
        acc = {"Accept": OCI_MANIFEST}
        for ref in ("latest", self.d_read_manifest):
            r = c.request("GET", f"/v2/{REPO_READ}/manifests/{ref}", headers=acc)
            if r.body != self.read_manifest:
                raise BenchError(f"manifest {ref} came back different")
            if r.header("Docker-Content-Digest") != self.d_read_manifest:
                raise BenchError(f"manifest {ref}: wrong Docker-Content-Digest")
        for data, d in ((self.blob_4k, self.d_4k), (self.blob_8m, self.d_8m)):
            r = c.get_following(f"/v2/{REPO_READ}/blobs/{d}")
            if sha256(r.body) != d:
                raise BenchError(f"blob {d} came back different")
        tags = list_tags(c, REPO_TAGS)
        if len(tags) != TAG_COUNT:
            raise BenchError(f"{REPO_TAGS} lists {len(tags)} tags, expected {TAG_COUNT}")


def list_tags(c: Client, repo: str) -> list[str]:
    """GET tags/list, following Link rel=next pages if the registry pages."""
    url = f"/v2/{repo}/tags/list"
    tags: list[str] = []
    for _ in range(100):
        r = c.request("GET", url)
        tags.extend(json.loads(r.body).get("tags") or [])
        link = r.header("Link")
        if not link or 'rel="next"' not in link:
            return tags
        url = link[link.index("<") + 1:link.index(">")]
    raise BenchError("tags/list pages do not end")


# --------------------------------------------------------------------------
# Operations: prepare (untimed) then run (timed)


class Target:
    def __init__(self, key: str, label: str, url: str, pid: int | None = None):
        self.key = key
        self.label = label
        self.url = url
        self.pid = pid
        self.headers: dict[str, str] = {}
        self.tokens: TokenService | None = None  # None: the registry has no auth
        self.client = Client(url)
        self.info: dict = {}
        self.seq = 0
        self.fresh: list[str] = []

    def authenticate(self, user: str, password: str) -> None:
        """Finds out whether the registry wants a token; if so fetches one
        for all bench repositories (untimed) and sends it from now on."""
        ch = challenge_of(self.url)
        if ch is None:
            self.info["auth"] = "none"
            return
        self.tokens = TokenService(ch, user, password)
        token = self.tokens.token(SCOPES)
        self.headers = {"Authorization": f"Bearer {token}"}
        self.client.close()
        self.client = self.new_client()
        self.info["auth"] = f"bearer token ({len(token)} bytes), realm {ch['realm']}"

    def new_client(self) -> Client:
        return Client(self.url, headers=self.headers)

    def next_id(self) -> int:
        self.seq += 1
        return self.seq

    def cpu_s(self) -> float | None:
        return cpu_seconds(self.pid) if self.pid else None


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of the whole process (all threads), in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            # Fields after "(comm)": state is field 3, utime 14, stime 15.
            rest = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


class Op:
    """One benchmarked operation.

    prepare(target) -> ctx runs untimed before each sample; run(client,
    target, ctx) is the timed part.
    """

    def __init__(self, name, run, prepare=None, n=100, warmup=5, threads=1,
                 nbytes=0, note_for=None, setup=None):
        self.name = name
        self.run = run
        self.prepare = prepare or (lambda t: None)
        # setup(target, samples) runs untimed once per registry before the
        # warm-up (e.g. fetching tokens); samples = warm-up + timed samples.
        self.setup = setup or (lambda t, count: None)
        self.n = n
        self.warmup = warmup
        self.threads = threads
        self.nbytes = nbytes
        # {target key: footnote} when an op runs differently on a registry.
        self.note_for = note_for or (lambda t: None)


def build_ops(fx: Fixture, scale: float) -> list[Op]:
    def n(x: int, floor: int = 4) -> int:
        return max(floor, int(round(x * scale)))

    acc = {"Accept": OCI_MANIFEST}

    def random_blob(size):
        def prep(t):
            data = os.urandom(size)
            return data, sha256(data)
        return prep

    def single_post(c, t, ctx):
        data, d = ctx
        if t.info.get("single_post"):
            push_single_post(c, REPO_PUSH, data, d)
        else:
            # Unsupported: the spec's fallback, POST (no body) then PUT.
            push_post_put(c, REPO_PUSH, data, d)

    def single_post_note(t):
        if not t.info.get("single_post"):
            return ("single-POST upload unsupported (answers 202): "
                    "timed as POST + PUT ?digest=, i.e. 2 requests")
        return None

    def post_put(c, t, ctx):
        push_post_put(c, REPO_PUSH, *ctx)

    def chunked(c, t, ctx):
        push_chunked(c, REPO_PUSH, ctx[0], ctx[1], 1 * MIB)

    def manifest_prep(t):
        i = t.next_id()
        return f"put{i:05d}", make_manifest(*fx.small_ref, f"put-{i}")

    def manifest_put(c, t, ctx):
        put_manifest(c, REPO_PUT, ctx[0], ctx[1])

    def manifest_get_tag(c, t, ctx):
        r = c.request("GET", f"/v2/{REPO_READ}/manifests/latest", headers=acc)
        if len(r.body) != len(fx.read_manifest):
            raise BenchError("manifest GET by tag: wrong length")

    def manifest_get_digest(c, t, ctx):
        r = c.request("GET", f"/v2/{REPO_READ}/manifests/{fx.d_read_manifest}", headers=acc)
        if len(r.body) != len(fx.read_manifest):
            raise BenchError("manifest GET by digest: wrong length")

    def fresh_token_setup(t, count):
        t.fresh = t.tokens.fresh_tokens(SCOPES, count) if t.tokens else []

    def fresh_token_prep(t):
        if t.tokens is None:
            return None
        if not t.fresh:
            raise BenchError("ran out of pre-fetched tokens")
        return {**acc, "Authorization": f"Bearer {t.fresh.pop()}"}

    def manifest_get_tag_fresh(c, t, ctx):
        r = c.request("GET", f"/v2/{REPO_READ}/manifests/latest", headers=ctx or acc)
        if len(r.body) != len(fx.read_manifest):
            raise BenchError("manifest GET by tag: wrong length")

    def fresh_token_note(t):
        if t.tokens is None:
            return "no auth: the same requests as manifest GET by tag"
        return None

    def manifest_head_tag(c, t, ctx):
        c.request("HEAD", f"/v2/{REPO_READ}/manifests/latest", headers=acc)

    def blob_head(c, t, ctx):
        c.request("HEAD", f"/v2/{REPO_READ}/blobs/{fx.d_4k}")

    def blob_get(digest, size):
        def run(c, t, ctx):
            r = c.get_following(f"/v2/{REPO_READ}/blobs/{digest}")
            if len(r.body) != size:
                raise BenchError(f"blob GET {digest}: {len(r.body)} bytes, expected {size}")
        return run

    def tags(c, t, ctx):
        got = list_tags(c, REPO_TAGS)
        if len(got) != TAG_COUNT:
            raise BenchError(f"tags list: {len(got)} tags")

    return [
        Op("blob push single POST 4 KiB", single_post, random_blob(4 * KIB),
           n=n(240), warmup=5, nbytes=4 * KIB, note_for=single_post_note),
        Op("blob push single POST 8 MiB", single_post, random_blob(8 * MIB),
           n=n(32), warmup=2, nbytes=8 * MIB, note_for=single_post_note),
        Op("blob push POST+PUT 4 KiB", post_put, random_blob(4 * KIB),
           n=n(240), warmup=5, nbytes=4 * KIB),
        Op("blob push POST+PUT 8 MiB", post_put, random_blob(8 * MIB),
           n=n(32), warmup=2, nbytes=8 * MIB),
        Op("blob push chunked 4x1 MiB", chunked, random_blob(4 * MIB),
           n=n(32), warmup=2, nbytes=4 * MIB),
        Op("manifest PUT by tag", manifest_put, manifest_prep, n=n(240), warmup=5),
        Op("manifest GET by tag", manifest_get_tag, n=n(400), warmup=20),
        Op("manifest GET by tag, new token each time", manifest_get_tag_fresh,
           fresh_token_prep, n=n(400), warmup=20, setup=fresh_token_setup,
           note_for=fresh_token_note),
        Op("manifest GET by digest", manifest_get_digest, n=n(400), warmup=20),
        Op("manifest HEAD by tag", manifest_head_tag, n=n(400), warmup=20),
        Op("blob HEAD", blob_head, n=n(400), warmup=20),
        Op("blob GET 4 KiB", blob_get(fx.d_4k, 4 * KIB), n=n(400), warmup=20,
           nbytes=4 * KIB),
        Op("blob GET 8 MiB", blob_get(fx.d_8m, 8 * MIB), n=n(40), warmup=3,
           nbytes=8 * MIB),
        Op(f"tags list ({TAG_COUNT} tags)", tags, n=n(200), warmup=10),
        Op("manifest GET by tag x4", manifest_get_tag, n=n(800), warmup=8, threads=4),
        Op("blob HEAD x4", blob_head, n=n(800), warmup=8, threads=4),
        Op("blob GET 4 KiB x4", blob_get(fx.d_4k, 4 * KIB), n=n(800), warmup=8,
           threads=4, nbytes=4 * KIB),
        Op("blob GET 8 MiB x4", blob_get(fx.d_8m, 8 * MIB), n=n(48), warmup=4,
           threads=4, nbytes=8 * MIB),
    ]


# --------------------------------------------------------------------------
# Measurement


def cpu_delta(before: float | None, after: float | None) -> float | None:
    return after - before if before is not None and after is not None else None


def timed_batch(op: Op, t: Target, count: int) -> tuple[list[float], float, float | None]:
    """Runs `count` samples. Returns (latencies in s, time to divide by,
    server CPU seconds over the batch or None)."""
    if op.threads == 1:
        lat = []
        ctxs = [op.prepare(t) for _ in range(count)]
        cpu0 = t.cpu_s()
        for ctx in ctxs:
            t0 = time.perf_counter()
            op.run(t.client, t, ctx)
            lat.append(time.perf_counter() - t0)
        return lat, sum(lat), cpu_delta(cpu0, t.cpu_s())

    per = [count // op.threads + (1 if i < count % op.threads else 0) for i in range(op.threads)]
    results: list[list[float]] = [[] for _ in range(op.threads)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(op.threads + 1)
    ends = [0.0] * op.threads

    def worker(i: int) -> None:
        c = t.new_client()
        try:
            ctxs = [op.prepare(t) for _ in range(per[i])]
            op.run(c, t, op.prepare(t))  # open and warm this connection
            barrier.wait()
            for ctx in ctxs:
                t0 = time.perf_counter()
                op.run(c, t, ctx)
                results[i].append(time.perf_counter() - t0)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
            barrier.abort()
        finally:
            ends[i] = time.perf_counter()
            c.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(op.threads)]
    for th in threads:
        th.start()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        pass
    cpu0 = t.cpu_s()
    start = time.perf_counter()
    for th in threads:
        th.join()
    cpu1 = t.cpu_s()
    if errors:
        raise errors[0]
    wall = max(ends) - start
    return [x for r in results for x in r], wall, cpu_delta(cpu0, cpu1)


def summarize(lat: list[float], busy: float, nbytes: int) -> dict:
    s = sorted(lat)
    n = len(s)
    def pct(p: float) -> float:
        return s[min(n - 1, int(p * n))] * 1e3

    out = {
        "samples": n,
        "median_ms": statistics.median(s) * 1e3,
        "mean_ms": statistics.fmean(s) * 1e3,
        "min_ms": s[0] * 1e3,
        "p10_ms": pct(0.10),
        "p25_ms": pct(0.25),
        "p75_ms": pct(0.75),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": s[-1] * 1e3,
        "ops_per_s": n / busy if busy > 0 else None,
    }
    if nbytes and busy > 0:
        out["mib_per_s"] = n * nbytes / MIB / busy
    return out


def measure(op: Op, targets: list[Target], op_budget: float, log) -> dict:
    for t in targets:
        op.setup(t, op.warmup + op.n)
        for _ in range(op.warmup):
            if op.threads == 1:
                op.run(t.client, t, op.prepare(t))
        if op.threads > 1:
            timed_batch(op, t, op.warmup)
    rounds = ROUNDS if op.threads == 1 else ROUNDS_THREADED
    per_round = max(1, -(-op.n // rounds))
    lat = {t.key: [] for t in targets}
    busy = {t.key: 0.0 for t in targets}
    cpu: dict[str, float | None] = {t.key: 0.0 for t in targets}
    span0 = {t.key: t.cpu_s() for t in targets}
    t_start = time.perf_counter()
    done = 0
    for rnd in range(rounds):
        if done >= op.n:
            break
        count = min(per_round, op.n - done)
        order = targets if rnd % 2 == 0 else list(reversed(targets))
        for t in order:
            l, b, c = timed_batch(op, t, count)
            lat[t.key].extend(l)
            busy[t.key] += b
            cpu[t.key] = cpu[t.key] + c if c is not None and cpu[t.key] is not None else None
        done += count
        if time.perf_counter() - t_start > op_budget:
            log(f"    (time budget of {op_budget:.0f}s reached after {rnd + 1} rounds)")
            break
    res = {
        "op": op.name,
        "threads": op.threads,
        "bytes": op.nbytes,
        "seconds": time.perf_counter() - t_start,
    }
    for t in targets:
        x = summarize(lat[t.key], busy[t.key], op.nbytes)
        # Server CPU: the sum over this registry's timed batches; and, as a
        # cross-check, over the whole timed phase of the op (which also holds
        # the server's idle time while the other registries ran, and work it
        # deferred past the end of a batch).
        if cpu[t.key] is not None:
            x["cpu_s"] = cpu[t.key]
            x["cpu_us_per_req"] = cpu[t.key] * 1e6 / x["samples"]
        span = cpu_delta(span0[t.key], t.cpu_s())
        if span is not None:
            x["cpu_span_us_per_req"] = span * 1e6 / x["samples"]
        res[t.key] = x
        note = op.note_for(t)
        if note:
            res[t.key]["note"] = note
    b, d = res["berth"]["median_ms"], res["distribution"]["median_ms"]
    res["ratio"] = d / b if b > 0 else None
    if "baseline" in res:
        o = res["baseline"]["median_ms"]
        res["ratio_baseline"] = o / b if b > 0 else None
        bc, oc = res["berth"].get("cpu_us_per_req"), res["baseline"].get("cpu_us_per_req")
        res["cpu_ratio_berth_baseline"] = bc / oc if bc is not None and oc else None
    return res


# --------------------------------------------------------------------------
# Readiness, machine facts, output


def wait_ready(t: Target, pid: int | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if pid is not None and not pid_alive(pid):
            raise BenchError(f"{t.label} (pid {pid}) exited before it was ready")
        c = Client(t.url, timeout=2)
        try:
            r = c.request("GET", "/v2/", expect=(200, 401, 404, 500, 503))
            # 401: up, and wants a token.
            if r.status in (200, 401):
                return
            last = f"GET /v2/ answered {r.status}"
        except (OSError, http.client.HTTPException, BenchError) as e:
            last = str(e)
        finally:
            c.close()
        time.sleep(0.05)
    raise BenchError(f"{t.label} at {t.url} not ready within {timeout:.0f}s ({last})")


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, IndexError):
        return False


def machine_facts() -> dict:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count()
    return {
        "nproc": nproc,
        "cpu_model": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def fmt_ms(x: float) -> str:
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def fmt_rate(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}"


def fmt_cpu(x: dict) -> str:
    v = x.get("cpu_us_per_req")
    if v is None:
        return "-"
    return f"{v:.0f}" if v >= 10 else f"{v:.1f}"


LABELS = {"berth": "berth", "distribution": "dist", "baseline": "baseline"}


def print_table(results: list[dict], out) -> None:
    has_base = any("baseline" in r for r in results)
    headers = ["op", "berth median ms", "distribution median ms",
               "ratio (dist/berth)", "berth ops/s", "distribution ops/s",
               "berth cpu µs/req", "dist cpu µs/req"]
    if has_base:
        headers += ["baseline median ms", "baseline ops/s", "baseline cpu µs/req",
                    "cpu berth/baseline"]
    rows = []
    notes: list[tuple[str, str]] = []

    def marked(r: dict, key: str, text: str) -> str:
        note = r[key].get("note")
        if not note:
            return text
        if (key, note) not in notes:
            notes.append((key, note))
        return text + "*" * (notes.index((key, note)) + 1)

    for r in results:
        b, d = r["berth"], r["distribution"]
        row = [
            r["op"],
            marked(r, "berth", fmt_ms(b["median_ms"])),
            marked(r, "distribution", fmt_ms(d["median_ms"])),
            f"{r['ratio']:.2f}" if r["ratio"] is not None else "-",
            fmt_rate(b["ops_per_s"]),
            fmt_rate(d["ops_per_s"]),
            fmt_cpu(b),
            fmt_cpu(d),
        ]
        if has_base:
            o = r.get("baseline")
            if o is None:
                row += ["-"] * 4
            else:
                cr = r.get("cpu_ratio_berth_baseline")
                row += [
                    marked(r, "baseline", fmt_ms(o["median_ms"])),
                    fmt_rate(o["ops_per_s"]),
                    fmt_cpu(o),
                    f"{cr:.2f}" if cr is not None else "-",
                ]
        rows.append(row)
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]

    def line(cells):
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:])]
        return " | ".join([first, *rest])

    print(line(headers), file=out)
    print("-+-".join("-" * w for w in widths), file=out)
    for row in rows:
        print(line(row), file=out)
    for i, (key, n) in enumerate(notes):
        print(f"{'*' * (i + 1)} {key}: {n}", file=out)
    keys = ["berth", "distribution"] + (["baseline"] if has_base else [])
    spread = []
    for r in results:
        for key in keys:
            x = r.get(key)
            if x and x["p90_ms"] > 5 * x["p10_ms"] and x["p90_ms"] - x["p10_ms"] > 5:
                spread.append(f"  {r['op']}, {key}: p10 {fmt_ms(x['p10_ms'])} ms, "
                              f"median {fmt_ms(x['median_ms'])} ms, p90 {fmt_ms(x['p90_ms'])} ms")
    if spread:
        print("\nwide latency spread (p90 > 5 x p10; the median may flip between modes):",
              file=out)
        for line_ in spread:
            print(line_, file=out)
    big = [r for r in results if r["bytes"] >= MIB]
    if big:
        print(f"\nthroughput of the large transfers, MiB/s ({' / '.join(keys)}):", file=out)
        for r in big:
            vals = " / ".join(f"{r[k].get('mib_per_s', 0):.0f}" for k in keys if k in r)
            print(f"  {r['op']}: {vals}", file=out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--berth", required=True, help="Berth base URL")
    ap.add_argument("--distribution", required=True, help="Distribution base URL")
    ap.add_argument("--baseline", help="base URL of a baseline Berth (an older build)")
    ap.add_argument("--berth-pid", type=int)
    ap.add_argument("--distribution-pid", type=int)
    ap.add_argument("--baseline-pid", type=int)
    ap.add_argument("--berth-version", default="")
    ap.add_argument("--distribution-version", default="")
    ap.add_argument("--baseline-version", default="")
    ap.add_argument("--user", default="admin",
                    help="user for the token service (default admin; the password "
                         "comes from env BENCH_ADMIN_PASSWORD, default Harbor12345)")
    ap.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE",
                    help="extra facts for the report (repeatable)")
    ap.add_argument("--scale", type=float, default=float(os.environ.get("BENCH_SCALE", "1")),
                    help="multiplies every sample count (default 1, env BENCH_SCALE)")
    ap.add_argument("--op-budget", type=float, default=float(os.environ.get("BENCH_OP_BUDGET", "25")),
                    help="seconds per operation (both registries) before rounds stop early")
    ap.add_argument("--only", default=os.environ.get("BENCH_ONLY", ""),
                    help="run only operations whose name contains this text")
    ap.add_argument("--json", default="tests/bench/last-results.json")
    args = ap.parse_args()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    targets = [
        Target("berth", "Berth", args.berth, args.berth_pid),
        Target("distribution", "Distribution", args.distribution, args.distribution_pid),
    ]
    if args.baseline:
        targets.append(Target("baseline", "Baseline Berth", args.baseline, args.baseline_pid))
    for t in targets:
        wait_ready(t, t.pid, 60)
    password = os.environ.get("BENCH_ADMIN_PASSWORD", "Harbor12345")
    for t in targets:
        t.authenticate(args.user, password)
        log(f"  {t.label}: auth: {t.info['auth']}")

    t0 = time.time()
    load_before = os.getloadavg()
    log("generating the fixture and loading it into the registries ...")
    fx = Fixture()
    for t in targets:
        auth = t.info["auth"]
        t.info = fx.load(t.client)
        t.info["auth"] = auth
        log(f"  {t.label}: loaded (single-POST upload supported: {t.info['single_post']})")
    # Idle server CPU (what a server burns doing nothing): the cpu columns
    # are only meaningful if this is small.
    idle0 = {t.key: t.cpu_s() for t in targets}
    time.sleep(2.0)
    idle = {t.key: cpu_delta(idle0[t.key], t.cpu_s()) for t in targets}

    ops = [o for o in build_ops(fx, args.scale) if args.only.lower() in o.name.lower()]
    results = []
    for op in ops:
        log(f"  {op.name} ...")
        r = measure(op, targets, args.op_budget, log)
        log("    " + ", ".join(
            f"{t.key} {fmt_ms(r[t.key]['median_ms'])} ms ({fmt_cpu(r[t.key])} cpu µs/req)"
            for t in targets) + f", ratio {r['ratio']:.2f}")
        results.append(r)
    load_after = os.getloadavg()
    duration = time.time() - t0

    machine = machine_facts()
    versions = {
        "berth": args.berth_version,
        "distribution": args.distribution_version,
        "python": machine["python"],
    }
    if args.baseline:
        versions["baseline"] = args.baseline_version
    meta = dict(kv.split("=", 1) for kv in args.meta if "=" in kv)
    out = sys.stdout
    print(file=out)
    print(f"machine: {machine['nproc']} CPUs ({machine['cpu_model']}), kernel "
          f"{machine['kernel']}; load average before {load_before[0]:.2f}, "
          f"after {load_after[0]:.2f}", file=out)
    print(f"berth: {versions['berth']}", file=out)
    print(f"distribution: {versions['distribution']}", file=out)
    if args.baseline:
        print(f"baseline: {versions['baseline']}", file=out)
    for t in targets:
        print(f"auth, {t.key}: {t.info.get('auth')}", file=out)
    print("idle server CPU over 2 s after loading (ms): " + ", ".join(
        f"{k} {v * 1e3:.0f}" if v is not None else f"{k} -" for k, v in idle.items()),
        file=out)
    for k, v in meta.items():
        print(f"{k}: {v}", file=out)
    print(f"client: Python {versions['python']} http.client, one keep-alive connection "
          f"per thread, 127.0.0.1; {ROUNDS} alternating rounds per op "
          f"({ROUNDS_THREADED} for x4); "
          f"benchmark took {duration:.0f}s", file=out)
    print("ratio = distribution median / berth median (> 1: Berth faster); "
          "x4 = 4 client threads, ops/s over wall time", file=out)
    print(f"cpu µs/req = server utime+stime (/proc/<pid>/stat, {CLK_TCK} ticks/s) over its "
          "timed batches / samples, in steps of 1 tick / samples (25 µs at 400 samples); "
          "cpu berth/baseline > 1: Berth uses more CPU", file=out)
    print(file=out)
    print_table(results, out)

    report = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)),
        "duration_s": duration,
        "machine": machine,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "versions": versions,
        "meta": meta,
        "method": {
            "rounds": ROUNDS,
            "rounds_threaded": ROUNDS_THREADED,
            "scale": args.scale,
            "op_budget_s": args.op_budget,
            "urls": {t.key: t.url for t in targets},
            "single_post_supported": {t.key: t.info.get("single_post") for t in targets},
            "auth": {t.key: t.info.get("auth") for t in targets},
            "idle_cpu_s_over_2s": idle,
            "clk_tck": CLK_TCK,
        },
        "results": results,
    }
    if args.json:
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
        print(f"\nresults written to {args.json}", file=out)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
