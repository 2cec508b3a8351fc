#!/usr/bin/env python3
"""Berth vs Distribution: the same HTTP client, the same operations, one run.

Started by `tests/bench/run`, which builds Berth, starts both registries on
127.0.0.1 and stops them afterwards. This script only measures and prints:
it asserts nothing about timings.

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
import hashlib
import http.client
import json
import os
import platform
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

REPO_PUSH = "bench/push"
REPO_PUT = "bench/manifests"
REPO_READ = "bench/read"
REPO_TAGS = "bench/tags"
TAG_COUNT = 200

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

    def __init__(self, base_url: str, timeout: float = 120.0):
        self.base = base_url.rstrip("/") + "/"
        self.timeout = timeout
        self.conns: dict[str, http.client.HTTPConnection] = {}

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
# Registry operations (the same code for both registries)


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
    def __init__(self, key: str, label: str, url: str):
        self.key = key
        self.label = label
        self.url = url
        self.client = Client(url)
        self.info: dict = {}
        self.seq = 0

    def next_id(self) -> int:
        self.seq += 1
        return self.seq


class Op:
    """One benchmarked operation.

    prepare(target) -> ctx runs untimed before each sample; run(client,
    target, ctx) is the timed part.
    """

    def __init__(self, name, run, prepare=None, n=100, warmup=5, threads=1,
                 nbytes=0, note_for=None):
        self.name = name
        self.run = run
        self.prepare = prepare or (lambda t: None)
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


def timed_batch(op: Op, t: Target, count: int) -> tuple[list[float], float]:
    """Runs `count` samples. Returns (latencies in s, time to divide by)."""
    if op.threads == 1:
        lat = []
        for _ in range(count):
            ctx = op.prepare(t)
            t0 = time.perf_counter()
            op.run(t.client, t, ctx)
            lat.append(time.perf_counter() - t0)
        return lat, sum(lat)

    per = [count // op.threads + (1 if i < count % op.threads else 0) for i in range(op.threads)]
    results: list[list[float]] = [[] for _ in range(op.threads)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(op.threads + 1)
    ends = [0.0] * op.threads

    def worker(i: int) -> None:
        c = Client(t.url)
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
    start = time.perf_counter()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    wall = max(ends) - start
    return [x for r in results for x in r], wall


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
        for _ in range(op.warmup):
            if op.threads == 1:
                op.run(t.client, t, op.prepare(t))
        if op.threads > 1:
            timed_batch(op, t, op.warmup)
    rounds = ROUNDS if op.threads == 1 else ROUNDS_THREADED
    per_round = max(1, -(-op.n // rounds))
    lat = {t.key: [] for t in targets}
    busy = {t.key: 0.0 for t in targets}
    t_start = time.perf_counter()
    done = 0
    for rnd in range(rounds):
        if done >= op.n:
            break
        count = min(per_round, op.n - done)
        order = targets if rnd % 2 == 0 else list(reversed(targets))
        for t in order:
            l, b = timed_batch(op, t, count)
            lat[t.key].extend(l)
            busy[t.key] += b
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
        res[t.key] = summarize(lat[t.key], busy[t.key], op.nbytes)
        note = op.note_for(t)
        if note:
            res[t.key]["note"] = note
    b, d = res["berth"]["median_ms"], res["distribution"]["median_ms"]
    res["ratio"] = d / b if b > 0 else None
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
            if r.status == 200:
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


def print_table(results: list[dict], out) -> None:
    headers = ["op", "berth median ms", "distribution median ms",
               "ratio (dist/berth)", "berth ops/s", "distribution ops/s"]
    rows = []
    notes: list[str] = []
    for r in results:
        b, d = r["berth"], r["distribution"]
        mark = ""
        if d.get("note"):
            if d["note"] not in notes:
                notes.append(d["note"])
            mark = "*" * (notes.index(d["note"]) + 1)
        rows.append([
            r["op"],
            fmt_ms(b["median_ms"]),
            fmt_ms(d["median_ms"]) + mark,
            f"{r['ratio']:.2f}" if r["ratio"] is not None else "-",
            fmt_rate(b["ops_per_s"]),
            fmt_rate(d["ops_per_s"]),
        ])
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]

    def line(cells):
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:])]
        return " | ".join([first, *rest])

    print(line(headers), file=out)
    print("-+-".join("-" * w for w in widths), file=out)
    for row in rows:
        print(line(row), file=out)
    for i, n in enumerate(notes):
        print(f"{'*' * (i + 1)} distribution: {n}", file=out)
    spread = []
    for r in results:
        for key in ("berth", "distribution"):
            x = r[key]
            if x["p90_ms"] > 5 * x["p10_ms"] and x["p90_ms"] - x["p10_ms"] > 5:
                spread.append(f"  {r['op']}, {key}: p10 {fmt_ms(x['p10_ms'])} ms, "
                              f"median {fmt_ms(x['median_ms'])} ms, p90 {fmt_ms(x['p90_ms'])} ms")
    if spread:
        print("\nwide latency spread (p90 > 5 x p10; the median may flip between modes):",
              file=out)
        for line_ in spread:
            print(line_, file=out)
    big = [r for r in results if r["bytes"] >= MIB]
    if big:
        print("\nthroughput of the large transfers, MiB/s (berth / distribution):", file=out)
        for r in big:
            print(f"  {r['op']}: {r['berth'].get('mib_per_s', 0):.0f} / "
                  f"{r['distribution'].get('mib_per_s', 0):.0f}", file=out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--berth", required=True, help="Berth base URL")
    ap.add_argument("--distribution", required=True, help="Distribution base URL")
    ap.add_argument("--berth-pid", type=int)
    ap.add_argument("--distribution-pid", type=int)
    ap.add_argument("--berth-version", default="")
    ap.add_argument("--distribution-version", default="")
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
        Target("berth", "Berth", args.berth),
        Target("distribution", "Distribution", args.distribution),
    ]
    for t, pid in zip(targets, (args.berth_pid, args.distribution_pid)):
        wait_ready(t, pid, 60)

    t0 = time.time()
    load_before = os.getloadavg()
    log("generating the fixture and loading it into both registries ...")
    fx = Fixture()
    for t in targets:
        t.info = fx.load(t.client)
        log(f"  {t.label}: loaded (single-POST upload supported: {t.info['single_post']})")

    ops = [o for o in build_ops(fx, args.scale) if args.only.lower() in o.name.lower()]
    results = []
    for op in ops:
        log(f"  {op.name} ...")
        r = measure(op, targets, args.op_budget, log)
        log(f"    berth {fmt_ms(r['berth']['median_ms'])} ms, distribution "
            f"{fmt_ms(r['distribution']['median_ms'])} ms, ratio {r['ratio']:.2f}")
        results.append(r)
    load_after = os.getloadavg()
    duration = time.time() - t0

    machine = machine_facts()
    versions = {
        "berth": args.berth_version,
        "distribution": args.distribution_version,
        "python": machine["python"],
    }
    meta = dict(kv.split("=", 1) for kv in args.meta if "=" in kv)
    out = sys.stdout
    print(file=out)
    print(f"machine: {machine['nproc']} CPUs ({machine['cpu_model']}), kernel "
          f"{machine['kernel']}; load average before {load_before[0]:.2f}, "
          f"after {load_after[0]:.2f}", file=out)
    print(f"berth: {versions['berth']}", file=out)
    print(f"distribution: {versions['distribution']}", file=out)
    for k, v in meta.items():
        print(f"{k}: {v}", file=out)
    print(f"client: Python {versions['python']} http.client, one keep-alive connection "
          f"per thread, 127.0.0.1; {ROUNDS} alternating rounds per op "
          f"({ROUNDS_THREADED} for x4); "
          f"benchmark took {duration:.0f}s", file=out)
    print("ratio = distribution median / berth median (> 1: Berth faster); "
          "x4 = 4 client threads, ops/s over wall time", file=out)
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
