//! The storage lifecycle over what real clients pushed, through the API
//! and the job workers of a running Berth (`berth serve` runs them
//! in-process; the harness starts it with `BERTH_GC_GRACE=4`):
//!
//! - tag immutability: skopeo and docker refused when they would move an
//!   immutable tag, the API refusing its deletion, `with_immutable_status`;
//! - tag retention: a dry run reports, and the real run then deletes
//!   exactly what it reported;
//! - garbage collection: what a deleted artifact left is reclaimed, and
//!   what is still tagged pulls back whole.
//!
//! Skipped on Distribution (no `/api/v2.0`).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use berth_e2e::containers::ContainersEnv;
use berth_e2e::dockerd::Dockerd;
use berth_e2e::http::{self, Response};
use berth_e2e::oci::{Image, OciLayout};
use berth_e2e::rng::Rng;
use berth_e2e::{Registry, Target, require_tools, skip_requested};
use serde_json::{Value, json};

struct Setup {
    reg: Registry,
    env: ContainersEnv,
    work: tempfile::TempDir,
    rng: Rng,
}

fn setup(test: &str, project: &str) -> Option<Setup> {
    if skip_requested(test) {
        return None;
    }
    if !Target::from_env().is_berth() {
        eprintln!("SKIPPED {test}: Distribution has no /api/v2.0");
        return None;
    }
    require_tools(&["skopeo", "curl"]);
    let reg = Registry::start();
    reg.create_project(project, false);
    let env = ContainersEnv::new(&[reg.host()]);
    env.login(&reg);
    Some(Setup {
        reg,
        env,
        work: berth_e2e::tempdir("berth-e2e-lifecycle."),
        rng: Rng::new(),
    })
}

impl Setup {
    /// A fresh random image in an OCI layout of its own, tagged `src`.
    fn image(&mut self, name: &str) -> (OciLayout, Image) {
        let image = Image::random("amd64", &mut self.rng);
        let mut layout = OciLayout::create(&self.work.path().join(name));
        layout.add_image(&image, "src");
        (layout, image)
    }

    /// `skopeo copy` of a layout's `src` to `<repo>:<tag>`; the output.
    fn copy(&self, layout: &OciLayout, repo_tag: &str) -> berth_e2e::Output {
        self.env
            .skopeo()
            .args([
                "copy",
                "--preserve-digests",
                "--dest-tls-verify=false",
                &layout.reference("src"),
                &format!("docker://{}", self.reg.image(repo_tag)),
            ])
            .run()
    }

    fn push(&self, layout: &OciLayout, repo_tag: &str) {
        let out = self.copy(layout, repo_tag);
        assert!(
            out.status.success(),
            "skopeo copy to {repo_tag} failed:\n{out}"
        );
    }

    fn api(&self, method: &str, path: &str, body: Option<&Value>) -> Response {
        self.reg.api(method, path, body)
    }

    fn api_ok(&self, method: &str, path: &str, body: Option<&Value>, want: u16) -> Response {
        let r = self.api(method, path, body);
        assert_eq!(r.status, want, "{method} /api/v2.0{path}:\n{r}");
        r
    }

    /// The `Location` of a create, relative to `/api/v2.0`.
    fn created(&self, path: &str, body: &Value) -> String {
        let r = self.api_ok("POST", path, Some(body), 201);
        let loc = r
            .header("location")
            .expect("201 with a Location")
            .to_owned();
        loc.split_once("/api/v2.0")
            .map_or(loc.clone(), |(_, p)| p.to_owned())
    }

    /// Polls `path` until `field` is a finished job status; returns it.
    /// A path Harbor has no GET for (a retention execution) is found in
    /// its parent's list by id.
    fn wait_done(&self, path: &str, field: &str) -> Value {
        let t = Instant::now();
        let listed = path.contains("/executions/");
        loop {
            let v = if listed {
                let (parent, id) = path.rsplit_once('/').unwrap();
                let all = self.api_ok("GET", parent, None, 200).json();
                all.as_array()
                    .unwrap()
                    .iter()
                    .find(|e| e["id"].as_i64().is_some_and(|i| i.to_string() == id))
                    .cloned()
                    .unwrap_or_else(|| panic!("{path} is not in {parent}: {all:#}"))
            } else {
                self.api_ok("GET", path, None, 200).json()
            };
            let status = v[field].as_str().unwrap_or_default().to_owned();
            if ["Success", "Error", "Stopped", "Succeed", "Failed"].contains(&status.as_str()) {
                return v;
            }
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "{path} still {status} after two minutes: {v:#}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The digest `<project>/<repo>:<tag>` points at, or None.
    fn tag_digest(&self, project: &str, repo: &str, tag: &str) -> Option<String> {
        let r = self.api(
            "GET",
            &format!("/projects/{project}/repositories/{repo}/artifacts/{tag}"),
            None,
        );
        (r.status == 200).then(|| r.json()["digest"].as_str().unwrap_or_default().to_owned())
    }

    /// Every artifact digest of a repository (first 100).
    fn digests(&self, project: &str, repo: &str) -> Vec<String> {
        let r = self.api_ok(
            "GET",
            &format!("/projects/{project}/repositories/{repo}/artifacts?page_size=100"),
            None,
            200,
        );
        let mut out: Vec<String> = r
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["digest"].as_str().unwrap().to_owned())
            .collect();
        out.sort();
        out
    }

    /// Blob GET through `/v2/` as the admin (token flow): the HTTP status.
    fn blob_status(&self, repo: &str, digest: &str) -> u16 {
        http::get(&self.reg.url(&format!("/v2/{repo}/blobs/{digest}")))
            .send()
            .status
    }
}

fn selector(decoration: &str, pattern: &str) -> Value {
    json!({"kind": "doublestar", "decoration": decoration, "pattern": pattern})
}

#[test]
fn immutable_tags_refuse_skopeo_docker_and_the_api() {
    let project = "frozen";
    let Some(mut s) = setup("immutable_tags_refuse_skopeo_docker_and_the_api", project) else {
        return;
    };
    let rule = json!({
        "tag_selectors": [selector("matches", "release-*")],
        "scope_selectors": {"repository": [selector("repoMatches", "**")]},
    });
    let rule_path = s.created(&format!("/projects/{project}/immutabletagrules"), &rule);
    let (a, _) = s.image("a");
    let (b, _) = s.image("b");
    let repo = format!("{project}/app");
    s.push(&a, &format!("{repo}:release-1"));
    s.push(&a, &format!("{repo}:dev"));
    // Moving the immutable tag: refused, with Harbor's words.
    let refused = s.copy(&b, &format!("{repo}:release-1"));
    assert!(
        !refused.status.success(),
        "an immutable tag was moved:\n{refused}"
    );
    assert!(
        refused.stderr_str().contains("immutable"),
        "skopeo should show why:\n{refused}"
    );
    // A mutable tag moves; the same content again is no change.
    s.push(&b, &format!("{repo}:dev"));
    s.push(&a, &format!("{repo}:release-1"));
    let a_digest = s.tag_digest(project, "app", "release-1").unwrap();
    // The API shows it and refuses to delete it or its artifact.
    let listed = s
        .api_ok(
            "GET",
            &format!(
                "/projects/{project}/repositories/app/artifacts/{a_digest}/tags?with_immutable_status=true"
            ),
            None,
            200,
        )
        .json();
    let flags: Vec<(String, bool)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["immutable"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(flags, vec![("release-1".to_owned(), true)], "{listed:#}");
    let path = format!("/projects/{project}/repositories/app/artifacts/{a_digest}");
    let r = s.api_ok("DELETE", &format!("{path}/tags/release-1"), None, 412);
    assert!(r.json()["errors"][0]["code"] == "PRECONDITION", "{r}");
    s.api_ok("DELETE", &path, None, 412);
    // docker: a new immutable tag pushes, moving it does not.
    if ["dockerd", "containerd"]
        .iter()
        .all(|t| berth_e2e::find_on_path(t).is_some())
    {
        let docker = Dockerd::start();
        docker.login(&s.reg);
        let image = s.reg.image(&format!("{repo}:release-2"));
        docker.build_random_image(&s.work.path().join("d1"), &image, 64 * 1024);
        docker.push(&image);
        docker.build_random_image(&s.work.path().join("d2"), &image, 64 * 1024);
        let out = docker.docker().args(["push", &image]).run();
        assert!(
            !out.status.success(),
            "docker moved an immutable tag:\n{out}"
        );
        let text = format!("{}{}", out.stdout_str(), out.stderr_str());
        assert!(text.contains("immutable"), "docker should show why:\n{out}");
    } else {
        eprintln!("docker part skipped: dockerd/containerd not installed");
    }
    // Disabled, the rule holds nothing.
    let mut disabled = rule.clone();
    disabled["disabled"] = json!(true);
    s.api_ok("PUT", &rule_path, Some(&disabled), 200);
    s.push(&b, &format!("{repo}:release-1"));
    assert_ne!(s.tag_digest(project, "app", "release-1").unwrap(), a_digest);
}

#[test]
fn retention_deletes_exactly_what_its_dry_run_reported() {
    let project = "tidy";
    let Some(mut s) = setup(
        "retention_deletes_exactly_what_its_dry_run_reported",
        project,
    ) else {
        return;
    };
    // Five versions of one service, pushed a second apart, and one of another.
    let mut pushed = Vec::new();
    for v in 1..=5 {
        let (layout, _) = s.image(&format!("svc{v}"));
        s.push(&layout, &format!("{project}/svc:v{v}"));
        pushed.push(s.tag_digest(project, "svc", &format!("v{v}")).unwrap());
        std::thread::sleep(Duration::from_millis(1100));
    }
    let (other, _) = s.image("other");
    s.push(&other, &format!("{project}/other:v1"));
    let project_id = s
        .api_ok("GET", &format!("/projects/{project}"), None, 200)
        .json()["project_id"]
        .as_i64()
        .unwrap();
    let policy = json!({
        "algorithm": "or",
        "rules": [{
            "action": "retain",
            "template": "latestPushedK",
            "params": {"latestPushedK": 2},
            "tag_selectors": [selector("matches", "**")],
            "scope_selectors": {"repository": [selector("repoMatches", "**")]},
        }],
        "trigger": {"kind": "Schedule", "settings": {"cron": ""}},
        "scope": {"level": "project", "ref": project_id},
    });
    let policy_path = s.created("/retentions", &policy);
    let run = |dry_run: bool| -> Vec<String> {
        let exec = s.created(
            &format!("{policy_path}/executions"),
            &json!({"dry_run": dry_run}),
        );
        let done = s.wait_done(&exec, "status");
        assert_eq!(done["status"], "Success", "{done:#}");
        assert_eq!(done["dry_run"], dry_run, "{done:#}");
        let tasks = s.api_ok("GET", &format!("{exec}/tasks"), None, 200).json();
        let mut deleted = Vec::new();
        for t in tasks.as_array().unwrap() {
            let log = s.api_ok("GET", &format!("{exec}/tasks/{}", t["id"]), None, 200);
            let text = String::from_utf8_lossy(&log.body).into_owned();
            let verb = if dry_run {
                "| would delete"
            } else {
                "| deleted"
            };
            deleted.extend(
                text.lines()
                    .filter(|l| l.ends_with(verb))
                    .map(|l| l.split(' ').next().unwrap().to_owned()),
            );
            eprintln!("{text}");
        }
        deleted.sort();
        deleted
    };
    let reported = run(true);
    let mut oldest: Vec<String> = pushed[..3].to_vec();
    oldest.sort();
    assert_eq!(reported, oldest, "the dry run should name the three oldest");
    assert_eq!(
        s.digests(project, "svc").len(),
        5,
        "a dry run deletes nothing"
    );
    let deleted = run(false);
    assert_eq!(
        deleted, reported,
        "the real run deleted other artifacts than reported"
    );
    let mut newest: Vec<String> = pushed[3..].to_vec();
    newest.sort();
    assert_eq!(s.digests(project, "svc"), newest);
    assert_eq!(s.digests(project, "other").len(), 1);
    let _ = policy_path;
}

#[test]
fn garbage_collection_reclaims_what_a_deleted_artifact_left() {
    let project = "sweep";
    let Some(mut s) = setup(
        "garbage_collection_reclaims_what_a_deleted_artifact_left",
        project,
    ) else {
        return;
    };
    let (old, old_image) = s.image("old");
    let (kept, kept_image) = s.image("kept");
    let repo = format!("{project}/app");
    s.push(&old, &format!("{repo}:old"));
    s.push(&kept, &format!("{repo}:kept"));
    let old_digest = s.tag_digest(project, "app", "old").unwrap();
    // Untagged, then collected with `delete_untagged`.
    s.api_ok(
        "DELETE",
        &format!("/projects/{project}/repositories/app/artifacts/{old_digest}/tags/old"),
        None,
        200,
    );
    std::thread::sleep(Duration::from_secs(5));
    let body = json!({"schedule": {"type": "Manual"}, "parameters": {"delete_untagged": true, "dry_run": false}});
    let run = s.created("/system/gc/schedule", &body);
    let done = s.wait_done(&run, "job_status");
    assert_eq!(done["job_status"], "Success", "{done:#}");
    let log = s.api_ok("GET", &format!("{run}/log"), None, 200);
    eprintln!("{}", String::from_utf8_lossy(&log.body));
    assert!(
        s.tag_digest(project, "app", &old_digest).is_none(),
        "the untagged artifact stays"
    );
    for b in old_image.blobs() {
        assert_eq!(
            s.blob_status(&repo, &b.digest),
            404,
            "{} survived",
            b.digest
        );
    }
    // What is tagged pulls back whole.
    let back = OciLayout::create(&s.work.path().join("back"));
    let out = s
        .env
        .skopeo()
        .args([
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            &format!("docker://{}", s.reg.image(&format!("{repo}:kept"))),
            &back.reference("kept"),
        ])
        .run();
    assert!(out.status.success(), "{out}");
    for b in kept_image.blobs() {
        assert_eq!(berth_e2e::oci::read_blob(&back.dir, &b.digest), b.bytes);
    }
}
