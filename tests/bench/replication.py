#!/usr/bin/env python3
"""Replication benchmark (not a test; never run by CI).

Fills project `src` of Berth A with BENCH_REPL_MB megabytes (default 1024) of
random layers in BENCH_REPL_IMAGES images, then replicates the project with a
push-based, manual replication policy to a second Berth (B) and to the
reference registry (Distribution), and, as the yardstick, copies the same
images A -> B with `skopeo copy` (a client streaming registry to registry).
Prints MB/s of each and the ratios. Asserts nothing.

Usage (from tests/bench/replication, which starts the servers):
  replication.py A_URL B_URL DIST_URL
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import (  # noqa: E402
    Client,
    TokenService,
    challenge_of,
    make_manifest,
    push_post_put,
    put_manifest,
    sha256,
)

ADMIN = "admin"
PASSWORD = os.environ.get("BENCH_ADMIN_PASSWORD", "Harbor12345")
MB = 1024 * 1024


def api(url: str) -> Client:
    basic = "Basic " + base64.b64encode(f"{ADMIN}:{PASSWORD}".encode()).decode()
    return Client(url, timeout=600, headers={"Authorization": basic,
                                             "Content-Type": "application/json"})


def call(c: Client, method: str, path: str, body=None, expect=(200, 201)) -> dict | list | None:
    data = json.dumps(body).encode() if body is not None else None
    r = c.request(method, "/api/v2.0" + path, body=data, expect=expect)
    if r.status == 201:
        loc = r.header("Location") or ""
        return {"id": int(loc.rstrip("/").rsplit("/", 1)[-1])} if loc else None
    return json.loads(r.body) if r.body.strip() else None


def registry_client(url: str, repo_scopes: list[str]) -> Client:
    ch = challenge_of(url)
    if ch is None:
        return Client(url, timeout=600)
    ts = TokenService(ch, ADMIN, PASSWORD)
    token = ts.token(repo_scopes)
    ts.close()
    return Client(url, timeout=600, headers={"Authorization": f"Bearer {token}"})


def fill(a_url: str, images: int, total_mb: int) -> int:
    """Pushes `images` images of random layers totalling `total_mb` MB."""
    per_image = total_mb * MB // images
    layers_per_image = max(1, per_image // (32 * MB))
    layer_size = per_image // layers_per_image
    total = 0
    for i in range(images):
        repo = f"src/app{i % 4}"
        c = registry_client(a_url, [f"repository:{repo}:pull,push"])
        layers = []
        for _ in range(layers_per_image):
            data = os.urandom(layer_size)
            d = sha256(data)
            push_post_put(c, repo, data, d)
            layers.append((d, len(data)))
            total += len(data)
        cfg = json.dumps({"architecture": "amd64", "os": "linux", "n": i}).encode()
        push_post_put(c, repo, cfg, sha256(cfg))
        put_manifest(c, repo, f"v{i}", make_manifest((sha256(cfg), len(cfg)), layers, f"img{i}"))
        c.close()
    return total


def replicate(a: Client, dest_url: str, dest_type: str, name: str) -> float:
    """Creates an endpoint and a manual push policy on A; runs it; returns seconds."""
    ep = {"name": name, "type": dest_type, "url": dest_url, "insecure": True}
    if dest_type != "docker-registry":
        ep["credential"] = {"type": "basic", "access_key": ADMIN, "access_secret": PASSWORD}
    reg = call(a, "POST", "/registries", ep)
    policy = {
        "name": f"bench-{name}",
        "src_registry": None,
        "dest_registry": {"id": reg["id"]},
        "dest_namespace": "dst" if dest_type != "docker-registry" else "",
        "filters": [{"type": "name", "value": "src/**"}],
        "trigger": {"type": "manual"},
        "enabled": True,
        "override": True,
        "deletion": False,
    }
    pol = call(a, "POST", "/replication/policies", policy)
    start = time.monotonic()
    ex = call(a, "POST", "/replication/executions", {"policy_id": pol["id"]})
    while True:
        e = call(a, "GET", f"/replication/executions/{ex['id']}")
        if e["status"] not in ("Pending", "Running", "InProgress"):
            break
        time.sleep(0.2)
    secs = time.monotonic() - start
    print(f"  {name}: execution {e['status']}, {e.get('succeed')}/{e.get('total')} tasks "
          f"succeeded, {e.get('failed')} failed")
    return secs


def skopeo_copy(a_url: str, b_url: str, images: int) -> float | None:
    if shutil.which("skopeo") is None:
        return None
    creds = f"{ADMIN}:{PASSWORD}"
    a = urllib.parse.urlsplit(a_url).netloc
    b = urllib.parse.urlsplit(b_url).netloc
    start = time.monotonic()
    for i in range(images):
        repo = f"app{i % 4}"
        subprocess.run(
            ["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
             "--src-creds", creds, "--dest-creds", creds,
             f"docker://{a}/src/{repo}:v{i}", f"docker://{b}/skopeo/{repo}:v{i}"],
            check=True)
    return time.monotonic() - start


def main() -> int:
    a_url, b_url, dist_url = sys.argv[1:4]
    total_mb = int(os.environ.get("BENCH_REPL_MB", "1024"))
    images = int(os.environ.get("BENCH_REPL_IMAGES", "8"))
    a = api(a_url)
    b = api(b_url)
    for c, names in ((a, ["src"]), (b, ["dst", "skopeo"])):
        for n in names:
            call(c, "POST", "/projects", {"project_name": n, "metadata": {"public": "false"}},
                 expect=(201, 409))
    t = time.monotonic()
    total = fill(a_url, images, total_mb)
    fill_s = time.monotonic() - t
    mb = total / MB
    print(f"filled Berth A with {mb:.0f} MB in {images} images in {fill_s:.1f} s "
          f"({mb / fill_s:.1f} MB/s pushed by the bench client)")
    rows = []
    s = replicate(a, b_url, "berth", "berth-b")
    rows.append(("Berth A -> Berth B (replication)", s))
    s = replicate(a, dist_url, "docker-registry", "distribution")
    rows.append(("Berth A -> Distribution (replication)", s))
    k = skopeo_copy(a_url, b_url, images)
    if k is not None:
        rows.append(("Berth A -> Berth B (skopeo copy, yardstick)", k))
    print(f"\n{'what':48} {'seconds':>8} {'MB/s':>8}")
    for what, secs in rows:
        print(f"{what:48} {secs:8.1f} {mb / secs:8.1f}")
    if k:
        print(f"\nreplication to Berth / skopeo copy: {k / rows[0][1]:.2f}x the speed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
