#!/usr/bin/env python3
"""Checks that Berth's OpenAPI document is a subset of Harbor's API definition.

    check_openapi_subset.py [--berth shared/src/http/api/openapi.json] \
        [--swagger ../shared/reference/harbor-api-v2.0.swagger.yaml]

Berth's document (OpenAPI 3.0, paths relative to the server URL `/api/v2.0`)
is compared with Harbor's (Swagger 2.0, basePath `/api/v2.0`):

- every Berth path + method is one of Harbor's, with the same operationId,
  except the Berth extensions listed in EXTENSION_PATHS;
- every parameter Berth declares (name + location) is one of Harbor's for
  that operation, with the same type, except EXTENSION_PARAMETERS
  (path parameters are compared by position, names must match too);
- every success status Berth declares is one Harbor declares; error
  statuses Harbor does not list are reported as notes (Berth may refuse
  more precisely, e.g. a 400 for an id that is not a number);
- every property of a response or request body schema Berth declares
  exists in Harbor's corresponding schema with the same JSON type (and the
  same `date-time` format), recursively through `$ref`, arrays, objects and
  `additionalProperties`, except EXTENSION_PROPERTIES; a body Berth declares
  where Harbor has none is a difference.

Nullability is not compared (Harbor's `x-nullable` vs OpenAPI's `nullable`).
Exit status: 0 when Berth's document is a subset, 1 with the list of
differences, 2 when a document cannot be read. Needs PyYAML
(tests/install-deps installs it).
"""

import argparse
import json
import os
import re
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# Berth's own paths under /api/v2.0 that Harbor's definition does not have.
# `webhook/policies/test`: a test delivery to a target (Harbor 2.x has no
# such operation in its v2.0 definition; its portal tests through the
# policy form).
EXTENSION_PATHS = {"/openapi.json", "/swagger.json", "/projects/{project_name_or_id}/webhook/policies/test"}

# Query parameters Berth adds to Harbor's operations: (name, in).
EXTENSION_PARAMETERS = {("cursor", "query")}

# Properties Berth adds to Harbor's schemas: (Berth schema name, property).
EXTENSION_PROPERTIES = {("AuditLog", "count"), ("GCHistory", "progress")}

# Harbor's definition spells some property names with quotes
# (`'os.version'` in Platform); the wire (and Berth) has them without.
HARBOR_NAME_QUIRKS = {"os.version": "'os.version'", "os.features": "'os.features'"}

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
SUCCESS = re.compile(r"^2\d\d$")


class Doc:
    """A JSON/YAML document with local `$ref` resolution."""

    def __init__(self, data, label):
        self.data = data
        self.label = label

    def deref(self, node):
        """(node with refs followed, name of the last schema followed or None)."""
        name = None
        seen = 0
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                raise ValueError(f"{self.label}: unsupported $ref {ref!r}")
            target = self.data
            for seg in ref[2:].split("/"):
                seg = seg.replace("~1", "/").replace("~0", "~")
                if not isinstance(target, dict) or seg not in target:
                    raise ValueError(f"{self.label}: dangling $ref {ref!r}")
                target = target[seg]
            name = ref.rsplit("/", 1)[-1]
            node = target
            seen += 1
            if seen > 50:
                raise ValueError(f"{self.label}: $ref loop at {ref!r}")
        return node, name


def template_shape(path):
    """A path with every `{param}` replaced by `{}` (to match by position)."""
    return re.sub(r"\{[^}]+\}", "{}", path)


def param_names(path):
    return re.findall(r"\{([^}]+)\}", path)


class Comparer:
    def __init__(self, berth, harbor):
        self.b = Doc(berth, "Berth")
        self.h = Doc(harbor, "Harbor")
        self.diffs = []
        self.notes = []
        self.extensions_seen = []

    def diff(self, where, message):
        self.diffs.append(f"{where}: {message}")

    # ------------------------------------------------------------ schemas --

    def h_type(self, schema):
        t = schema.get("type")
        if t is None and "properties" in schema:
            return "object"
        return t

    def b_type(self, schema):
        t = schema.get("type")
        if t is None and "properties" in schema:
            return "object"
        return t

    def compare_schema(self, where, bs, hs, depth=0):
        """Berth schema `bs` against Harbor schema `hs` (both unresolved)."""
        if depth > 30:
            return
        bs, bname = self.b.deref(bs)
        hs, _ = self.h.deref(hs)
        if not isinstance(bs, dict) or not isinstance(hs, dict):
            return
        bt, ht = self.b_type(bs), self.h_type(hs)
        if bt is not None:
            if ht is None:
                # Harbor leaves the value untyped (anything goes): Berth's
                # narrower type is still a subset.
                pass
            elif bt != ht and not (bt == "integer" and ht == "number"):
                self.diff(where, f"type {bt!r}, Harbor has {ht!r}")
                return
        bf, hf = bs.get("format"), hs.get("format")
        if (bf == "date-time") != (hf == "date-time") and ht is not None and bt is not None:
            self.diff(where, f"format {bf!r}, Harbor has {hf!r}")
        if bt == "array" or (bt is None and "items" in bs):
            if "items" in bs and isinstance(hs.get("items"), dict):
                self.compare_schema(where + "[]", bs["items"], hs["items"], depth + 1)
            return
        props = bs.get("properties") or {}
        hprops = hs.get("properties") or {}
        for name, sub in props.items():
            at = f"{where}.{name}"
            if bname and (bname, name) in EXTENSION_PROPERTIES:
                self.extensions_seen.append(f"{at} (extension {bname}.{name})")
                continue
            hname = name if name in hprops else HARBOR_NAME_QUIRKS.get(name)
            if hname not in hprops:
                if isinstance(hs.get("additionalProperties"), dict):
                    self.compare_schema(at, sub, hs["additionalProperties"], depth + 1)
                elif hs.get("additionalProperties") is True or (
                        ht is None and "properties" not in hs):
                    pass  # Harbor allows any property here
                else:
                    self.diff(at, "property not in Harbor's definition")
                continue
            self.compare_schema(at, sub, hprops[hname], depth + 1)
        bap = bs.get("additionalProperties")
        hap = hs.get("additionalProperties")
        if isinstance(bap, dict) and isinstance(hap, dict):
            self.compare_schema(where + ".*", bap, hap, depth + 1)

    # --------------------------------------------------------- operations --

    def harbor_params(self, hpath, hop):
        out = {}
        for raw in (self.h.data["paths"][hpath].get("parameters") or []) + (hop.get("parameters") or []):
            p, _ = self.h.deref(raw)
            out[(p["name"].lower() if p["in"] == "header" else p["name"], p["in"])] = p
        return out

    def berth_params(self, bitem, bop):
        out = {}
        for raw in (bitem.get("parameters") or []) + (bop.get("parameters") or []):
            p, _ = self.b.deref(raw)
            out[(p["name"].lower() if p["in"] == "header" else p["name"], p["in"])] = p
        return out

    def compare_operation(self, bpath, hpath, method, bitem, bop, hop):
        where = f"{method.upper()} {bpath}"
        if bop.get("operationId") != hop.get("operationId"):
            self.diff(where, f"operationId {bop.get('operationId')!r}, Harbor has {hop.get('operationId')!r}")
        # parameters
        hparams = self.harbor_params(hpath, hop)
        for key, p in self.berth_params(bitem, bop).items():
            name, loc = key
            if key in EXTENSION_PARAMETERS:
                self.extensions_seen.append(f"{where} parameter {name} ({loc}, extension)")
                continue
            hp = hparams.get(key)
            if hp is None:
                self.diff(where, f"parameter {name!r} in {loc} is not Harbor's")
                continue
            btype = (p.get("schema") or {}).get("type")
            htype = hp.get("type") or (hp.get("schema") or {}).get("type")
            if btype != htype and htype is not None:
                self.diff(where, f"parameter {name!r} is {btype!r}, Harbor's is {htype!r}")
            if bool(p.get("required")) != bool(hp.get("required")) and loc != "path":
                self.notes.append(f"{where}: parameter {name!r} required={bool(p.get('required'))}, "
                                  f"Harbor's required={bool(hp.get('required'))}")
        # request body
        hbody = next((self.h.deref(p)[0] for p in (hop.get("parameters") or [])
                      if self.h.deref(p)[0].get("in") == "body"), None)
        breq = bop.get("requestBody")
        if breq is not None:
            breq, _ = self.b.deref(breq)
            bschema = ((breq.get("content") or {}).get("application/json") or {}).get("schema")
            if hbody is None:
                self.diff(where, "has a request body, Harbor's operation has none")
            elif bschema is not None:
                self.compare_schema(f"{where} body", bschema, hbody.get("schema") or {})
        # responses
        hresps = hop.get("responses") or {}
        for status, bresp in (bop.get("responses") or {}).items():
            status = str(status)
            bresp, _ = self.b.deref(bresp)
            if status not in hresps:
                if SUCCESS.match(status):
                    self.diff(where, f"success status {status} is not Harbor's "
                                     f"({', '.join(sorted(map(str, hresps)))})")
                else:
                    self.notes.append(f"{where}: error status {status} is not in Harbor's list")
                continue
            hresp, _ = self.h.deref(hresps[status])
            hschema = hresp.get("schema")
            content = bresp.get("content") or {}
            bschema = (content.get("application/json") or {}).get("schema")
            if bschema is None:
                continue
            if hschema is None:
                if bschema and SUCCESS.match(status):
                    self.diff(f"{where} {status}", "declares a JSON body, Harbor's has none")
                elif bschema:
                    # Harbor sends its Errors body there too; its definition
                    # just does not say so for a few operations.
                    self.notes.append(f"{where} {status}: Errors body, Harbor's definition declares none")
                continue
            self.compare_schema(f"{where} {status}", bschema, hschema)
        for status in hresps:
            if SUCCESS.match(str(status)) and str(status) not in map(str, bop.get("responses") or {}):
                self.diff(where, f"Harbor's success status {status} is missing")

    def run(self):
        bpaths = self.b.data.get("paths") or {}
        hpaths = self.h.data.get("paths") or {}
        by_shape = {}
        for hp in hpaths:
            by_shape.setdefault(template_shape(hp), []).append(hp)
        count = 0
        for bpath, bitem in bpaths.items():
            methods = [m for m in bitem if m in METHODS]
            if bpath in EXTENSION_PATHS:
                self.extensions_seen.append(f"{bpath} ({', '.join(m.upper() for m in methods)}, extension)")
                continue
            if bpath in hpaths:
                hpath = bpath
            else:
                same = by_shape.get(template_shape(bpath), [])
                if same:
                    self.diff(bpath, f"not in Harbor's definition; Harbor names its parameters {same[0]}")
                else:
                    self.diff(bpath, "not in Harbor's definition")
                continue
            for m in methods:
                hop = hpaths[hpath].get(m)
                if hop is None:
                    self.diff(f"{m.upper()} {bpath}", "method not in Harbor's definition")
                    continue
                count += 1
                self.compare_operation(bpath, hpath, m, bitem, bitem[m], hop)
        return count


def check_berth_document(doc):
    """Structural checks of Berth's own document (no Harbor needed)."""
    problems = []
    if not str(doc.get("openapi", "")).startswith("3.0"):
        problems.append(f"openapi is {doc.get('openapi')!r}, expected 3.0.x")
    if [s.get("url") for s in doc.get("servers") or []] != ["/api/v2.0"]:
        problems.append("servers must be exactly [{url: /api/v2.0}]")
    schemes = (doc.get("components") or {}).get("securitySchemes") or {}
    if not any(s.get("type") == "http" and s.get("scheme") == "basic" for s in schemes.values()):
        problems.append("no HTTP basic security scheme")
    ids = {}
    for path, item in (doc.get("paths") or {}).items():
        names = param_names(path)
        for m in METHODS:
            op = item.get(m)
            if op is None:
                continue
            oid = op.get("operationId")
            if not oid:
                problems.append(f"{m.upper()} {path}: no operationId")
            elif oid in ids:
                problems.append(f"{m.upper()} {path}: operationId {oid} also on {ids[oid]}")
            else:
                ids[oid] = f"{m.upper()} {path}"
            declared = set()
            for raw in (item.get("parameters") or []) + (op.get("parameters") or []):
                p = raw
                if "$ref" in raw:
                    p = doc
                    for seg in raw["$ref"][2:].split("/"):
                        p = p[seg]
                if p.get("in") == "path":
                    declared.add(p["name"])
            if declared != set(names):
                problems.append(f"{m.upper()} {path}: path parameters {sorted(declared)} vs template {names}")
            for status, resp in (op.get("responses") or {}).items():
                if str(status).startswith(("4", "5")):
                    ref = resp.get("$ref", "")
                    schema = ((resp.get("content") or {}).get("application/json") or {}).get("schema") or {}
                    if not ref.startswith("#/components/responses/") and schema.get("$ref") != "#/components/schemas/Errors" \
                            and not (m == "head"):
                        problems.append(f"{m.upper()} {path} {status}: not Harbor's Errors body")
    try:
        from openapi_spec_validator import validate  # optional
    except ImportError:
        validate = None
    if validate is not None:
        try:
            validate(doc)
        except Exception as e:  # noqa: BLE001 - any validation failure is reported
            problems.append(f"not a valid OpenAPI 3.0 document: {str(e).splitlines()[0]}")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--berth", default=os.path.join(REPO, "shared/src/http/api/openapi.json"))
    ap.add_argument("--swagger", default=os.path.join(REPO, "..", "shared/reference/harbor-api-v2.0.swagger.yaml"))
    ap.add_argument("-v", "--verbose", action="store_true", help="also print notes and extensions")
    args = ap.parse_args()
    try:
        with open(args.berth, encoding="utf-8") as f:
            berth = json.load(f)
        with open(args.swagger, encoding="utf-8") as f:
            harbor = yaml.safe_load(f)
    except (OSError, ValueError, yaml.YAMLError) as e:
        print(f"cannot read a document: {e}", file=sys.stderr)
        return 2
    if harbor.get("swagger") != "2.0" or harbor.get("basePath") != "/api/v2.0":
        print(f"{args.swagger} is not Harbor's Swagger 2.0 definition with basePath /api/v2.0", file=sys.stderr)
        return 2
    problems = check_berth_document(berth)
    c = Comparer(berth, harbor)
    try:
        count = c.run()
    except ValueError as e:
        print(f"cannot compare: {e}", file=sys.stderr)
        return 2
    if args.verbose:
        for e in c.extensions_seen:
            print(f"extension: {e}")
        for n in c.notes:
            print(f"note: {n}")
    for p in problems:
        print(f"INVALID {p}")
    for d in c.diffs:
        print(f"DIFF {d}")
    total = len(problems) + len(c.diffs)
    print(f"\n{count} operations compared with Harbor's definition "
          f"({len(c.extensions_seen)} extensions, {len(c.notes)} notes): "
          f"{'subset' if not total else f'{total} differences'}")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
