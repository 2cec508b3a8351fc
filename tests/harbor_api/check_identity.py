#!/usr/bin/env python3
"""Checks Berth's identity API (`/api/v2.0`: users, projects, members, robots,
audit logs) against Harbor's own API definition, read at run time.

    check_identity.py --url http://127.0.0.1:PORT --password ADMIN_PASSWORD \
        --swagger ../shared/reference/harbor-api-v2.0.swagger.yaml
    check_identity.py --self-test --swagger ...   (no server: checks the checker)

Every call is made with urllib, as the admin (HTTP Basic, user `admin`) or as
a user or robot account this script creates. Each answer is looked up in the
definition by path template + method + status (or `default`), and its JSON
body is validated against that response's schema (Draft 4 semantics, `$ref`s
resolved inside the swagger document; `x-nullable`/`x-omitempty` are
ignored, so `null` is only accepted where the definition says so;
`format` is not enforced except `date-time`, which must be RFC 3339). Lists
must send `X-Total-Count`, creations `Location`. Calls also check the status
Harbor answers with. All failures are collected; a table
`METHOD path [principal] status -> ok | <first error>` is printed and the exit
status is 1 if anything failed (2 if the check could not run at all).

Dependencies: PyYAML and jsonschema (tests/install-deps installs them).
"""

import argparse
import base64
import datetime
import json
import re
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request

import jsonschema
import referencing
import referencing.jsonschema
import yaml

BASE_PATH = "/api/v2.0"
SWAGGER_URI = "urn:berth-test:harbor-swagger"

# --------------------------------------------------------------- schema ----

RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-](\d{2}):(\d{2}))$"
)


def is_rfc3339(value):
    """RFC 3339 `date-time` (section 5.6), with real calendar/clock ranges."""
    if not isinstance(value, str):
        return True  # `type` reports non-strings
    m = RFC3339.match(value)
    if not m:
        return False
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    if hour > 23 or minute > 59 or second > 60:  # 60: leap second
        return False
    if m.group(9) is not None and (int(m.group(9)) > 23 or int(m.group(10)) > 59):
        return False
    return True


FORMATS = jsonschema.FormatChecker(formats=())
FORMATS.checks("date-time")(is_rfc3339)


class Definition:
    """Harbor's swagger: operations and a `$ref` resolver over the whole document."""

    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.doc = yaml.safe_load(f)
        if self.doc.get("swagger") != "2.0":
            raise ValueError(f"{path} is not a Swagger 2.0 document")
        if self.doc.get("basePath") != BASE_PATH:
            raise ValueError(f"{path}: basePath {self.doc.get('basePath')!r}, expected {BASE_PATH}")
        resource = referencing.jsonschema.DRAFT4.create_resource(self.doc)
        self.registry = referencing.Registry().with_resource(SWAGGER_URI, resource)

    def _pointer(self, *segments):
        escaped = [str(s).replace("~", "~0").replace("/", "~1") for s in segments]
        return "/" + "/".join(urllib.parse.quote(s, safe="~") for s in escaped)

    def _deref(self, node):
        """Follows a document-local `$ref` (`#/responses/404`, `#/parameters/…`)."""
        seen = 0
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                raise ValueError(f"unsupported $ref {ref!r}")
            node = self.doc
            for seg in ref[2:].split("/"):
                node = node[seg.replace("~1", "/").replace("~0", "~")]
            seen += 1
            if seen > 20:
                raise ValueError(f"$ref loop at {ref!r}")
        return node

    def operation(self, method, template):
        item = self.doc["paths"].get(template)
        if item is None:
            raise KeyError(f"the definition has no path {template}")
        op = item.get(method.lower())
        if op is None:
            raise KeyError(f"the definition has no {method} {template}")
        return op

    def response(self, method, template, status):
        """(key, response object, JSON pointer of its schema or None) for a status,
        falling back to `default`; raises KeyError when neither is defined."""
        responses = self.operation(method, template)["responses"]
        key = str(status) if str(status) in responses else "default" if "default" in responses else None
        if key is None:
            raise KeyError(
                f"status {status} is not among the definition's responses "
                f"({', '.join(sorted(responses))})"
            )
        raw = responses[key]
        resp = self._deref(raw)
        if "schema" not in resp:
            return key, resp, None
        if "$ref" in raw:  # schema lives under the shared response
            ref = raw["$ref"][2:].split("/")
            segments = [s.replace("~1", "/").replace("~0", "~") for s in ref] + ["schema"]
        else:
            segments = ["paths", template, method.lower(), "responses", key, "schema"]
        return key, resp, self._pointer(*segments)

    def validator(self, pointer):
        schema = {"$ref": SWAGGER_URI + "#" + pointer}
        return jsonschema.Draft4Validator(schema, registry=self.registry, format_checker=FORMATS)

    def definition_validator(self, name):
        if name not in self.doc["definitions"]:
            raise KeyError(f"no definition {name}")
        return self.validator(self._pointer("definitions", name))

    def schema_at(self, pointer):
        return self.registry.resolver(SWAGGER_URI).lookup("#" + pointer).contents


def first_error(validator, instance):
    """The most relevant validation error as one line, or None."""
    errors = list(validator.iter_errors(instance))
    if not errors:
        return None
    best = jsonschema.exceptions.best_match(errors)
    where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in best.absolute_path)
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {best.message}{more}"


def unknown_fields(doc, pointer, instance, where="$"):
    """Fields the server sends that the definition does not have (informational)."""
    out = []
    resolver = doc.registry.resolver(SWAGGER_URI)
    schema = resolver.lookup("#" + pointer).contents if pointer else None

    def walk(schema, value, where, depth=0):
        if depth > 20 or not isinstance(schema, dict):
            return
        while "$ref" in schema:
            schema = resolver.lookup(schema["$ref"]).contents
        if isinstance(value, dict) and "properties" in schema:
            props = schema["properties"]
            for k, v in value.items():
                if k not in props:
                    if not isinstance(schema.get("additionalProperties"), dict):
                        out.append(f"{where}.{k}")
                else:
                    walk(props[k], v, f"{where}.{k}", depth + 1)
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            for i, v in enumerate(value[:3]):
                walk(schema["items"], v, f"{where}[{i}]", depth + 1)

    walk(schema, instance, where)
    return sorted(set(re.sub(r"\[\d+\]", "[]", p) for p in out))


# ----------------------------------------------------------------- HTTP ----


class Principal:
    def __init__(self, label, username=None, password=None):
        self.label = label
        self.username = username
        self.password = password

    def header(self):
        if self.username is None:
            return None
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


ANONYMOUS = Principal("anonymous")


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        self.json = None
        self.json_error = None
        ctype = headers.get("Content-Type", "")
        if body and ("json" in ctype or body[:1] in (b"{", b"[")):
            try:
                self.json = json.loads(body)
            except ValueError as e:
                self.json_error = str(e)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect, urllib.request.ProxyHandler({}))


def http(method, url, principal, body=None, raw=None, timeout=30):
    data = None
    headers = {"Accept": "application/json"}
    if raw is not None:
        data = raw
        headers["Content-Type"] = "application/json"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    auth = principal.header()
    if auth:
        headers["Authorization"] = auth
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with OPENER.open(req, timeout=timeout) as r:
            return Response(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, e.headers, e.read())


# ---------------------------------------------------------------- check ----


class Checker:
    def __init__(self, doc, url):
        self.doc = doc
        self.base = url.rstrip("/") + BASE_PATH
        self.rows = []  # (method, shown path, principal, status, [errors], [notes])

    def call(self, method, template, params=None, *, query=None, principal, body=None,
             raw=None, expect=(200,), list_endpoint=False):
        """One call: send, then check status, headers and body against the definition."""
        params = params or {}
        path = template
        for k, v in params.items():
            path = path.replace("{" + k + "}", urllib.parse.quote(str(v), safe=""))
        if "{" in path:
            raise ValueError(f"unfilled parameter in {path}")
        qs = ("?" + urllib.parse.urlencode(query, safe="=,")) if query else ""
        # Harbor's generated client sends `{}` on every DELETE and body-less PUT.
        if body is None and raw is None and method in ("DELETE", "PUT", "PATCH"):
            body = {}
        errors, notes = [], []
        try:
            resp = http(method, self.base + path + qs, principal, body=body, raw=raw)
        except OSError as e:
            self.rows.append((method, path + qs, principal.label, "---", [f"request failed: {e}"], []))
            return None
        expect = (expect,) if isinstance(expect, int) else tuple(expect)
        if resp.status not in expect:
            detail = resp.body[:160].decode("utf-8", "replace").strip()
            errors.append(f"expected status {'/'.join(map(str, expect))}" + (f"; body: {detail}" if detail else ""))
        try:
            key, declared, pointer = self.doc.response(method, template, resp.status)
        except KeyError as e:
            errors.append(str(e).strip("'\""))
            key, declared, pointer = None, {}, None
        headers = declared.get("headers") or {}
        if list_endpoint or "X-Total-Count" in headers:
            if resp.status == 200 and method == "GET":
                total = resp.headers.get("X-Total-Count")
                if total is None:
                    errors.append("no X-Total-Count header")
                elif not re.fullmatch(r"\d+", total.strip()):
                    errors.append(f"X-Total-Count is not an integer: {total!r}")
                elif isinstance(resp.json, list) and int(total) < len(resp.json):
                    errors.append(f"X-Total-Count {total} < {len(resp.json)} items sent")
        if "Location" in headers and resp.status == 201 and not resp.headers.get("Location"):
            errors.append("no Location header on 201")
        if method == "HEAD":
            pass
        elif pointer is not None:
            schema = self.doc.schema_at(pointer)
            if resp.json_error is not None:
                errors.append(f"body is not JSON ({resp.json_error})")
            elif resp.json is None and schema.get("type") == "string" and "$ref" not in schema:
                pass  # e.g. GET /ping: text/plain "Pong"
            elif resp.json is None:
                what = schema.get("$ref", schema.get("type", "schema")).rsplit("/", 1)[-1]
                errors.append(f"no JSON body, expected {what} "
                              f"(Content-Type {resp.headers.get('Content-Type')!r}, {len(resp.body)} bytes)")
            else:
                err = first_error(self.doc.validator(pointer), resp.json)
                if err:
                    errors.append(err)
                extra = unknown_fields(self.doc, pointer, resp.json)
                if extra:
                    notes.append("fields not in the definition: " + ", ".join(extra))
        elif resp.body.strip() and resp.status == 201:
            notes.append(f"201 with a body ({len(resp.body)} bytes); Harbor sends none")
        self.rows.append((method, path + qs, principal.label, resp.status, errors, notes))
        return resp

    def fail(self, what, message):
        self.rows.append(("CHECK", what, "-", "-", [message], []))

    def report(self, out=sys.stdout):
        width = min(max((len(f"{m} {p} [{who}]") for m, p, who, *_ in self.rows), default=0), 90)
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


def id_from_location(resp):
    """The trailing integer of a 201's Location (Harbor's only carrier of new ids)."""
    if resp is None:
        return None
    loc = resp.headers.get("Location") or ""
    m = re.search(r"/(\d+)/?$", loc)
    return int(m.group(1)) if m else None


def run_live(doc, url, password):
    c = Checker(doc, url)
    admin = Principal("admin", "admin", password)
    suffix = secrets.token_hex(4)
    uname = f"check-user-{suffix}"
    upass = "Check-Pass-1a"
    upass2 = "Check-Pass-2b"
    pname = f"check-project-{suffix}"

    # -- unauthenticated / system --
    r = c.call("GET", "/ping", principal=ANONYMOUS)
    if r is None:
        return c  # nothing answers: the table says so
    c.call("GET", "/systeminfo", principal=ANONYMOUS)
    c.call("GET", "/systeminfo", principal=admin)

    # -- users --
    c.call("GET", "/users/current", principal=admin)
    c.call("GET", "/users/current", principal=Principal("admin (bad password)", "admin", password + "-wrong"),
           expect=401)
    r = c.call("POST", "/users", principal=admin, expect=201, body={
        "username": uname, "email": f"{uname}@example.com", "realname": "Check User",
        "password": upass, "comment": "created by check_identity.py"})
    uid = id_from_location(r)
    c.call("POST", "/users", principal=admin, expect=409, body={
        "username": uname, "email": f"other-{uname}@example.com", "realname": "Dup",
        "password": upass})
    c.call("POST", "/users", principal=admin, expect=400, raw=b'{"username": ')
    r = c.call("GET", "/users", principal=admin, list_endpoint=True)
    if r is not None and isinstance(r.json, list):
        ids = [u.get("user_id") for u in r.json if isinstance(u, dict)]
        if 1 in ids:
            c.fail("GET /users", "lists the built-in admin (user_id 1); Harbor does not")
        if uid is None:
            uid = next((u.get("user_id") for u in r.json if isinstance(u, dict) and u.get("username") == uname), None)
    r = c.call("GET", "/users/search", query={"username": uname[:14]}, principal=admin, list_endpoint=True)
    if r is not None and isinstance(r.json, list) and not any(
            isinstance(u, dict) and u.get("username") == uname for u in r.json):
        c.fail("GET /users/search", f"{uname} not found by the prefix {uname[:14]!r}")
    if uid is None:
        c.fail("POST /users", "the new user's id could not be found (Location, GET /users); user calls skipped")
    else:
        c.call("GET", "/users/{user_id}", {"user_id": uid}, principal=admin)
        c.call("PUT", "/users/{user_id}", {"user_id": uid}, principal=admin, body={
            "email": f"new-{uname}@example.com", "realname": "Check User 2", "comment": "updated"})
        c.call("PUT", "/users/{user_id}/password", {"user_id": uid}, principal=admin,
               body={"old_password": "", "new_password": upass2})
        c.call("PUT", "/users/{user_id}/sysadmin", {"user_id": uid}, principal=admin, body={"sysadmin_flag": True})
        c.call("PUT", "/users/{user_id}/sysadmin", {"user_id": uid}, principal=admin, body={"sysadmin_flag": False})
    user = Principal(uname, uname, upass2)
    c.call("GET", "/users/current", principal=user)
    c.call("GET", "/users", principal=user, expect=403)
    if uid is not None:
        c.call("GET", "/users/{user_id}", {"user_id": uid}, principal=user)
    c.call("GET", "/users/{user_id}", {"user_id": 987654321}, principal=admin, expect=404)

    # -- projects --
    r = c.call("POST", "/projects", principal=admin, expect=201,
               body={"project_name": pname, "metadata": {"public": "false"}})
    pid = id_from_location(r)
    c.call("POST", "/projects", principal=admin, expect=409,
           body={"project_name": pname, "metadata": {"public": "false"}})
    c.call("POST", "/projects", principal=admin, expect=400, raw=b"{not json")
    c.call("POST", "/projects", principal=admin, expect=400, body={"project_name": "Not A Valid Name!"})
    c.call("HEAD", "/projects", query={"project_name": pname}, principal=admin)
    c.call("HEAD", "/projects", query={"project_name": f"no-such-{suffix}"}, principal=admin, expect=404)
    c.call("GET", "/projects", principal=admin, list_endpoint=True)
    r = c.call("GET", "/projects", query={"name": pname}, principal=admin, list_endpoint=True)
    if pid is None and r is not None and isinstance(r.json, list):
        pid = next((p.get("project_id") for p in r.json if isinstance(p, dict) and p.get("name") == pname), None)
    c.call("GET", "/projects/{project_name_or_id}", {"project_name_or_id": pname}, principal=admin)
    if pid is not None:
        c.call("GET", "/projects/{project_name_or_id}", {"project_name_or_id": pid}, principal=admin)
    else:
        c.fail("POST /projects", "the new project's id could not be found (Location, GET /projects?name=)")
    c.call("GET", "/projects/{project_name_or_id}", {"project_name_or_id": f"no-such-{suffix}"},
           principal=admin, expect=404)
    c.call("PUT", "/projects/{project_name_or_id}", {"project_name_or_id": pname}, principal=admin,
           body={"metadata": {"public": "true"}})
    r = c.call("GET", "/projects/{project_name_or_id}", {"project_name_or_id": pname}, principal=admin)
    if r is not None and isinstance(r.json, dict):
        public = (r.json.get("metadata") or {}).get("public")
        if public != "true":
            c.fail("PUT /projects/{p}", f"metadata.public is {public!r} after setting \"true\"")

    # -- members --
    mid = None
    r = c.call("POST", "/projects/{project_name_or_id}/members", {"project_name_or_id": pname},
               principal=admin, expect=201, body={"role_id": 2, "member_user": {"username": uname}})
    mid = id_from_location(r)
    c.call("POST", "/projects/{project_name_or_id}/members", {"project_name_or_id": pname},
           principal=admin, expect=409, body={"role_id": 2, "member_user": {"username": uname}})
    r = c.call("GET", "/projects/{project_name_or_id}/members", {"project_name_or_id": pname},
               principal=admin, list_endpoint=True)
    if mid is None and r is not None and isinstance(r.json, list):
        mid = next((m.get("id") for m in r.json if isinstance(m, dict) and m.get("entity_name") == uname), None)
    c.call("GET", "/projects/{project_name_or_id}/members", {"project_name_or_id": pname},
           principal=user, list_endpoint=True)
    if mid is None:
        c.fail("POST /projects/{p}/members", "the new member's id could not be found (Location, GET members)")
    else:
        mp = {"project_name_or_id": pname, "mid": mid}
        c.call("GET", "/projects/{project_name_or_id}/members/{mid}", mp, principal=admin)
        c.call("PUT", "/projects/{project_name_or_id}/members/{mid}", mp, principal=admin, body={"role_id": 3})
        r = c.call("GET", "/projects/{project_name_or_id}/members/{mid}", mp, principal=admin)
        if r is not None and isinstance(r.json, dict) and r.json.get("role_id") != 3:
            c.fail("PUT /projects/{p}/members/{mid}", f"role_id is {r.json.get('role_id')!r} after setting 3")

    # -- robots --
    robot_body = {
        "name": f"bot{suffix}", "description": "check robot", "duration": 30, "level": "project",
        "disable": False,
        "permissions": [{"kind": "project", "namespace": pname,
                         "access": [{"resource": "repository", "action": "pull"},
                                    {"resource": "repository", "action": "push"}]}],
    }
    r = c.call("POST", "/robots", principal=admin, expect=201, body=robot_body)
    rid = id_from_location(r)
    robot_name = robot_secret = None
    if r is not None and isinstance(r.json, dict):
        rid = rid if rid is not None else r.json.get("id")
        if rid is not None and r.json.get("id") not in (None, rid):
            c.fail("POST /robots", f"Location id {rid} != body id {r.json.get('id')}")
        robot_name, robot_secret = r.json.get("name"), r.json.get("secret")
    c.call("POST", "/robots", principal=admin, expect=400, body={"name": f"bad{suffix}", "level": "nonsense",
                                                                 "duration": 30, "permissions": []})
    c.call("GET", "/robots", principal=admin, list_endpoint=True)
    if pid is not None:
        c.call("GET", "/robots", query={"q": f"Level=project,ProjectID={pid}"}, principal=admin, list_endpoint=True)
    if rid is None:
        c.fail("POST /robots", "the new robot's id could not be found (Location, body)")
    else:
        # As a client does: what GET answered, with one field changed.
        r = c.call("GET", "/robots/{robot_id}", {"robot_id": rid}, principal=admin)
        current = r.json if r is not None and isinstance(r.json, dict) else dict(
            robot_body, name=robot_name or robot_body["name"], id=rid, editable=True)
        c.call("PUT", "/robots/{robot_id}", {"robot_id": rid}, principal=admin,
               body=dict(current, description="check robot, updated"))
        r = c.call("GET", "/robots/{robot_id}", {"robot_id": rid}, principal=admin)
        if r is not None and isinstance(r.json, dict) and r.json.get("description") != "check robot, updated":
            c.fail("PUT /robots/{id}", f"description is {r.json.get('description')!r} after the update")
        r = c.call("PATCH", "/robots/{robot_id}", {"robot_id": rid}, principal=admin, body={})
        if r is not None and isinstance(r.json, dict) and r.json.get("secret"):
            robot_secret = r.json["secret"]
        c.call("GET", "/robots/{robot_id}", {"robot_id": 987654321}, principal=admin, expect=404)
    if robot_name and robot_secret:
        robot = Principal("robot", robot_name, robot_secret)
        c.call("GET", "/projects/{project_name_or_id}", {"project_name_or_id": pname}, principal=robot)
        # Harbor: 412 PRECONDITION ("get current user not available for security
        # context: robot"); /users/current is only for users.
        c.call("GET", "/users/current", principal=robot, expect=412)

    # -- audit logs --
    c.call("GET", "/audit-logs", principal=admin, list_endpoint=True)
    c.call("GET", "/projects/{project_name}/logs", {"project_name": pname}, principal=admin, list_endpoint=True)

    # -- clean-up, and what is gone is 404 --
    if rid is not None:
        c.call("DELETE", "/robots/{robot_id}", {"robot_id": rid}, principal=admin)
        c.call("GET", "/robots/{robot_id}", {"robot_id": rid}, principal=admin, expect=404)
    if mid is not None:
        c.call("DELETE", "/projects/{project_name_or_id}/members/{mid}",
               {"project_name_or_id": pname, "mid": mid}, principal=admin)
    c.call("DELETE", "/projects/{project_name_or_id}", {"project_name_or_id": pname}, principal=admin)
    c.call("GET", "/projects/{project_name_or_id}", {"project_name_or_id": pname}, principal=admin, expect=404)
    c.call("DELETE", "/projects/{project_name_or_id}", {"project_name_or_id": pname}, principal=admin, expect=404)
    if uid is not None:
        c.call("DELETE", "/users/{user_id}", {"user_id": uid}, principal=admin)
        c.call("GET", "/users/{user_id}", {"user_id": uid}, principal=admin, expect=404)
    c.call("GET", "/users/current", principal=user, expect=401)
    return c


# ------------------------------------------------------------ self-test ----

NOW = "2024-05-06T07:08:09Z"

SELF_TESTS = [
    # (definition, body, expected error substring or None for valid)
    ("Project", {"project_id": 1, "owner_id": 1, "name": "library", "creation_time": NOW,
                 "update_time": "2024-05-06T07:08:09.123+02:00", "deleted": False, "owner_name": "admin",
                 "repo_count": 0, "metadata": {"public": "true"},
                 "cve_allowlist": {"id": 1, "project_id": 1, "items": [], "creation_time": NOW}}, None),
    ("Project", {"project_id": 1, "name": "x", "metadata": {"public": True}}, "$.metadata.public: True is not of type 'string'"),
    ("Project", {"project_id": "1"}, "$.project_id: '1' is not of type 'integer'"),
    ("Project", {"project_id": 1.5}, "$.project_id: 1.5 is not of type 'integer'"),
    ("Project", {"creation_time": ""}, "$.creation_time: '' is not a 'date-time'"),
    ("Project", {"creation_time": 1714979289}, "$.creation_time: 1714979289 is not of type 'string'"),
    ("Project", {"update_time": "2024-05-06 07:08:09"}, "is not a 'date-time'"),
    ("Project", {"update_time": "2024-02-30T07:08:09Z"}, "is not a 'date-time'"),
    ("Project", {"metadata": {"auto_scan": None}}, "$.metadata.auto_scan: None is not of type 'string'"),
    ("Project", {"cve_allowlist": {"items": [{"cve_id": 7}]}}, "$.cve_allowlist.items[0].cve_id"),
    ("Project", [], "is not of type 'object'"),
    ("UserResp", {"user_id": 3, "username": "alice", "email": "a@example.com", "realname": "A", "comment": "",
                  "sysadmin_flag": False, "admin_role_in_auth": False, "creation_time": NOW,
                  "update_time": NOW}, None),
    ("UserResp", {"user_id": 3, "sysadmin_flag": "false"}, "$.sysadmin_flag: 'false' is not of type 'boolean'"),
    ("UserResp", {"user_id": 3, "oidc_user_meta": {"id": "x"}}, "$.oidc_user_meta.id"),
    ("Robot", {"id": 1, "name": "robot$library+ci", "description": "", "level": "project", "duration": 30,
               "editable": True, "disable": False, "expires_at": 1717571289,
               "permissions": [{"kind": "project", "namespace": "library",
                                "access": [{"resource": "repository", "action": "pull", "effect": "allow"}]}],
               "creation_time": NOW, "update_time": NOW}, None),
    ("Robot", {"id": 1, "expires_at": "2024-06-05T07:08:09Z"}, "$.expires_at: '2024-06-05T07:08:09Z' is not of type 'integer'"),
    ("Robot", {"permissions": [{"access": {"resource": "repository"}}]}, "$.permissions[0].access"),
    ("Robot", {"duration": None}, "$.duration: None is not of type 'integer'"),
    ("Errors", {"errors": [{"code": "NOT_FOUND", "message": "project x not found"}]}, None),
    ("Errors", {"errors": [{"code": 404, "message": "x"}]}, "$.errors[0].code: 404 is not of type 'string'"),
    ("Errors", {"errors": {"code": "NOT_FOUND"}}, "$.errors: {'code': 'NOT_FOUND'} is not of type 'array'"),
    ("Errors", {"errors": None}, "$.errors: None is not of type 'array'"),
    ("Errors", "not found", "is not of type 'object'"),
]

# (method, template, status, expected schema pointer suffix or None)
SELF_LOOKUPS = [
    ("GET", "/users", 200, "/paths/~1users/get/responses/200/schema"),
    ("GET", "/users", 403, "/responses/403/schema"),
    ("GET", "/projects/{project_name_or_id}", 404, "/paths/~1projects~1%7Bproject_name_or_id%7D/get/responses/404/schema"),
    ("POST", "/projects", 201, None),
    ("GET", "/ping", 200, "/paths/~1ping/get/responses/200/schema"),
    ("PATCH", "/robots/{robot_id}", 200, "/paths/~1robots~1%7Brobot_id%7D/patch/responses/200/schema"),
]


def self_test(doc):
    failures = 0

    def check(ok, label, detail=""):
        nonlocal failures
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {label}" + (f": {detail}" if detail else ""))

    for name, body, want in SELF_TESTS:
        err = first_error(doc.definition_validator(name), body)
        shown = json.dumps(body)[:70]
        if want is None:
            check(err is None, f"{name} accepts {shown}", err or "")
        else:
            check(err is not None and want in err, f"{name} rejects {shown}", err or "accepted")
    for method, template, status, want in SELF_LOOKUPS:
        key, _, pointer = doc.response(method, template, status)
        check(pointer == want, f"{method} {template} {status} -> {pointer}",
              "" if pointer == want else f"expected {want}")
    # lists of definitions through an inline response schema
    ptr = doc.response("GET", "/robots", 200)[2]
    check(first_error(doc.validator(ptr), [{"id": 1, "name": "r"}]) is None, "GET /robots 200 accepts [Robot]")
    err = first_error(doc.validator(ptr), [{"id": 1}, {"id": "2"}])
    check(err is not None and err.startswith("$[1].id"), "GET /robots 200 rejects [{id: '2'}]", err or "accepted")
    err = first_error(doc.validator(doc.response("GET", "/users", 401)[2]), {"errors": [{"code": 1}]})
    check(err is not None and "$.errors[0].code" in err, "GET /users 401 (#/responses/401) validates as Errors", err or "accepted")
    try:
        doc.response("GET", "/users", 418)
        check(False, "GET /users 418 is not defined", "found")
    except KeyError:
        check(True, "GET /users 418 is not defined")
    try:
        doc.operation("GET", "/no/such/path")
        check(False, "unknown path raises", "found")
    except KeyError:
        check(True, "unknown path raises")
    extra = unknown_fields(doc, doc.response("GET", "/users/current", 200)[2], {"user_id": 1, "role": "x"})
    check(extra == ["$.role"], "unknown fields are noted", str(extra))
    for v, ok in [(NOW, True), ("2024-05-06T07:08:09.5-07:00", True), ("2024-05-06t07:08:09z", True),
                  ("2024-05-06T07:08:09", False), ("2024-05-06", False), ("2024-13-01T00:00:00Z", False),
                  ("2024-05-06T24:00:00Z", False), ("2024-05-06T07:08:09+0200", False), ("", False)]:
        check(is_rfc3339(v) == ok, f"date-time {v!r} {'valid' if ok else 'invalid'}")
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
        doc = Definition(args.swagger)
    except (OSError, ValueError, yaml.YAMLError) as e:
        print(f"cannot load the API definition: {e}", file=sys.stderr)
        return 2
    if args.self_test:
        return 1 if self_test(doc) else 0
    if not args.url or args.password is None:
        ap.error("--url and --password are required (or --self-test)")
    checker = run_live(doc, args.url, args.password)
    failed = checker.report()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
