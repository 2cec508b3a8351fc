#!/usr/bin/env python3
"""Checks Berth's garbage collection and quota API (`/api/v2.0/system/gc…`,
`/api/v2.0/quotas…`, `storage_limit`, the project summary's `quota`)
against Harbor's own API definition, read at run time.

    check_lifecycle.py --url http://127.0.0.1:PORT --password ADMIN_PASSWORD \
        --swagger ../shared/reference/harbor-api-v2.0.swagger.yaml
    check_lifecycle.py --self-test --swagger ...   (no server: checks the checker)

The server must run its job workers (`berth serve` does): the script starts
a *dry-run* collection (nothing is deleted) and waits up to --gc-timeout
seconds for it to finish. It creates two projects `check-lc-<hex>` and
`check-lc2-<hex>` and pushes one small image through `/v2/` (a bearer token
from the realm of the `/v2/` challenge, as check_artifacts.py does). The
GC schedule is changed and then put back as it was.

Every API answer is validated against the schema of its status in HARBOR's
definition (the helpers of check_identity.py and check_artifacts.py: Draft
4, `$ref`s resolved, `date-time` must be RFC 3339, error bodies must be
Harbor's `Errors`), then Berth's expectations are checked: `GCHistory`
(`job_name` GARBAGE_COLLECTION, `job_kind` MANUAL, `job_parameters` a JSON
*string*, a final `job_status`), the log (text/plain, a summary line), the
schedule (`GCHistory` with `schedule.type`/`cron`), `Quota` (`ref`,
`hard.storage` bytes or -1, `used.storage` covering the pushed image),
paging headers, `storage_limit` on create and update, and the refusals
(400 for a bad cron or limit, 401 anonymous, 404 unknown ids). Fields Berth
adds (`progress` on a run) are reported as notes.

One line per call or check, `… -> ok | <first error>`, then a summary; exit
status 1 if anything failed, 2 if the check could not run at all.

Dependencies: PyYAML and jsonschema (tests/install-deps installs them).
"""

import argparse
import io
import json
import os
import secrets
import sys
import time

sys.dont_write_bytecode = True  # importing the other checkers leaves no __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_artifacts as ca  # noqa: E402  (the checker, /v2/ seeding, paging walk)
import check_identity as ci  # noqa: E402  (the validation helpers)

MIB = 1024 * 1024
FINAL = ("Success", "Error", "Stopped")


def parameters(run):
    """`job_parameters` parsed (Harbor sends a JSON string); None if it is not one."""
    p = run.get("job_parameters") if isinstance(run, dict) else None
    if not isinstance(p, str):
        return None
    try:
        v = json.loads(p)
    except ValueError:
        return None
    return v if isinstance(v, dict) else None


def manual(params):
    return {"schedule": {"type": "Manual"}, "parameters": params}


def check_quota_object(c, label, q, pid, pname, hard, min_used=0):
    if not isinstance(q, dict):
        return
    c.check(f"{label}: id is the project id {pid}", q.get("id") == pid, f"id {q.get('id')!r}")
    ref = q.get("ref") or {}
    c.check(f"{label}: ref names the project", ref.get("id") == pid and ref.get("name") == pname
            and isinstance(ref.get("owner_name"), str), f"ref {ref!r}")
    c.check(f"{label}: hard.storage is {hard}", (q.get("hard") or {}).get("storage") == hard,
            f"hard {q.get('hard')!r}")
    used = (q.get("used") or {}).get("storage")
    c.check(f"{label}: used.storage is an integer >= {min_used}", isinstance(used, int) and used >= min_used,
            f"used {q.get('used')!r}")


def start_dry_run(c, admin, timeout):
    """Starts a dry-run collection (waiting out one already running); its id or None."""
    deadline = time.monotonic() + timeout
    while True:
        r = c.call("POST", "/system/gc/schedule", principal=admin, expect=(201, 409),
                   body=manual({"delete_untagged": True, "dry_run": True}),
                   label="/system/gc/schedule (Manual, dry run)")
        if r is None:
            return None
        if r.status == 201:
            loc = r.headers.get("Location") or ""
            c.check("POST Manual: Location is /api/v2.0/system/gc/<id>",
                    loc.startswith(ca.BASE_PATH + "/system/gc/") and ca.id_from_location(r) is not None,
                    f"Location {loc!r}")
            return ca.id_from_location(r)
        if time.monotonic() > deadline:
            c.fail("POST /system/gc/schedule", f"a collection kept running for {timeout}s (409)")
            return None
        time.sleep(2)


def wait_for(c, admin, gid, timeout):
    """Polls GET /system/gc/{id} (validated once) until the run is final."""
    deadline = time.monotonic() + timeout
    r = c.call("GET", "/system/gc/{gc_id}", {"gc_id": gid}, principal=admin)
    run = ca.got(r)
    while run is not None and run.get("job_status") not in FINAL:
        if time.monotonic() > deadline:
            c.fail(f"GET /system/gc/{gid}", f"still {run.get('job_status')!r} after {timeout}s "
                   "(are the server's job workers running?)")
            return run
        time.sleep(1)
        resp = ca.http("GET", f"{c.base}/system/gc/{gid}",
                       {"Accept": "application/json", "Authorization": admin.header()})
        run = resp.json if resp.status == 200 and isinstance(resp.json, dict) else None
    if run is not None:
        # The final state, validated too.
        r = c.call("GET", "/system/gc/{gc_id}", {"gc_id": gid}, principal=admin,
                   label=f"/system/gc/{gid} (finished)")
        run = ca.got(r) or run
    return run


def run_live(doc, url, password, gc_timeout):
    c = ca.Checker(doc, url)
    admin = ci.Principal("admin", "admin", password)
    anon = ci.ANONYMOUS
    suffix = secrets.token_hex(3)
    pname = f"check-lc-{suffix}"
    p2name = f"check-lc2-{suffix}"

    r = c.call("GET", "/ping", principal=anon, validate=False)
    if r is None:
        return c

    # ---- storage_limit on projects
    r = c.call("POST", "/projects", principal=admin, expect=201,
               body={"project_name": pname, "metadata": {"public": "false"}, "storage_limit": 10 * MIB})
    pid = ca.id_from_location(r)
    r2 = c.call("POST", "/projects", principal=admin, expect=201,
                body={"project_name": p2name, "metadata": {"public": "false"}, "storage_limit": -1})
    p2id = ca.id_from_location(r2)
    if pid is None or p2id is None:
        c.fail("POST /projects", "no project id in Location; the checks need it")
        return c
    c.call("POST", "/projects", principal=admin, expect=400,
           body={"project_name": f"check-lc3-{suffix}", "storage_limit": -7}, label="/projects (storage_limit -7)")

    try:
        reg = ca.RegistryClient(url, "admin", password)
        pushed = ca.push_image(reg, f"{pname}/app", "v1", created="2024-01-02T03:04:05Z",
                               author="check_lifecycle", marker=f"lc-{suffix}")
    except (RuntimeError, OSError, KeyError) as e:
        c.fail("seed through /v2/", str(e))
        return c
    c.check("seed through /v2/: one image", True)

    # ---- quotas
    P = {"id": pid}
    r = c.call("GET", "/quotas/{id}", P, principal=admin)
    check_quota_object(c, "GET /quotas/{id}", ca.got(r), pid, pname, 10 * MIB, pushed["size"])
    r = c.call("GET", "/quotas/{id}", {"id": p2id}, principal=admin)
    check_quota_object(c, "GET /quotas/{id} (unlimited)", ca.got(r), p2id, p2name, -1)
    r = c.call("GET", "/quotas", principal=admin, list_endpoint=True,
               query={"reference": "project", "reference_id": str(pid)})
    items = ca.got(r, list)
    if items is not None:
        c.check("GET /quotas?reference_id=<id> answers that project's quota alone",
                [q.get("id") for q in items if isinstance(q, dict)] == [pid], f"{items!r}"[:200])
    r = c.call("GET", "/quotas", principal=admin, list_endpoint=True, query={"sort": "-used.storage", "page_size": 100})
    items = ca.got(r, list)
    if items is not None:
        used = [(q.get("used") or {}).get("storage", 0) for q in items if isinstance(q, dict)]
        c.check("GET /quotas?sort=-used.storage is in descending usage", used == sorted(used, reverse=True),
                f"{used}")
    all_quotas = ca.walk_pages(c, "/quotas", {}, admin, 1, label="/quotas")
    if all_quotas is not None:
        ids = [q.get("id") for q in all_quotas if isinstance(q, dict)]
        c.check("GET /quotas pages hold both new projects", pid in ids and p2id in ids, f"{ids}")
    c.call("PUT", "/quotas/{id}", P, principal=admin, body={"hard": {"storage": 20 * MIB}})
    r = c.call("GET", "/quotas/{id}", P, principal=admin, label=f"/quotas/{pid} (after PUT)")
    check_quota_object(c, "PUT then GET /quotas/{id}", ca.got(r), pid, pname, 20 * MIB)
    for bad in ({"hard": {"storage": 0}}, {"hard": {"storage": -2}}, {"hard": {}}, {"hard": {"count": 1}}):
        c.call("PUT", "/quotas/{id}", P, principal=admin, body=bad, expect=400,
               label=f"/quotas/{pid} {json.dumps(bad)}")
    c.call("PUT", "/projects/{project_name_or_id}", {"project_name_or_id": pid}, principal=admin,
           body={"storage_limit": -1}, label=f"/projects/{pid} (storage_limit -1)")
    r = c.call("GET", "/quotas/{id}", P, principal=admin, label=f"/quotas/{pid} (after PUT /projects)")
    check_quota_object(c, "PUT /projects storage_limit then GET /quotas/{id}", ca.got(r), pid, pname, -1)
    c.call("GET", "/quotas/{id}", {"id": 987654321}, principal=admin, expect=404)
    c.call("GET", "/quotas", principal=anon, expect=401)
    c.call("PUT", "/quotas/{id}", P, principal=anon, body={"hard": {"storage": 1}}, expect=401)

    r = c.call("GET", "/projects/{project_name_or_id}/summary", {"project_name_or_id": pid}, principal=admin)
    summary = ca.got(r)
    if summary is not None:
        q = summary.get("quota") or {}
        c.check("GET summary: quota.hard.storage -1 and used.storage covers the image",
                (q.get("hard") or {}).get("storage") == -1
                and (q.get("used") or {}).get("storage", -1) >= pushed["size"], f"quota {q!r}")

    # ---- the GC schedule (put back at the end)
    r = c.call("GET", "/system/gc/schedule", principal=admin)
    before = ca.got(r)
    if before is not None:
        c.check("GET /system/gc/schedule: schedule.type is one of Harbor's",
                (before.get("schedule") or {}).get("type") in ("None", "Hourly", "Daily", "Weekly", "Custom"),
                f"{before.get('schedule')!r}")
    body = {"schedule": {"type": "Custom", "cron": "0 30 3 * * *"},
            "parameters": {"delete_untagged": False, "dry_run": True}}
    c.call("PUT", "/system/gc/schedule", principal=admin, body=body, label="/system/gc/schedule (Custom)")
    r = c.call("GET", "/system/gc/schedule", principal=admin, label="/system/gc/schedule (after PUT)")
    s = ca.got(r)
    if s is not None:
        sched = s.get("schedule") or {}
        c.check("GET /system/gc/schedule after PUT: type Custom, the cron sent",
                sched.get("type") == "Custom" and sched.get("cron") == "0 30 3 * * *", f"{sched!r}")
        c.check("GET /system/gc/schedule: next_scheduled_time is set", bool(sched.get("next_scheduled_time")),
                f"{sched!r}")
        c.check("GET /system/gc/schedule: job_parameters is a JSON string with dry_run true",
                (parameters(s) or {}).get("dry_run") is True, f"{s.get('job_parameters')!r}")
    for bad in ({"schedule": {"type": "Custom", "cron": "* * *"}},
                {"schedule": {"type": "Custom", "cron": "61 * * * * *"}},
                {"schedule": {"type": "Monthly"}}):
        c.call("POST", "/system/gc/schedule", principal=admin, body=bad, expect=400,
               label=f"/system/gc/schedule {json.dumps(bad['schedule'])}")
    if before is not None:
        old = before.get("schedule") or {}
        restore = {"schedule": {"type": old.get("type") or "None", "cron": old.get("cron") or ""},
                   "parameters": parameters(before) or {}}
        c.call("PUT", "/system/gc/schedule", principal=admin, body=restore,
               label="/system/gc/schedule (put back)")
    c.call("GET", "/system/gc/schedule", principal=anon, expect=401)

    # ---- a dry-run collection
    gid = start_dry_run(c, admin, gc_timeout)
    if gid is None:
        return c
    run = wait_for(c, admin, gid, gc_timeout)
    if isinstance(run, dict):
        c.check("GCHistory: job_name GARBAGE_COLLECTION, job_kind MANUAL, schedule.type Manual",
                run.get("job_name") == "GARBAGE_COLLECTION" and run.get("job_kind") == "MANUAL"
                and (run.get("schedule") or {}).get("type") == "Manual", f"{run!r}"[:200])
        c.check("GCHistory: job_parameters is a JSON string with dry_run and delete_untagged",
                parameters(run) == {"delete_untagged": True, "dry_run": True}, f"{run.get('job_parameters')!r}")
        c.check("GCHistory: the dry run ends Success", run.get("job_status") == "Success",
                f"job_status {run.get('job_status')!r}")
    r = c.call("GET", "/system/gc", principal=admin, list_endpoint=True, query={"page_size": 5})
    items = ca.got(r, list)
    if items is not None:
        c.check("GET /system/gc lists the run first (newest first)",
                bool(items) and isinstance(items[0], dict) and items[0].get("id") == gid,
                f"{[i.get('id') for i in items if isinstance(i, dict)]}")
    ca.walk_pages(c, "/system/gc", {}, admin, 1, label="/system/gc")
    r = c.call("GET", "/system/gc/{gc_id}/log", {"gc_id": gid}, principal=admin, validate=False)
    if r is not None and r.status == 200:
        ctype = r.headers.get("Content-Type") or ""
        c.check("GET /system/gc/{id}/log is text/plain", ctype.startswith("text/plain"), f"Content-Type {ctype!r}")
        lines = [ln for ln in r.body.decode("utf-8", "replace").splitlines() if ln.strip()]
        c.check("GET /system/gc/{id}/log ends with the summary line (dry run)",
                bool(lines) and "summary: status Success (dry run)" in lines[-1] and "would free" in lines[-1],
                f"{lines[-1:]!r}")
    # Stopping a finished run changes nothing.
    c.call("PUT", "/system/gc/{gc_id}", {"gc_id": gid}, principal=admin)
    r = c.call("GET", "/system/gc/{gc_id}", {"gc_id": gid}, principal=admin, label=f"/system/gc/{gid} (after stop)")
    if ca.got(r) is not None:
        c.check("PUT /system/gc/{id} on a finished run leaves it Success", r.json.get("job_status") == "Success",
                f"{r.json.get('job_status')!r}")
    c.call("GET", "/system/gc/{gc_id}", {"gc_id": 987654321}, principal=admin, expect=404)
    c.call("GET", "/system/gc/{gc_id}/log", {"gc_id": 987654321}, principal=admin, expect=404, validate=False)
    c.call("GET", "/system/gc", principal=anon, expect=401)
    c.call("POST", "/system/gc/schedule", principal=anon, body=manual({}), expect=401)
    return c


# ------------------------------------------------------------ self-test ----

RUN = {"id": 3, "job_name": "GARBAGE_COLLECTION", "job_kind": "MANUAL",
       "job_parameters": "{\"delete_untagged\":true,\"dry_run\":false}",
       "schedule": {"type": "Manual", "cron": ""}, "job_status": "Running", "deleted": False,
       "creation_time": "2024-01-02T03:04:05Z", "update_time": "2024-01-02T03:04:06Z",
       "progress": {"phase": "repos", "tasks": 40, "done": 12}}
SCHEDULE = {"job_name": "", "job_kind": "0 0 0 * * *", "job_parameters": "{\"dry_run\":true}",
            "schedule": {"type": "Daily", "cron": "0 0 0 * * *", "next_scheduled_time": "2024-01-03T00:00:00Z"},
            "deleted": False, "creation_time": "2024-01-02T03:04:05Z", "update_time": "2024-01-02T03:04:05Z"}
QUOTA = {"id": 7, "ref": {"id": 7, "name": "p", "owner_name": "admin"}, "hard": {"storage": -1},
         "used": {"storage": 1024}, "creation_time": "2024-01-02T03:04:05Z", "update_time": "2024-01-02T03:04:05Z"}


def self_test(doc):
    failures = 0

    def check(ok, label, detail=""):
        nonlocal failures
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {label}" + (f": {detail}" if detail else ""))

    def validates(method, template, status, body):
        ptr = doc.response(method, template, status)[2]
        return ci.first_error(doc.validator(ptr), body)

    check(validates("GET", "/system/gc/{gc_id}", 200, RUN) is None, "a Berth run is a GCHistory")
    check(validates("GET", "/system/gc", 200, [RUN]) is None, "a history page is [GCHistory]")
    check(validates("GET", "/system/gc/schedule", 200, SCHEDULE) is None, "the schedule is a GCHistory")
    err = validates("GET", "/system/gc/{gc_id}", 200, dict(RUN, job_parameters={"dry_run": True}))
    check(err is not None and "job_parameters" in err, "job_parameters as an object is refused", err or "accepted")
    err = validates("GET", "/system/gc/{gc_id}", 200, dict(RUN, schedule={"type": "Monthly"}))
    check(err is not None and "schedule" in err, "an unknown schedule type is refused", err or "accepted")
    err = validates("GET", "/system/gc/{gc_id}", 200, dict(RUN, creation_time="yesterday"))
    check(err is not None, "a creation_time that is not RFC 3339 is refused", err or "accepted")
    extra = ci.unknown_fields(doc, doc.response("GET", "/system/gc/{gc_id}", 200)[2], RUN)
    check(extra == ["$.progress"], "Berth's progress is noted as an extension", str(extra))
    check(validates("GET", "/quotas/{id}", 200, QUOTA) is None, "a Berth quota is a Quota")
    check(validates("GET", "/quotas", 200, [QUOTA]) is None, "a quota page is [Quota]")
    err = validates("GET", "/quotas/{id}", 200, dict(QUOTA, hard={"storage": "1GiB"}))
    check(err is not None and "hard" in err, "a non-integer hard.storage is refused", err or "accepted")
    summary = {"repo_count": 1, "quota": {"hard": {"storage": 5}, "used": {"storage": 1}}}
    check(validates("GET", "/projects/{project_name_or_id}/summary", 200, summary) is None,
          "a summary with a quota is a ProjectSummary")
    check(parameters(RUN) == {"delete_untagged": True, "dry_run": False}, "job_parameters parse")
    check(parameters({"job_parameters": "nope"}) is None, "bad job_parameters are None")
    c = ca.Checker(doc, "http://127.0.0.1:9")
    check_quota_object(c, "q", QUOTA, 7, "p", -1, 1000)
    check(all(not row[4] for row in c.rows), "the quota checks accept a right quota",
          str([row for row in c.rows if row[4]]))
    c = ca.Checker(doc, "http://127.0.0.1:9")
    check_quota_object(c, "q", dict(QUOTA, id=8), 7, "p", 5, 2000)
    wrong = sum(bool(row[4]) for row in c.rows)
    check(wrong == 3, "and refuse a wrong one (id, hard, used)", "" if wrong == 3 else str(c.rows))
    out = io.StringIO()
    c.report(out=out)
    check("failed" in out.getvalue(), "the report prints")
    print(f"\nself-test: {failures} failed")
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="Berth's base URL, http://127.0.0.1:PORT")
    ap.add_argument("--password", help="the password of the user `admin`")
    ap.add_argument("--swagger", required=True, help="Harbor's swagger.yaml (../shared/reference/…)")
    ap.add_argument("--gc-timeout", type=float, default=180.0,
                    help="seconds to wait for the dry-run collection (default 180)")
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
    checker = run_live(doc, args.url, args.password, args.gc_timeout)
    failed = checker.report()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
