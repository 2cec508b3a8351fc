#!/usr/bin/env python3
"""Checks Berth's repository/artifact API (`/api/v2.0`: repositories,
artifacts, tags, accessories, additions, labels, search, statistics, health,
project summary) against Harbor's own API definition, read at run time.

    check_artifacts.py --url http://127.0.0.1:PORT --password ADMIN_PASSWORD \
        --swagger ../shared/reference/harbor-api-v2.0.swagger.yaml
    check_artifacts.py --self-test --swagger ...   (no server: checks the checker)

The script seeds its own data through the registry API (`/v2/`, a bearer
token from the realm of the `/v2/` challenge, Basic `admin`, scope
`repository:<p>/<r>:push,pull`), all with urllib:

- `app`: three single-architecture images (OCI and Docker schema 2
  manifests; config with architecture, os, created, author, history; one
  layer), a cosign signature of `app:v1` (tag `sha256-<hex>.sig`, simple
  signing layer) and an SPDX SBOM referring to it (`subject`,
  artifactType `application/spdx+json`);
- `multi`: an OCI index of a linux/amd64 and a linux/arm64 image;
- `chart`: a Helm chart (config `application/vnd.cncf.helm.config.v1+json`,
  a real .tgz layer with mychart/Chart.yaml, values.yaml, README.md);
- `team/svc`: a repository with a `/` in its name (addressed encoded twice,
  `team%252Fsvc`, as Harbor's clients do, and once).

Every API answer is validated against the schema of its status in HARBOR's
definition (the helpers of check_identity.py: Draft 4, `$ref`s resolved,
`x-nullable` ignored, `date-time` must be RFC 3339), and then Berth's own
expectations are checked: artifact types and extra_attrs, index references
with platforms, accessories (`signature.cosign`, `subject.accessory`),
additions, paging headers across page boundaries, 400s with Harbor's error
body, tags, labels, copy, deletes, search, statistics, health, summary.

Known errors of Harbor's definition are patched before validating (each is
printed): `ExtraAttrs` values are typed `object` there, yet Harbor sends
strings (architecture, os, author, created); additions are typed `string`,
yet build_history and dependencies are JSON (their content type is checked
instead).

One line per call or check, `… -> ok | <first error>`, then a summary; exit
status 1 if anything failed, 2 if the check could not run at all.

Dependencies: PyYAML and jsonschema (tests/install-deps installs them).
"""

import argparse
import base64
import gzip
import hashlib
import io
import json
import os
import re
import secrets
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # importing check_identity leaves no __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_identity as ci  # noqa: E402  (the shared validation helpers)

BASE_PATH = ci.BASE_PATH

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
COSIGN_LAYER = "application/vnd.dev.cosign.simplesigning.v1+json"
SPDX = "application/spdx+json"

# ------------------------------------------------------------- content ----


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def tar_gz(files, mode=0o644):
    """A deterministic .tar.gz of {path: bytes}: (gzipped bytes, diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            info.mtime = 1704164645
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0) as g:
        g.write(tar_bytes)
    return gz.getvalue(), sha256(tar_bytes)


def image_config(arch, os_name, created, author, marker, diff_id):
    return {
        "architecture": arch,
        "os": os_name,
        "created": created,
        "author": author,
        "config": {"Env": ["PATH=/usr/bin"], "Cmd": ["/hello"], "Labels": {"check": marker}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [
            {"created": created, "created_by": f"/bin/sh -c #(nop) ADD file:{marker} in /hello",
             "comment": "check_artifacts layer"},
            {"created": created, "created_by": '/bin/sh -c #(nop)  CMD ["/hello"]', "empty_layer": True},
        ],
    }


CHART_YAML = b"""apiVersion: v2
name: mychart
version: 0.1.0
appVersion: "1.0.0"
description: A chart pushed by check_artifacts.py
type: application
dependencies:
  - name: redis
    version: 17.3.7
    repository: https://charts.example.com/bitnami
"""
VALUES_YAML = b"replicaCount: 1\nimage:\n  repository: nginx\n  tag: stable\n"
README_MD = b"# mychart\n\nA chart pushed by `check_artifacts.py`.\n"


# ---------------------------------------------------------------- HTTP ----


def http(method, url, headers=None, data=None, timeout=30):
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    try:
        with ci.OPENER.open(req, timeout=timeout) as r:
            return ci.Response(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return ci.Response(e.code, e.headers, e.read())


def parse_challenge(value):
    """`Bearer realm="…",service="…"` -> {realm, service, …} (None if not Bearer)."""
    if not value or not value.lower().startswith("bearer "):
        return None
    return {k.lower(): v for k, v in re.findall(r'(\w+)="([^"]*)"', value[7:])}


def parse_link(value):
    """`<url>; rel="next", <url>; rel="prev"` -> {rel: url}."""
    out = {}
    for part in (value or "").split(","):
        m = re.match(r'\s*<([^>]*)>\s*;\s*rel="?([a-z]+)"?', part)
        if m:
            out[m.group(2)] = m.group(1)
    return out


class RegistryClient:
    """Plain `/v2/` pushes with tokens from the challenge's realm."""

    def __init__(self, url, user, password):
        self.url = url.rstrip("/")
        self.basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.tokens = {}
        r = http("GET", self.url + "/v2/")
        self.challenge = parse_challenge(r.headers.get("WWW-Authenticate")) if r.status == 401 else None

    def token(self, repo):
        if self.challenge is None:
            return None
        if repo not in self.tokens:
            realm = urllib.parse.urljoin(self.url + "/", self.challenge["realm"])
            qs = urllib.parse.urlencode({"service": self.challenge.get("service", ""),
                                         "scope": f"repository:{repo}:push,pull"})
            r = http("GET", f"{realm}?{qs}", {"Authorization": self.basic})
            if r.status != 200 or not isinstance(r.json, dict):
                raise RuntimeError(f"token for {repo}: {r.status} {r.body[:200]!r}")
            self.tokens[repo] = r.json.get("token") or r.json.get("access_token")
        return self.tokens[repo]

    def request(self, method, repo, path, data=None, headers=None):
        h = dict(headers or {})
        tok = self.token(repo)
        if tok:
            h["Authorization"] = "Bearer " + tok
        url = path if path.startswith("http") else self.url + path
        return http(method, url, h, data)

    def push_blob(self, repo, data):
        digest = sha256(data)
        r = self.request("HEAD", repo, f"/v2/{repo}/blobs/{digest}")
        if r.status == 200:
            return digest
        r = self.request("POST", repo, f"/v2/{repo}/blobs/uploads/", b"", {"Content-Length": "0"})
        if r.status != 202 or not r.headers.get("Location"):
            raise RuntimeError(f"blob upload start in {repo}: {r.status} {r.body[:200]!r}")
        loc = urllib.parse.urljoin(self.url + "/", r.headers["Location"])
        loc += ("&" if "?" in loc else "?") + urllib.parse.urlencode({"digest": digest})
        r = self.request("PUT", repo, loc, data, {"Content-Type": "application/octet-stream"})
        if r.status != 201:
            raise RuntimeError(f"blob upload {digest} in {repo}: {r.status} {r.body[:200]!r}")
        return digest

    def push_manifest(self, repo, ref, manifest, media_type):
        body = canonical(manifest)
        r = self.request("PUT", repo, f"/v2/{repo}/manifests/{ref}", body, {"Content-Type": media_type})
        if r.status != 201:
            raise RuntimeError(f"manifest {repo}:{ref}: {r.status} {r.body[:300]!r}")
        return sha256(body), len(body), r


class Pushed:
    """What the seeding pushed (digests, sizes, expected values)."""

    def __init__(self):
        self.images = {}  # key -> dict(digest, size, manifest_size, config, tag, repo)


def push_image(reg, repo, tag, *, arch="amd64", os_name="linux", created, author, marker,
               docker=False, annotations=None):
    layer, diff_id = tar_gz({"hello": marker.encode()})
    config = image_config(arch, os_name, created, author, marker, diff_id)
    cbytes = canonical(config)
    cdigest = reg.push_blob(repo, cbytes)
    ldigest = reg.push_blob(repo, layer)
    mt = DOCKER_MANIFEST if docker else OCI_MANIFEST
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt,
        "config": {"mediaType": DOCKER_CONFIG if docker else OCI_CONFIG, "digest": cdigest, "size": len(cbytes)},
        "layers": [{"mediaType": DOCKER_LAYER if docker else OCI_LAYER, "digest": ldigest, "size": len(layer)}],
    }
    if annotations and not docker:
        manifest["annotations"] = annotations
    digest, msize, _ = reg.push_manifest(repo, tag or sha256(canonical(manifest)), manifest, mt)
    return {"digest": digest, "manifest_size": msize, "media_type": mt,
            "config_media_type": manifest["config"]["mediaType"],
            "size": msize + len(cbytes) + len(layer), "config": config, "tag": tag, "repo": repo,
            "annotations": annotations or {}}


def seed(reg, project):
    """Pushes everything the checks use; returns {key: facts}."""
    out = {}
    app = f"{project}/app"
    out["v1"] = push_image(reg, app, "v1", created="2024-01-02T03:04:05Z", author="Check One <one@example.com>",
                           marker="v1", annotations={"org.opencontainers.image.title": "check v1"})
    out["v2"] = push_image(reg, app, "v2", created="2024-02-03T04:05:06Z", author="Check Two",
                           marker="v2", docker=True)
    out["v3"] = push_image(reg, app, "v3", created="2024-03-04T05:06:07Z", author="Check Three", marker="v3")
    # cosign signature of app:v1 (tag convention)
    target = out["v1"]["digest"]
    payload = canonical({"critical": {"identity": {"docker-reference": app},
                                      "image": {"docker-manifest-digest": target},
                                      "type": "cosign container image signature"}, "optional": None})
    pdigest = reg.push_blob(app, payload)
    sig_config = canonical({"architecture": "", "config": {}, "created": "0001-01-01T00:00:00Z",
                            "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
                            "rootfs": {"type": "layers", "diff_ids": [pdigest]}})
    scdigest = reg.push_blob(app, sig_config)
    sig_manifest = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": scdigest, "size": len(sig_config)},
        "layers": [{"mediaType": COSIGN_LAYER, "digest": pdigest, "size": len(payload),
                    "annotations": {"dev.cosignproject.cosign/signature":
                                    base64.b64encode(secrets.token_bytes(64)).decode()}}],
    }
    sig_tag = "sha256-" + target.split(":", 1)[1] + ".sig"
    d, s, _ = reg.push_manifest(app, sig_tag, sig_manifest, OCI_MANIFEST)
    out["sig"] = {"digest": d, "manifest_size": s, "tag": sig_tag, "repo": app,
                  "size": s + len(sig_config) + len(payload)}
    # SPDX SBOM referring to app:v1
    empty = b"{}"
    edigest = reg.push_blob(app, empty)
    spdx = canonical({"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "check",
                      "dataLicense": "CC0-1.0", "packages": []})
    sdigest = reg.push_blob(app, spdx)
    sbom_manifest = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": SPDX,
        "config": {"mediaType": OCI_EMPTY, "digest": edigest, "size": len(empty)},
        "layers": [{"mediaType": SPDX, "digest": sdigest, "size": len(spdx)}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": target, "size": out["v1"]["manifest_size"]},
        "annotations": {"org.opencontainers.image.created": "2024-05-06T07:08:09Z"},
    }
    body_digest = sha256(canonical(sbom_manifest))
    d, s, resp = reg.push_manifest(app, body_digest, sbom_manifest, OCI_MANIFEST)
    out["sbom"] = {"digest": d, "manifest_size": s, "repo": app, "oci_subject": resp.headers.get("OCI-Subject")}
    # index of two platforms
    multi = f"{project}/multi"
    children = []
    for arch in ("amd64", "arm64"):
        c = push_image(reg, multi, None, arch=arch, created="2024-04-05T06:07:08Z", author="Check Multi",
                       marker=f"multi-{arch}")
        c["arch"] = arch
        children.append(c)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": c["digest"], "size": c["manifest_size"],
         "platform": {"architecture": c["arch"], "os": "linux"}} for c in children]}
    d, s, _ = reg.push_manifest(multi, "latest", index, OCI_INDEX)
    out["index"] = {"digest": d, "manifest_size": s, "repo": multi, "children": children,
                    "size": s + sum(c["size"] for c in children)}
    # helm chart
    chart = f"{project}/chart"
    tgz, _ = tar_gz({"mychart/Chart.yaml": CHART_YAML, "mychart/values.yaml": VALUES_YAML,
                     "mychart/README.md": README_MD})
    hc = canonical({"name": "mychart", "version": "0.1.0", "apiVersion": "v2", "appVersion": "1.0.0",
                    "description": "A chart pushed by check_artifacts.py", "type": "application",
                    "dependencies": [{"name": "redis", "version": "17.3.7",
                                      "repository": "https://charts.example.com/bitnami"}]})
    hcd = reg.push_blob(chart, hc)
    tgd = reg.push_blob(chart, tgz)
    chart_manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                      "config": {"mediaType": HELM_CONFIG, "digest": hcd, "size": len(hc)},
                      "layers": [{"mediaType": HELM_LAYER, "digest": tgd, "size": len(tgz)}]}
    d, s, _ = reg.push_manifest(chart, "0.1.0", chart_manifest, OCI_MANIFEST)
    out["chart"] = {"digest": d, "manifest_size": s, "repo": chart, "size": s + len(hc) + len(tgz)}
    # a repository with a slash in its name
    out["nested"] = push_image(reg, f"{project}/team/svc", "1.0", created="2024-06-07T08:09:10Z",
                               author="Check Nested", marker="nested")
    return out


# ---------------------------------------------------------------- check ----


class Checker:
    def __init__(self, doc, url):
        self.doc = doc
        self.url = url.rstrip("/")
        self.base = self.url + BASE_PATH
        self.rows = []  # (method, shown path, principal, status, [errors], [notes])

    def call(self, method, template, params=None, *, query=None, principal, body=None, headers=None,
             expect=(200,), list_endpoint=False, validate=True, raw_params=(), label=None):
        """One call: send, check status, headers and body against Harbor's definition.

        Path parameters are percent-encoded (`/` too), except those named in
        `raw_params`, which are inserted as given."""
        params = params or {}
        path = template
        for k, v in params.items():
            enc = str(v) if k in raw_params else urllib.parse.quote(str(v), safe="")
            path = path.replace("{" + k + "}", enc)
        if "{" in path:
            raise ValueError(f"unfilled parameter in {path}")
        qs = ("?" + urllib.parse.urlencode(query, safe="=,:@/~*")) if query else ""
        h = {"Accept": "application/json"}
        h.update(headers or {})
        data = None
        # Harbor's generated client sends `{}` on every DELETE and body-less PUT/POST.
        if body is None and method in ("DELETE", "PUT", "PATCH", "POST"):
            body = {}
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        auth = principal.header()
        if auth:
            h["Authorization"] = auth
        shown = label or (path + qs)
        errors, notes = [], []
        try:
            resp = http(method, self.base + path + qs, h, data)
        except OSError as e:
            self.rows.append((method, shown, principal.label, "---", [f"request failed: {e}"], []))
            return None
        expect = (expect,) if isinstance(expect, int) else tuple(expect)
        if resp.status not in expect:
            detail = resp.body[:200].decode("utf-8", "replace").strip()
            errors.append(f"expected status {'/'.join(map(str, expect))}" + (f"; body: {detail}" if detail else ""))
        try:
            _, declared, pointer = self.doc.response(method, template, resp.status)
        except KeyError as e:
            errors.append(str(e).strip("'\""))
            declared, pointer = {}, None
        dheaders = declared.get("headers") or {}
        if (list_endpoint or "X-Total-Count" in dheaders) and resp.status == 200 and method == "GET":
            total = resp.headers.get("X-Total-Count")
            if total is None:
                errors.append("no X-Total-Count header")
            elif not re.fullmatch(r"\d+", total.strip()):
                errors.append(f"X-Total-Count is not an integer: {total!r}")
            elif isinstance(resp.json, list) and int(total) < len(resp.json):
                errors.append(f"X-Total-Count {total} < {len(resp.json)} items sent")
        if "Location" in dheaders and resp.status == 201 and not resp.headers.get("Location"):
            errors.append("no Location header on 201")
        if resp.status >= 400 and resp.json is not None:
            err = ci.first_error(self.doc.definition_validator("Errors"), resp.json)
            if err:
                errors.append(f"error body is not Harbor's Errors: {err}")
        elif validate and pointer is not None and method != "HEAD":
            if resp.json_error is not None:
                errors.append(f"body is not JSON ({resp.json_error})")
            elif resp.json is None:
                what = self.doc.schema_at(pointer).get("$ref", "schema").rsplit("/", 1)[-1]
                errors.append(f"no JSON body, expected {what} (Content-Type "
                              f"{resp.headers.get('Content-Type')!r}, {len(resp.body)} bytes)")
            else:
                err = ci.first_error(self.doc.validator(pointer), resp.json)
                if err:
                    errors.append(err)
                extra = ci.unknown_fields(self.doc, pointer, resp.json)
                if extra:
                    notes.append("fields not in Harbor's definition: " + ", ".join(extra))
        elif resp.status == 201 and resp.body.strip():
            notes.append(f"201 with a body ({len(resp.body)} bytes); Harbor sends none")
        self.rows.append((method, shown, principal.label, resp.status, errors, notes))
        return resp

    def check(self, what, ok, detail=""):
        """One expectation; a row either way."""
        self.rows.append(("CHECK", what, "-", "-", [] if ok else [detail or "failed"], []))
        return ok

    def note(self, what, detail):
        self.rows.append(("NOTE", what, "-", "-", [], [detail]))

    def fail(self, what, message):
        self.rows.append(("CHECK", what, "-", "-", [message], []))

    def report(self, out=sys.stdout):
        width = min(max((len(f"{m} {p} [{who}]") for m, p, who, *_ in self.rows), default=0), 100)
        failed = 0
        for method, path, who, status, errors, notes in self.rows:
            left = f"{method} {path} [{who}]"
            verdict = "ok" if not errors else errors[0]
            failed += bool(errors)
            print(f"{left:<{width}} {status} -> {verdict}", file=out)
            for e in errors[1:]:
                print(f"{'':<{width}}        also: {e}", file=out)
            for n in notes:
                print(f"{'':<{width}}        note: {n}", file=out)
        print(f"\n{len(self.rows)} checks, {failed} failed", file=out)
        return failed


def patch_harbor_errata(doc, out=sys.stdout):
    """Harbor's definition disagrees with Harbor's answers in a few places."""
    defs = doc.doc["definitions"]
    fixes = []
    if defs.get("ExtraAttrs", {}).get("additionalProperties") == {"type": "object"}:
        defs["ExtraAttrs"]["additionalProperties"] = {}
        fixes.append("ExtraAttrs values: any JSON value (Harbor sends architecture/os/author/created "
                     "as strings, config as an object; its definition says object)")
    # Re-register the patched document with the validator's registry.
    import referencing
    import referencing.jsonschema
    resource = referencing.jsonschema.DRAFT4.create_resource(doc.doc)
    doc.registry = referencing.Registry().with_resource(ci.SWAGGER_URI, resource)
    for f in fixes:
        print(f"erratum: {f}", file=out)
    return fixes


def id_from_location(resp):
    return ci.id_from_location(resp)


def got(resp, kind=dict):
    """The JSON body of a successful answer, if it is a `kind`; else None (the
    failed call has its own row, so the checks that need the body are skipped)."""
    if resp is None or not 200 <= resp.status < 300 or not isinstance(resp.json, kind):
        return None
    return resp.json


def by_key(items, key):
    return {i.get(key): i for i in items if isinstance(i, dict)} if isinstance(items, list) else {}


REPO_T = "/projects/{project_name}/repositories/{repository_name}"
ART_T = REPO_T + "/artifacts/{reference}"


def walk_pages(c, template, params, principal, page_size, query=None, label=""):
    """Follows Link rel="next" from page 1; checks the paging headers on the way.
    Returns the items in order (None when a call failed)."""
    q = dict(query or {})
    q["page_size"] = page_size
    r = c.call("GET", template, params, query=q, principal=principal, list_endpoint=True,
               label=f"{label} page 1 size {page_size}")
    if r is None or r.status != 200 or not isinstance(r.json, list):
        return None
    total = int(r.headers.get("X-Total-Count", "-1"))
    items = list(r.json)
    links = parse_link(r.headers.get("Link"))
    c.check(f"{label} size {page_size}: page 1 has no Link prev", "prev" not in links, f"Link {r.headers.get('Link')!r}")
    page = 1
    while "next" in links:
        page += 1
        if page > 50:
            c.fail(f"{label} size {page_size}", "more than 50 pages: Link next never ends")
            return None
        nxt = urllib.parse.urljoin(c.url + "/", links["next"])
        if not nxt.startswith(c.url):
            c.fail(f"{label} size {page_size}", f"Link next leaves the server: {links['next']!r}")
            return None
        h = {"Accept": "application/json", "Authorization": principal.header()}
        resp = http("GET", nxt, h)
        ok = resp.status == 200 and isinstance(resp.json, list)
        c.check(f"{label} size {page_size}: page {page} via Link next answers 200 with a list", ok,
                f"{resp.status} {resp.body[:120]!r}")
        if not ok:
            return None
        c.check(f"{label} size {page_size}: page {page} has at most {page_size} items",
                len(resp.json) <= page_size, f"{len(resp.json)} items")
        t = resp.headers.get("X-Total-Count")
        c.check(f"{label} size {page_size}: page {page} X-Total-Count stays {total}",
                t is not None and t.strip() == str(total), f"X-Total-Count {t!r}")
        items.extend(resp.json)
        links = parse_link(resp.headers.get("Link"))
        c.check(f"{label} size {page_size}: page {page} has Link prev", "prev" in links,
                f"Link {resp.headers.get('Link')!r}")
    c.check(f"{label} size {page_size}: pages hold X-Total-Count={total} items", len(items) == total,
            f"{len(items)} items over {page} pages")
    return items


def run_live(doc, url, password):
    c = Checker(doc, url)
    admin = ci.Principal("admin", "admin", password)
    anon = ci.ANONYMOUS
    suffix = secrets.token_hex(3)
    pname = f"check-art-{suffix}"
    p2name = f"check-art2-{suffix}"

    r = c.call("GET", "/ping", principal=anon, validate=False)
    if r is None:
        return c
    r = c.call("POST", "/projects", principal=admin, expect=201,
               body={"project_name": pname, "metadata": {"public": "false"}})
    pid = id_from_location(r)
    c.call("POST", "/projects", principal=admin, expect=201,
           body={"project_name": p2name, "metadata": {"public": "true"}})
    if pid is None:
        c.fail("POST /projects", "no project id in Location; the checks need it")
        return c

    # ---- seed through /v2/
    try:
        reg = RegistryClient(url, "admin", password)
        pushed = seed(reg, pname)
    except (RuntimeError, OSError, KeyError) as e:
        c.fail("seed through /v2/", str(e))
        return c
    c.check("seed through /v2/: 3 images, cosign signature, SBOM, index, chart, nested repository", True)
    c.check("SBOM push answers OCI-Subject (referrers API)", pushed["sbom"]["oci_subject"] == pushed["v1"]["digest"],
            f"OCI-Subject {pushed['sbom']['oci_subject']!r}")
    v1, v2, v3 = pushed["v1"], pushed["v2"], pushed["v3"]
    P = {"project_name": pname}

    # ---- repositories
    r = c.call("GET", "/repositories", principal=admin, list_endpoint=True,
               query={"q": f"name=~{pname}/", "page_size": 100})
    if got(r, list) is not None:
        names = sorted(x.get("name") for x in r.json if isinstance(x, dict))
        want = sorted(f"{pname}/{n}" for n in ("app", "chart", "multi", "team/svc"))
        c.check("GET /repositories?q=name=~<p>/ lists the 4 seeded repositories by full name", names == want,
                f"{names}")
    r = c.call("GET", "/projects/{project_name}/repositories", P, principal=admin, list_endpoint=True)
    repos = by_key(got(r, list), "name")
    if got(r, list) is not None:
        app_repo = repos.get(f"{pname}/app") or {}
        c.check("repository name is <project>/<repository>, project_id is the project's",
                bool(app_repo) and app_repo.get("project_id") == pid, f"{sorted(repos)} {app_repo}")
        c.check("app artifact_count counts the 3 images (the signature and SBOM may be counted too)",
                isinstance(app_repo.get("artifact_count"), int) and app_repo.get("artifact_count", 0) >= 3,
                f"artifact_count {app_repo.get('artifact_count')!r}")
    c.call("GET", "/projects/{project_name}/repositories", P, principal=admin, list_endpoint=True,
           query={"q": "name=~app"})
    c.call("GET", "/projects/{project_name}/repositories", P, principal=anon, expect=(401,))
    r = c.call("GET", REPO_T, dict(P, repository_name="app"), principal=admin)
    c.call("GET", REPO_T, dict(P, repository_name=f"no-such-{suffix}"), principal=admin, expect=404)
    # a slash in the name: encoded twice (Harbor's clients), and once
    r = c.call("GET", REPO_T, dict(P, repository_name="team%2Fsvc"), principal=admin)
    if got(r) is not None:
        c.check("team%252Fsvc (encoded twice) names <p>/team/svc", r.json.get("name") == f"{pname}/team/svc",
                f"{r.json}")
    r = c.call("GET", REPO_T, dict(P, repository_name="team%2Fsvc"), principal=admin, raw_params=("repository_name",),
               label=f"/projects/{pname}/repositories/team%2Fsvc (encoded once)")
    if got(r) is not None:
        c.check("team%2Fsvc (encoded once) names <p>/team/svc too", r.json.get("name") == f"{pname}/team/svc",
                f"{r.json}")
    c.call("GET", ART_T + "/tags", dict(P, repository_name="team%2Fsvc", reference="1.0"), principal=admin,
           list_endpoint=True)
    c.call("PUT", REPO_T, dict(P, repository_name="app"), principal=admin,
           body={"description": "described by check_artifacts"})
    r = c.call("GET", REPO_T, dict(P, repository_name="app"), principal=admin)
    if got(r) is not None:
        c.check("PUT repository description sticks", r.json.get("description") == "described by check_artifacts",
                f"description {r.json.get('description')!r}")

    # ---- artifacts
    A = dict(P, repository_name="app")
    r = c.call("GET", REPO_T + "/artifacts", A, principal=admin, list_endpoint=True,
               query={"with_tag": "true", "with_label": "true", "with_accessory": "true", "page_size": 100})
    listed = got(r, list)
    digests = [a.get("digest") for a in listed or [] if isinstance(a, dict)]
    if listed is not None:
        c.check("artifact list holds v1, v2, v3", all(x["digest"] in digests for x in (v1, v2, v3)), f"{digests}")
        order = [d for d in digests if d in (v1["digest"], v2["digest"], v3["digest"])]
        c.check("artifact list is newest push first by default (v3, v2, v1)",
                order == [v3["digest"], v2["digest"], v1["digest"]], f"{order}")
        if pushed["sig"]["digest"] in digests or pushed["sbom"]["digest"] in digests:
            c.note("artifact list", "lists accessories (signature/SBOM) as artifacts; Harbor's UI nests them "
                                    "under their subject")

    r = c.call("GET", ART_T, dict(A, reference="v1"), principal=admin,
               query={"with_tag": "True", "with_label": "True", "with_accessory": "True", "with_signature": "True",
                      "with_immutable_status": "True", "with_scan_overview": "True"})
    body = got(r)
    art = body or {}
    links = {}
    if body is not None:
        ea = art.get("extra_attrs") or {}
        c.check("v1: type IMAGE", art.get("type") == "IMAGE", f"type {art.get('type')!r}")
        c.check("v1: media_type is the config's, manifest_media_type the manifest's (as Harbor)",
                art.get("media_type") == OCI_CONFIG and art.get("manifest_media_type") == OCI_MANIFEST,
                f"media_type {art.get('media_type')!r}, manifest_media_type {art.get('manifest_media_type')!r}")
        c.check("v1: digest", art.get("digest") == v1["digest"], f"{art.get('digest')!r}")
        c.check("v1: size is manifest + config + layers (as Harbor)", art.get("size") == v1["size"],
                f"size {art.get('size')!r}, expected {v1['size']}")
        c.check("v1: extra_attrs architecture/os/author/created from the config",
                ea.get("architecture") == "amd64" and ea.get("os") == "linux"
                and ea.get("author") == v1["config"]["author"]
                and isinstance(ea.get("created"), str) and ea.get("created", "").startswith("2024-01-02T03:04:05"),
                f"extra_attrs {json.dumps(ea)[:200]}")
        c.check("v1: annotations are the manifest's", (art.get("annotations") or {}) == v1["annotations"],
                f"annotations {art.get('annotations')!r}")
        c.check("v1: tags hold v1", "v1" in [t.get("name") for t in art.get("tags") or []], f"{art.get('tags')!r}")
        c.check("v1: repository_name is <project>/app", art.get("repository_name") in (None, f"{pname}/app"),
                f"{art.get('repository_name')!r}")
        links = art.get("addition_links") or {}
        c.check("v1: addition_links has build_history", "build_history" in links, f"{links}")
        acc = by_key(art.get("accessories"), "digest")
        sig_acc = acc.get(pushed["sig"]["digest"]) or {}
        sbom_acc = acc.get(pushed["sbom"]["digest"]) or {}
        c.check("v1 with_accessory: the cosign signature is a signature.cosign accessory",
                sig_acc.get("type") == "signature.cosign", f"accessories {art.get('accessories')!r}")
        c.check("v1 with_accessory: the SBOM referrer is a subject.accessory accessory",
                sbom_acc.get("type") == "subject.accessory", f"accessories {art.get('accessories')!r}")
        c.check("v1 accessories: subject_artifact_id is v1's id",
                all(a.get("subject_artifact_id") in (None, art.get("id")) for a in (sig_acc, sbom_acc)),
                f"{sig_acc.get('subject_artifact_id')!r}, {sbom_acc.get('subject_artifact_id')!r} vs {art.get('id')!r}")
        for t in art.get("tags") or []:
            if t.get("name") == "v1":
                c.check("v1 tag: artifact_id and repository_id point back",
                        t.get("artifact_id") == art.get("id") and t.get("repository_id") == art.get("repository_id"),
                        f"{t}")
    r = c.call("GET", ART_T, dict(A, reference=v1["digest"]), principal=admin)
    if got(r) is not None and body is not None:
        c.check("v1 by digest (sha256%3A…) is the same artifact", r.json.get("id") == art.get("id"),
                f"id {r.json.get('id')!r} vs {art.get('id')!r}")
    r = c.call("GET", ART_T, dict(A, reference="v2"), principal=admin)
    a2 = got(r)
    if a2 is not None:
        c.check("v2 (Docker schema 2): type IMAGE, media types as pushed",
                a2.get("type") == "IMAGE" and a2.get("media_type") == DOCKER_CONFIG
                and a2.get("manifest_media_type") == DOCKER_MANIFEST,
                f"{a2.get('type')!r} {a2.get('media_type')!r} {a2.get('manifest_media_type')!r}")
        c.check("v2: extra_attrs author", (a2.get("extra_attrs") or {}).get("author") == "Check Two",
                f"{a2.get('extra_attrs')!r}")
    c.call("GET", ART_T, dict(A, reference="no-such-tag"), principal=admin, expect=404)
    c.call("GET", ART_T, dict(A, reference="sha256:" + "0" * 64), principal=admin, expect=404)

    # accessories
    r = c.call("GET", ART_T + "/accessories", dict(A, reference="v1"), principal=admin, list_endpoint=True)
    if got(r, list) is not None:
        acc = by_key(r.json, "digest")
        c.check("accessories of v1: signature.cosign and subject.accessory",
                (acc.get(pushed["sig"]["digest"]) or {}).get("type") == "signature.cosign"
                and (acc.get(pushed["sbom"]["digest"]) or {}).get("type") == "subject.accessory", f"{r.json}")
    r = c.call("GET", ART_T + "/accessories", dict(A, reference="v1"), principal=admin, list_endpoint=True,
               query={"q": "type=signature.cosign"})
    if got(r, list) is not None:
        c.check("accessories q=type=signature.cosign keeps only the signature",
                [a.get("type") for a in r.json] == ["signature.cosign"], f"{[a.get('type') for a in r.json]}")
    r = c.call("GET", ART_T + "/accessories", dict(A, reference="v2"), principal=admin, list_endpoint=True)
    if got(r, list) is not None:
        c.check("accessories of v2: none", r.json == [], f"{r.json}")

    # index
    M = dict(P, repository_name="multi")
    idx = pushed["index"]
    r = c.call("GET", ART_T, dict(M, reference="latest"), principal=admin)
    ia = got(r)
    if ia is not None:
        refs = by_key(ia.get("references"), "child_digest")
        c.check("index: type IMAGE, media_type and manifest_media_type the index's (as Harbor)",
                ia.get("type") == "IMAGE" and ia.get("media_type") == OCI_INDEX
                and ia.get("manifest_media_type") == OCI_INDEX,
                f"{ia.get('type')!r} {ia.get('media_type')!r} {ia.get('manifest_media_type')!r}")
        c.check("index: references are its two children",
                sorted(refs) == sorted(ch["digest"] for ch in idx["children"]), f"{ia.get('references')!r}")
        for ch in idx["children"]:
            ref = refs.get(ch["digest"]) or {}
            plat = ref.get("platform") or {}
            c.check(f"index: reference {ch['arch']} has platform linux/{ch['arch']}",
                    plat.get("architecture") == ch["arch"] and plat.get("os") == "linux", f"{ref}")
            c.check(f"index: reference {ch['arch']} parent_id is the index's id",
                    ref.get("parent_id") in (None, ia.get("id")), f"{ref.get('parent_id')!r} vs {ia.get('id')!r}")
        c.check("index: size is the index + its children (as Harbor)", ia.get("size") == idx["size"],
                f"size {ia.get('size')!r}, expected {idx['size']}")
    r = c.call("GET", ART_T, dict(M, reference=idx["children"][1]["digest"]), principal=admin)
    if got(r) is not None:
        c.check("index child by digest: extra_attrs architecture arm64",
                (r.json.get("extra_attrs") or {}).get("architecture") == "arm64", f"{r.json.get('extra_attrs')!r}")
    r = c.call("GET", REPO_T + "/artifacts", M, principal=admin, list_endpoint=True)
    if got(r, list) is not None:
        listed_digests = [a.get("digest") for a in r.json]
        c.check("multi artifacts: the index is listed", idx["digest"] in listed_digests, f"{listed_digests}")
        if any(ch["digest"] in listed_digests for ch in idx["children"]):
            c.note("GET multi/artifacts", "lists the untagged index children on their own; Harbor lists "
                                          "only the index (children appear in its references)")

    # chart
    C = dict(P, repository_name="chart")
    r = c.call("GET", ART_T, dict(C, reference="0.1.0"), principal=admin)
    cha = got(r)
    clinks = {}
    if cha is not None:
        c.check("chart: type CHART, media_type the Helm config's", cha.get("type") == "CHART"
                and cha.get("media_type") == HELM_CONFIG, f"{cha.get('type')!r} {cha.get('media_type')!r}")
        clinks = cha.get("addition_links") or {}
        c.check("chart: addition_links values.yaml, readme.md, dependencies",
                all(k in clinks for k in ("values.yaml", "readme.md", "dependencies")), f"{sorted(clinks)}")
    for name, link in {**links, **clinks}.items():
        c.check(f"addition_links.{name}: href under /api/v2.0, absolute false",
                isinstance(link, dict) and str(link.get("href", "")).startswith("/api/v2.0/projects/")
                and link.get("absolute") is False, f"{link}")

    # additions
    add_t = ART_T + "/additions/{addition}"
    r = c.call("GET", add_t, dict(A, reference="v1", addition="build_history"), principal=admin, validate=False)
    if r is not None and r.status == 200:
        ctype = r.headers.get("Content-Type", "")
        c.check("build_history: application/json", ctype.startswith("application/json"), ctype)
        hist = r.json
        c.check("build_history: the config's history, in order",
                isinstance(hist, list) and [h.get("created_by") for h in hist if isinstance(h, dict)]
                == [h["created_by"] for h in v1["config"]["history"]], f"{str(hist)[:200]}")
    for addition, want, ctype_want in (("values.yaml", VALUES_YAML, "text/plain"),
                                       ("readme.md", README_MD, "text/markdown")):
        r = c.call("GET", add_t, dict(C, reference="0.1.0", addition=addition), principal=admin, validate=False)
        if r is not None and r.status == 200:
            ctype = r.headers.get("Content-Type", "")
            c.check(f"{addition}: {ctype_want} (as Harbor)", ctype.startswith(ctype_want), ctype)
            c.check(f"{addition}: the chart's file", r.body == want, f"{r.body[:120]!r}")
    r = c.call("GET", add_t, dict(C, reference="0.1.0", addition="dependencies"), principal=admin, validate=False)
    if r is not None and r.status == 200:
        deps = r.json
        c.check("dependencies: JSON list with redis 17.3.7",
                isinstance(deps, list) and any(isinstance(d, dict) and d.get("name") == "redis"
                                               and d.get("version") == "17.3.7" for d in deps), f"{deps!r}")
    c.call("GET", add_t, dict(A, reference="v1", addition="values.yaml"), principal=admin, expect=(400, 404),
           validate=False)
    c.call("GET", add_t, dict(A, reference="v1", addition="no-such-addition"), principal=admin, expect=(400, 404),
           validate=False)

    # every addition link leads to its addition (a nested repository's too)
    r = c.call("GET", ART_T, dict(P, repository_name="team%2Fsvc", reference="1.0"), principal=admin)
    nested_links = (got(r) or {}).get("addition_links") or {}
    followed = [(f"v1 {k}", v) for k, v in links.items()] + [(f"chart {k}", v) for k, v in clinks.items()] \
        + [(f"team/svc {k}", v) for k, v in nested_links.items()]
    for name, link in followed:
        href = link.get("href") if isinstance(link, dict) else None
        if isinstance(href, str) and href.startswith("/"):
            resp = http("GET", c.url + href, {"Authorization": admin.header()})
            c.check(f"addition_links ({name}): the href answers 200", resp.status == 200, f"{href} -> {resp.status}")

    # tags
    T = dict(A, reference="v1")
    c.call("POST", ART_T + "/tags", T, principal=admin, body={"name": "v1-extra"}, expect=201)
    c.call("POST", ART_T + "/tags", T, principal=admin, body={"name": "v1-extra"}, expect=409)
    c.call("POST", ART_T + "/tags", T, principal=admin, body={"name": "not a tag!"}, expect=400)
    r = c.call("GET", ART_T + "/tags", T, principal=admin, list_endpoint=True)
    if got(r, list) is not None:
        names = [t.get("name") for t in r.json]
        c.check("tags of v1: v1 and v1-extra", sorted(names) == ["v1", "v1-extra"], f"{names}")
    r = c.call("GET", ART_T + "/tags", T, principal=admin, list_endpoint=True, query={"q": "name=~extra"})
    if got(r, list) is not None:
        c.check("tags q=name=~extra: v1-extra only", [t.get("name") for t in r.json] == ["v1-extra"],
                f"{[t.get('name') for t in r.json]}")
    r = c.call("GET", ART_T, dict(A, reference="v1-extra"), principal=admin)
    if got(r) is not None:
        c.check("v1-extra names v1", r.json.get("digest") == v1["digest"], f"{r.json.get('digest')!r}")
    c.call("DELETE", ART_T + "/tags/{tag_name}", dict(T, tag_name="v1-extra"), principal=admin)
    c.call("DELETE", ART_T + "/tags/{tag_name}", dict(T, tag_name="v1-extra"), principal=admin, expect=404)
    r = c.call("GET", ART_T + "/tags", T, principal=admin, list_endpoint=True)
    if got(r, list) is not None:
        names = [t.get("name") for t in r.json]
        c.check("tags of v1 after the delete: v1", names == ["v1"], f"{names}")
    c.call("GET", ART_T, dict(A, reference="v1-extra"), principal=admin, expect=404)

    # labels
    lname = f"check-{suffix}"
    r = c.call("POST", "/labels", principal=admin, expect=201,
               body={"name": lname, "color": "#61717D", "description": "global", "scope": "g"})
    gid = id_from_location(r)
    c.call("POST", "/labels", principal=admin, expect=409,
           body={"name": lname, "color": "#61717D", "scope": "g"})
    r = c.call("POST", "/labels", principal=admin, expect=201,
               body={"name": lname + "-p", "color": "#FF0000", "description": "project", "scope": "p",
                     "project_id": pid})
    plid = id_from_location(r)
    r = c.call("GET", "/labels", principal=admin, list_endpoint=True, query={"scope": "g", "name": lname})
    if got(r, list) is not None and gid is not None:
        c.check("GET /labels?scope=g&name= finds the global label, not the project's",
                [x.get("id") for x in r.json] == [gid], f"{r.json}")
    r = c.call("GET", "/labels", principal=admin, list_endpoint=True, query={"scope": "p", "project_id": pid})
    if got(r, list) is not None and plid is not None:
        c.check("GET /labels?scope=p&project_id= finds the project label only",
                [x.get("id") for x in r.json] == [plid], f"{r.json}")
    c.call("GET", "/labels", principal=admin, query={"scope": "x"}, expect=400)
    if gid is None or plid is None:
        c.fail("POST /labels", "no label id in Location; label checks skipped")
    else:
        r = c.call("GET", "/labels/{label_id}", {"label_id": gid}, principal=admin)
        lab = got(r)
        if lab is not None:
            c.check("label: name, color, scope g", lab.get("name") == lname and lab.get("color") == "#61717D"
                    and lab.get("scope") == "g", f"{lab}")
        c.call("PUT", "/labels/{label_id}", {"label_id": gid}, principal=admin,
               body=dict(lab or {"name": lname, "color": "#61717D", "scope": "g"}, description="global, updated"))
        r = c.call("GET", "/labels/{label_id}", {"label_id": gid}, principal=admin)
        if got(r) is not None:
            c.check("PUT label sticks", r.json.get("description") == "global, updated", f"{r.json}")
        c.call("POST", ART_T + "/labels", T, principal=admin, body={"id": gid})
        c.call("POST", ART_T + "/labels", T, principal=admin, body={"id": gid}, expect=409)
        c.call("POST", ART_T + "/labels", T, principal=admin, body={"id": plid})
        c.call("POST", ART_T + "/labels", T, principal=admin, body={"id": 987654321}, expect=404)
        r = c.call("GET", ART_T, T, principal=admin, query={"with_label": "true"})
        if got(r) is not None:
            labs = [x.get("id") for x in r.json.get("labels") or []]
            c.check("v1 with_label: both labels", sorted(labs) == sorted([gid, plid]), f"{labs}")
        r = c.call("GET", REPO_T + "/artifacts", A, principal=admin, list_endpoint=True,
                   query={"with_label": "true", "q": f"labels=({gid})"})
        if got(r, list) is not None:
            c.check("artifacts q=labels=(id): only v1", [a.get("digest") for a in r.json] == [v1["digest"]],
                    f"{[a.get('digest') for a in r.json]}")
        c.call("DELETE", ART_T + "/labels/{label_id}", dict(T, label_id=gid), principal=admin)
        c.call("DELETE", ART_T + "/labels/{label_id}", dict(T, label_id=gid), principal=admin, expect=404)
        r = c.call("GET", ART_T, T, principal=admin, query={"with_label": "true"})
        if got(r) is not None:
            labs = [x.get("id") for x in r.json.get("labels") or []]
            c.check("v1 with_label after detaching the global label: the project label", labs == [plid], f"{labs}")

    # paging across page boundaries
    for size in (1, 2):
        items = walk_pages(c, REPO_T + "/artifacts", A, admin, size, label="app artifacts")
        if items is not None:
            ds = [a.get("digest") for a in items]
            c.check(f"app artifacts size {size}: the pages hold the whole list once, in order",
                    ds == digests and len(set(ds)) == len(ds), f"{ds} vs {digests}")
        items = walk_pages(c, "/projects/{project_name}/repositories", P, admin, size, label="repositories")
        if items is not None:
            ns = sorted(x.get("name") for x in items)
            c.check(f"repositories size {size}: every repository once", ns == sorted(repos), f"{ns}")
    r = c.call("GET", REPO_T + "/artifacts", A, principal=admin, list_endpoint=True,
               query={"page": 2, "page_size": 1})
    if got(r, list) is not None and listed is not None:
        lk = parse_link(r.headers.get("Link"))
        c.check("page=2&page_size=1: Link has next and prev", "next" in lk and "prev" in lk, f"{r.headers.get('Link')!r}")
        c.check("page=2&page_size=1: the second artifact", [a.get("digest") for a in r.json] == digests[1:2])
    r = c.call("GET", REPO_T + "/artifacts", A, principal=admin, list_endpoint=True,
               query={"page": 1000, "page_size": 10})
    if got(r, list) is not None:
        c.check("a page past the end is an empty list", r.json == [], f"{r.json}")

    # bad parameters: 400 with Harbor's error body
    for q, what in (({"q": "tags=(((("}, "bad q"), ({"q": "no equals sign"}, "q without k=v"),
                    ({"page_size": 0}, "page_size=0"), ({"page_size": 1000}, "page_size=1000"),
                    ({"page_size": "ten"}, "page_size=ten"), ({"page": "-1"}, "page=-1"),
                    ({"sort": "bogus"}, "sort=bogus"), ({"with_tag": "maybe"}, "with_tag=maybe")):
        for tmpl, prm in ((REPO_T + "/artifacts", A), ("/repositories", {}),
                          ("/projects/{project_name}/repositories", P)):
            if what == "with_tag=maybe" and not tmpl.endswith("/artifacts"):
                continue
            r = c.call("GET", tmpl, prm, principal=admin, query=q, expect=400,
                       label=f"{tmpl.replace('{project_name}', pname).replace('{repository_name}', 'app')} ({what})")
            if r is not None and r.status == 400:
                codes = [e.get("code") for e in ((r.json or {}).get("errors") or [])] if isinstance(r.json, dict) else []
                where = {"/repositories": "all repositories"}.get(tmpl, tmpl.rsplit("/", 1)[-1])
                c.check(f"{what} on {where}: errors[0].code BAD_REQUEST", codes[:1] == ["BAD_REQUEST"],
                        f"{r.body[:160]!r}")

    # sort and q on artifacts
    r = c.call("GET", REPO_T + "/artifacts", A, principal=admin, list_endpoint=True, query={"sort": "push_time"})
    if got(r, list) is not None:
        order = [a.get("digest") for a in r.json if a.get("digest") in (v1["digest"], v2["digest"], v3["digest"])]
        c.check("sort=push_time: oldest first (v1, v2, v3)", order == [v1["digest"], v2["digest"], v3["digest"]],
                f"{order}")
    r = c.call("GET", REPO_T + "/artifacts", A, principal=admin, list_endpoint=True, query={"q": "tags=v2"})
    if got(r, list) is not None:
        c.check("q=tags=v2: only v2", [a.get("digest") for a in r.json] == [v2["digest"]],
                f"{[a.get('digest') for a in r.json]}")
    r = c.call("GET", REPO_T + "/artifacts", A, principal=admin, list_endpoint=True, query={"q": "tags=nil"})
    if got(r, list) is not None:
        c.check("q=tags=nil: untagged only (the SBOM referrer, if listed)",
                all(not a.get("tags") for a in r.json) and v1["digest"] not in [a.get("digest") for a in r.json],
                f"{[a.get('digest') for a in r.json]}")
    r = c.call("GET", REPO_T + "/artifacts", A, principal=admin, list_endpoint=True, query={"q": "tags=*"})
    if got(r, list) is not None:
        c.check("q=tags=*: tagged only", all(a.get("tags") for a in r.json) and len(r.json) >= 3,
                f"{[a.get('digest') for a in r.json]}")
    r = c.call("GET", REPO_T + "/artifacts", A, principal=admin, list_endpoint=True,
               query={"q": f"digest={v3['digest']}"})
    if got(r, list) is not None:
        c.check("q=digest=: only that artifact", [a.get("digest") for a in r.json] == [v3["digest"]])
    r = c.call("GET", REPO_T + "/artifacts", A, principal=admin, list_endpoint=True,
               query={"q": f"media_type={DOCKER_CONFIG}"})
    if got(r, list) is not None:
        c.check("q=media_type=<docker config>: only v2", [a.get("digest") for a in r.json] == [v2["digest"]])
    r = c.call("GET", REPO_T + "/artifacts", A, principal=admin, list_endpoint=True,
               query={"with_tag": "false", "page_size": 100})
    if got(r, list) is not None:
        c.check("with_tag=false: no tags in the answer", all(not a.get("tags") for a in r.json))

    # copy
    CP = {"project_name": p2name, "repository_name": "app-copy"}
    r = c.call("POST", REPO_T + "/artifacts", CP, principal=admin, query={"from": f"{pname}/app:v1"}, expect=201)
    if r is not None and r.status == 201:
        c.check("copy: Location names the copy",
                v1["digest"] in urllib.parse.unquote(r.headers.get("Location", "")), r.headers.get("Location", ""))
    r = c.call("GET", ART_T, dict(CP, reference=v1["digest"]), principal=admin)
    if got(r) is not None:
        c.check("the copy is the same content (type, size)", r.json.get("type") == "IMAGE"
                and r.json.get("size") == v1["size"], f"{r.json.get('type')!r} {r.json.get('size')!r}")
    c.call("POST", REPO_T + "/artifacts", CP, principal=admin,
           query={"from": f"{pname}/multi@{idx['digest']}"}, expect=201)
    r = c.call("GET", ART_T, dict(CP, reference=idx["digest"]), principal=admin)
    if got(r) is not None:
        c.check("the copied index keeps its references", len(r.json.get("references") or []) == 2,
                f"{r.json.get('references')!r}")
    c.call("POST", REPO_T + "/artifacts", CP, principal=admin, query={"from": f"{pname}/app:no-such-tag"}, expect=404)
    c.call("POST", REPO_T + "/artifacts", CP, principal=admin, query={"from": "not a reference"}, expect=400)
    c.call("POST", REPO_T + "/artifacts", CP, principal=anon, query={"from": f"{pname}/app:v1"}, expect=401)

    # search, statistics, health, summary
    r = c.call("GET", "/search", principal=admin, query={"q": pname})
    if got(r) is not None:
        pnames = [p.get("name") for p in r.json.get("project") or []]
        rnames = [x.get("repository_name") for x in r.json.get("repository") or []]
        c.check("search: finds the project", pname in pnames, f"{pnames}")
        c.check("search: finds <p>/app by full name", f"{pname}/app" in rnames, f"{rnames}")
        hit = next((x for x in r.json.get("repository") or [] if x.get("repository_name") == f"{pname}/app"), {})
        c.check("search: repository project_id/project_name/project_public",
                hit.get("project_id") == pid and hit.get("project_name") == pname and hit.get("project_public") is False,
                f"{hit}")
    r = c.call("GET", "/search", principal=anon, query={"q": pname})
    if got(r) is not None:
        c.check("search as anonymous: the private project stays hidden",
                not (r.json.get("project") or []) and not any(
                    str(x.get("repository_name", "")).startswith(pname + "/") for x in r.json.get("repository") or []),
                f"{r.json}")
    r = c.call("GET", "/statistics", principal=admin)
    if got(r) is not None:
        s = r.json
        c.check("statistics: totals add up and count our repositories",
                s.get("total_project_count") == (s.get("private_project_count", 0) + s.get("public_project_count", 0))
                and s.get("total_repo_count") == (s.get("private_repo_count", 0) + s.get("public_repo_count", 0))
                and s.get("private_repo_count", 0) >= 4, f"{s}")
    c.call("GET", "/statistics", principal=anon, expect=(200, 401))
    r = c.call("GET", "/health", principal=anon)
    if got(r) is not None:
        comps = r.json.get("components") or []
        c.check("health: status healthy, every component named with a status",
                r.json.get("status") == "healthy" and comps and all(x.get("name") and x.get("status") for x in comps),
                f"{r.json}")
    r = c.call("GET", "/projects/{project_name_or_id}/summary", {"project_name_or_id": pname}, principal=admin,
               headers={"X-Is-Resource-Name": "true"})
    if got(r) is not None:
        c.check("summary: repo_count 4, one project admin", r.json.get("repo_count") == 4
                and r.json.get("project_admin_count", 0) >= 1, f"{r.json}")
    c.call("GET", "/projects/{project_name_or_id}/summary", {"project_name_or_id": pid}, principal=admin)
    c.call("GET", "/projects/{project_name_or_id}/summary", {"project_name_or_id": f"no-such-{suffix}"},
           principal=admin, expect=404)

    # deletes
    c.call("DELETE", ART_T, dict(A, reference="v3"), principal=admin)
    c.call("GET", ART_T, dict(A, reference="v3"), principal=admin, expect=404)
    c.call("GET", ART_T, dict(A, reference=v3["digest"]), principal=admin, expect=404)
    c.call("DELETE", ART_T, dict(A, reference="v3"), principal=admin, expect=404)
    c.call("DELETE", ART_T, dict(A, reference="v2"), principal=anon, expect=401)
    c.call("DELETE", REPO_T, C, principal=admin)
    c.call("GET", REPO_T, C, principal=admin, expect=404)
    c.call("GET", ART_T, dict(C, reference="0.1.0"), principal=admin, expect=404)
    r = c.call("GET", "/projects/{project_name}/repositories", P, principal=admin, list_endpoint=True)
    if got(r, list) is not None:
        c.check("the deleted repository is no longer listed",
                f"{pname}/chart" not in [x.get("name") for x in r.json])
    r = c.call("GET", "/projects/{project_name_or_id}", {"project_name_or_id": pname}, principal=admin,
               headers={"X-Is-Resource-Name": "true"})
    if got(r) is not None:
        c.check("project repo_count follows (3 after deleting chart)", r.json.get("repo_count") == 3,
                f"repo_count {r.json.get('repo_count')!r}")

    # clean-up: labels, repositories, projects
    for lid in (gid, plid):
        if lid is not None:
            c.call("DELETE", "/labels/{label_id}", {"label_id": lid}, principal=admin)
    if gid is not None:
        c.call("GET", "/labels/{label_id}", {"label_id": gid}, principal=admin, expect=404)
    c.call("DELETE", "/projects/{project_name_or_id}", {"project_name_or_id": pname}, principal=admin,
           expect=412, label=f"/projects/{pname} (still holds repositories)")
    for rn in ("app", "multi", "team%2Fsvc"):
        c.call("DELETE", REPO_T, dict(P, repository_name=rn), principal=admin)
    c.call("DELETE", REPO_T, CP, principal=admin)
    for p in (pname, p2name):
        c.call("DELETE", "/projects/{project_name_or_id}", {"project_name_or_id": p}, principal=admin)
    return c


# ------------------------------------------------------------ self-test ----


def self_test(doc):
    failures = 0

    def check(ok, label, detail=""):
        nonlocal failures
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {label}" + (f": {detail}" if detail else ""))

    gz, diff_id = tar_gz({"a/b.txt": b"hello"})
    gz2, diff_id2 = tar_gz({"a/b.txt": b"hello"})
    check(gz == gz2 and diff_id == diff_id2, "tar_gz is deterministic")
    with tarfile.open(fileobj=io.BytesIO(gz), mode="r:gz") as t:
        check(t.getnames() == ["a/b.txt"] and t.extractfile("a/b.txt").read() == b"hello", "tar_gz round-trips")
    check(sha256(b"{}") == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
          "sha256 of the OCI empty descriptor")
    check(parse_challenge('Bearer realm="http://h/service/token",service="harbor-registry"')
          == {"realm": "http://h/service/token", "service": "harbor-registry"}, "challenge parses")
    check(parse_challenge('Basic realm="x"') is None, "a Basic challenge is not a Bearer one")
    lk = parse_link('</api/v2.0/repositories?page=1&page_size=1>; rel="prev", '
                    '</api/v2.0/repositories?page=3&page_size=1&cursor=abc>; rel="next"')
    check(lk == {"prev": "/api/v2.0/repositories?page=1&page_size=1",
                 "next": "/api/v2.0/repositories?page=3&page_size=1&cursor=abc"}, "Link parses", str(lk))
    check(parse_link(None) == {}, "no Link, no pages")
    patch_harbor_errata(doc, out=io.StringIO())
    v = doc.definition_validator("Artifact")
    art = {"id": 1, "type": "IMAGE", "digest": "sha256:" + "a" * 64, "size": 10,
           "push_time": "2024-01-02T03:04:05Z", "pull_time": "0001-01-01T00:00:00.000Z",
           "extra_attrs": {"architecture": "amd64", "os": "linux", "author": "", "created": "2024-01-02T03:04:05Z",
                           "config": {"Cmd": ["/x"]}},
           "references": [{"child_digest": "sha256:" + "b" * 64, "platform": {"architecture": "arm64", "os": "linux"}}],
           "tags": [{"id": 1, "name": "v1", "immutable": False, "push_time": "2024-01-02T03:04:05Z"}],
           "addition_links": {"build_history": {"href": "/api/v2.0/x", "absolute": False}},
           "accessories": [{"id": 2, "type": "signature.cosign", "digest": "sha256:" + "c" * 64}]}
    err = ci.first_error(v, art)
    check(err is None, "Artifact (patched) accepts a Harbor-shaped answer", err or "")
    for bad, want in ((dict(art, tags=None), "$.tags"), (dict(art, pull_time=""), "$.pull_time"),
                      (dict(art, size="10"), "$.size"), (dict(art, annotations={"a": 1}), "$.annotations.a"),
                      (dict(art, addition_links={"x": {"href": 1}}), "$.addition_links.x.href")):
        err = ci.first_error(v, bad)
        check(err is not None and err.startswith(want), f"Artifact rejects {want}", err or "accepted")
    err = ci.first_error(doc.definition_validator("Accessory"), {"type": "signature.cosign", "size": "1"})
    check(err is not None and "$.size" in err, "Accessory rejects a string size", err or "accepted")
    err = ci.first_error(doc.definition_validator("Search"), {"project": [], "repository": [
        {"project_id": 1, "project_name": "p", "project_public": "false", "repository_name": "p/r"}]})
    check(err is not None and "project_public" in err, "Search rejects a string project_public", err or "accepted")
    err = ci.first_error(doc.definition_validator("Statistic"), {"total_repo_count": 1.5})
    check(err is not None, "Statistic rejects a fractional count", err or "accepted")
    print(f"\nself-test: {failures} failed")
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="Berth's base URL, http://127.0.0.1:PORT")
    ap.add_argument("--password", help="the password of the user `admin`")
    ap.add_argument("--swagger", required=True, help="Harbor's swagger.yaml (../shared/reference/…)")
    ap.add_argument("--self-test", action="store_true", help="check the checker offline, no server")
    args = ap.parse_args()
    try:
        doc = ci.Definition(args.swagger)
    except (OSError, ValueError, ci.yaml.YAMLError) as e:
        print(f"cannot load the API definition: {e}", file=sys.stderr)
        return 2
    if args.self_test:
        return 1 if self_test(doc) else 0
    if not args.url or args.password is None:
        ap.error("--url and --password are required (or --self-test)")
    patch_harbor_errata(doc)
    checker = run_live(doc, args.url, args.password)
    failed = checker.report()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
