//! Harbor's identity model through real clients: logins, project members,
//! robot accounts, anonymous access, with the Docker token flow each client
//! runs by itself (`401` with `WWW-Authenticate: Bearer realm=…`, a token
//! from `/service/token`, the request again with it).
//!
//! Every test starts its own registry on the target `BERTH_E2E_TARGET`
//! selects; on Distribution (no auth) they are skipped. Refusals are
//! checked twice: the client exits non-zero, and a raw repro of the
//! client's request (the token service's grant, then the registry's answer
//! to the request with that token) shows what the server said.

use berth_e2e::auth::{self, Challenge, Credentials};
use berth_e2e::containers::ContainersEnv;
use berth_e2e::dockerd::Dockerd;
use berth_e2e::http::{self, Auth};
use berth_e2e::oci::{self, Image, OciLayout};
use berth_e2e::registry::{Robot, Role};
use berth_e2e::rng::Rng;
use berth_e2e::{Cmd, Output, Registry, Target, require_tools, skip_requested};
use serde_json::{Value, json};

/// A password that satisfies Berth's (Harbor's) rules.
const PASSWORD: &str = "Harbor12345";

fn start(test: &str) -> Option<Registry> {
    if skip_requested(test) {
        return None;
    }
    let target = Target::from_env();
    if !target.is_berth() {
        eprintln!("SKIPPED {test}: the {target} target runs without authentication");
        return None;
    }
    require_tools(&["curl"]);
    Some(Registry::start())
}

/// A containers environment for `reg` (logged in to nothing).
fn containers(reg: &Registry) -> ContainersEnv {
    require_tools(&["skopeo"]);
    ContainersEnv::new(&[reg.host()])
}

/// `docker://<host>/<repo_and_ref>`
fn docker_ref(reg: &Registry, repo_and_ref: &str) -> String {
    format!("docker://{}", reg.image(repo_and_ref))
}

/// An OCI layout in `dir` holding one random image tagged `v1`.
fn layout_with_image(dir: &std::path::Path) -> (OciLayout, Image) {
    let image = Image::random("amd64", &mut Rng::new());
    let mut layout = OciLayout::create(dir);
    layout.add_image(&image, "v1");
    (layout, image)
}

/// `skopeo copy --preserve-digests` from a layout to the registry with
/// `--dest-creds` (or `--dest-no-creds`), not yet run.
fn skopeo_push(
    env: &ContainersEnv,
    layout: &OciLayout,
    dest: &str,
    creds: Option<&Credentials>,
) -> Cmd {
    let cmd = env
        .skopeo()
        .args(["copy", "--preserve-digests", "--dest-tls-verify=false"]);
    let cmd = match creds {
        Some(c) => cmd.arg(format!("--dest-creds={}:{}", c.user, c.password)),
        None => cmd.arg("--dest-no-creds"),
    };
    cmd.arg(layout.reference("v1")).arg(dest)
}

/// `skopeo inspect --raw` with `--creds` (or `--no-creds`), not yet run.
fn skopeo_inspect(env: &ContainersEnv, reference: &str, creds: Option<&Credentials>) -> Cmd {
    let cmd = env
        .skopeo()
        .args(["inspect", "--raw", "--tls-verify=false"]);
    let cmd = match creds {
        Some(c) => cmd.arg(format!("--creds={}:{}", c.user, c.password)),
        None => cmd.arg("--no-creds"),
    };
    cmd.arg(reference)
}

/// The token service's answer for `scopes` as `who` (anonymous if `None`),
/// with the realm and service the registry's challenge names.
fn token_response(reg: &Registry, scopes: &[&str], who: Option<&Credentials>) -> http::Response {
    let challenge = challenge(reg);
    let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
    auth::token_request(&challenge.realm, &challenge.service, &scopes, who).send()
}

/// The token for `scopes` as `who`; panics unless the service issues one.
fn issue_token(reg: &Registry, scopes: &[&str], who: Option<&Credentials>) -> String {
    let resp = token_response(reg, scopes, who);
    resp.expect_status(200);
    resp.json()["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token in:\n{resp}"))
        .to_owned()
}

/// The `access` claim of a JWT (its payload is base64url JSON).
fn access_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap_or_default();
    let bytes = base64url_decode(payload);
    let claims: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("the token payload is not JSON ({e}): {token}"));
    claims["access"].clone()
}

fn base64url_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for v in s.bytes().filter_map(value) {
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// The actions a token's `access` grants on repository `name`.
fn granted(token: &str, name: &str) -> Vec<String> {
    let access = access_of(token);
    let mut actions: Vec<String> = access
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["type"] == "repository" && a["name"] == name)
        .flat_map(|a| a["actions"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    actions.sort();
    actions.dedup();
    actions
}

/// The registry's challenge to an anonymous `GET /v2/`.
fn challenge(reg: &Registry) -> Challenge {
    let resp = http::get(&reg.url("/v2/")).raw().send();
    resp.expect_status(401);
    Challenge::of(&resp).unwrap_or_else(|| panic!("no Bearer challenge in:\n{resp}"))
}

/// `POST /v2/<repo>/blobs/uploads/` with `token` (none: no Authorization).
fn start_upload_with(reg: &Registry, repo: &str, token: Option<&str>) -> http::Response {
    let mut req = http::post(&reg.url(&format!("/v2/{repo}/blobs/uploads/"))).raw();
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    req.send()
}

/// Panics unless `resp` is a `403` `DENIED` with an `insufficient_scope`
/// Bearer challenge.
fn assert_denied_insufficient_scope(resp: &http::Response, what: &str) {
    assert_eq!(resp.status, 403, "{what}: expected 403:\n{resp}");
    assert_eq!(
        resp.error_code().as_deref(),
        Some("DENIED"),
        "{what}: errors[0].code should be DENIED:\n{resp}"
    );
    let challenge = Challenge::of(resp)
        .unwrap_or_else(|| panic!("{what}: a 403 should carry a Bearer challenge:\n{resp}"));
    assert_eq!(
        challenge.error.as_deref(),
        Some("insufficient_scope"),
        "{what}:\n{resp}"
    );
}

/// Panics unless the client failed, showing its output.
fn assert_refused(out: &Output, what: &str) {
    assert!(!out.status.success(), "{what} should fail:\n{out}");
    eprintln!(
        "{what}: refused as expected: {}",
        out.stderr_str().lines().last().unwrap_or_default()
    );
}

/// The request lines the registry process logged with `status` (Berth's
/// JSON logs on the AWS targets; empty for text logs).
fn logged_with_status(reg: &Registry, status: u16) -> Vec<String> {
    reg.requests(berth_e2e::registry::names::REGISTRY)
        .into_iter()
        .filter(|r| r.status == status)
        .map(|r| r.to_string())
        .collect()
}

// ------------------------------------------------------------------ tests

#[test]
fn token_service_issues_docker_tokens() {
    let Some(reg) = start("token_service_issues_docker_tokens") else {
        return;
    };
    let challenge = challenge(&reg);
    assert_eq!(challenge.realm, reg.url("/service/token"));
    assert_eq!(challenge.service, "berth-registry");

    // A repository request without a token names its scope.
    let resp = http::get(&reg.url("/v2/library/app/manifests/v1"))
        .raw()
        .header("Accept", oci::ACCEPT_ALL_MANIFESTS)
        .send();
    resp.expect_status(401);
    let scoped = Challenge::of(&resp).unwrap_or_else(|| panic!("no challenge:\n{resp}"));
    assert!(
        scoped
            .scopes
            .iter()
            .any(|s| s.starts_with("repository:library/app:") && s.contains("pull")),
        "the challenge should name the repository's pull scope:\n{resp}"
    );

    // The Docker token JSON, for the admin: everything asked for.
    let resp = token_response(
        &reg,
        &["repository:library/app:pull,push"],
        Some(&reg.admin()),
    );
    resp.expect_status(200);
    let body = resp.json();
    let token = body["token"].as_str().unwrap_or_default();
    assert!(token.split('.').count() == 3, "a JWT:\n{resp}");
    assert_eq!(body["access_token"], token, "{resp}");
    assert_eq!(body["expires_in"], 1800, "{resp}");
    assert!(body["issued_at"].is_string(), "{resp}");
    assert_eq!(granted(token, "library/app"), ["pull", "push"], "{resp}");

    // Anonymous: pull on the public project, nothing else.
    let anon = issue_token(&reg, &["repository:library/app:pull,push"], None);
    assert_eq!(granted(&anon, "library/app"), ["pull"]);
    reg.create_project("team", false);
    let anon = issue_token(&reg, &["repository:team/app:pull,push"], None);
    assert!(
        granted(&anon, "team/app").is_empty(),
        "{}",
        access_of(&anon)
    );

    // Wrong credentials: no token at all.
    let resp = token_response(
        &reg,
        &["repository:library/app:pull"],
        Some(&Credentials::new("admin", "Wrong12345")),
    );
    assert_eq!(resp.status, 401, "a wrong password gets no token:\n{resp}");

    // The catalog is the admin's.
    let catalog = http::get(&reg.url("/v2/_catalog")).send();
    catalog.expect_status(200);
    let user = reg.create_user("dev", PASSWORD);
    let dev = issue_token(&reg, &["registry:catalog:*"], Some(&user));
    let resp = http::get(&reg.url("/v2/_catalog"))
        .raw()
        .header("Authorization", &format!("Bearer {dev}"))
        .send();
    assert_denied_insufficient_scope(&resp, "the catalog for a non-admin");

    // A token without push: 403 DENIED, insufficient_scope.
    let pull_only = issue_token(&reg, &["repository:library/app:pull"], Some(&reg.admin()));
    let resp = start_upload_with(&reg, "library/app", Some(&pull_only));
    assert_denied_insufficient_scope(&resp, "an upload with a pull-only token");
}

#[test]
fn docker_login_push_pull() {
    let Some(reg) = start("docker_login_push_pull") else {
        return;
    };
    require_tools(&["dockerd", "containerd"]);
    let docker = Dockerd::start();
    let work = berth_e2e::tempdir("berth-e2e-auth-docker.");
    let image = reg.image("library/auth-docker:1");

    let wrong = docker
        .login_as(&reg.host(), reg.admin_user(), "Wrong12345")
        .run();
    assert_refused(&wrong, "docker login with a wrong password");

    let built_id = docker.build_random_image(work.path(), &image, 1024 * 1024 + 7);
    // Not logged in: the push is refused (anonymous users may only pull).
    let anonymous = docker.docker().args(["push", &image]).run();
    assert_refused(&anonymous, "an anonymous docker push");

    docker.login(&reg);
    let pushed = docker.push(&image);
    docker.docker().args(["rmi", &image]).ok();
    docker.docker().args(["pull", &image]).ok();
    let pulled = docker.inspect(&image);
    assert_eq!(pulled["Id"], built_id.as_str(), "{pulled:#}");
    let want = format!("{}@{pushed}", reg.image("library/auth-docker"));
    assert!(
        pulled["RepoDigests"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x == want.as_str())),
        "RepoDigests should contain {want}: {pulled:#}"
    );

    // Logged out, a public project still pulls.
    docker.docker().args(["logout", &reg.host()]).ok();
    docker.docker().args(["rmi", &image]).ok();
    docker.docker().args(["pull", &image]).ok();
}

#[test]
fn podman_login_as_developer_push_pull() {
    let Some(reg) = start("podman_login_as_developer_push_pull") else {
        return;
    };
    require_tools(&["podman"]);
    reg.create_project("team", false);
    let dev = reg.create_user("dev", PASSWORD);
    reg.add_member("team", "dev", Role::Developer);
    let env = containers(&reg);
    let work = berth_e2e::tempdir("berth-e2e-auth-podman.");
    let (layout, image) = layout_with_image(&work.path().join("src"));
    skopeo_push(&env, &layout, &docker_ref(&reg, "team/src:v1"), Some(&dev)).ok();

    let podman = || env.podman().arg("--log-level=error");
    let src = reg.image("team/src:v1");
    let dst = reg.image("team/dst:v1");
    // Not logged in: a private project does not pull.
    let out = podman()
        .args(["pull", "--tls-verify=false", "--quiet"])
        .arg("--signature-policy")
        .arg(env.policy())
        .arg(&src)
        .run();
    assert_refused(&out, "an anonymous podman pull from a private project");

    podman()
        .args([
            "login",
            "--tls-verify=false",
            "--username",
            &dev.user,
            "--password",
        ])
        .arg(&dev.password)
        .arg(reg.host())
        .ok();
    podman()
        .args(["pull", "--tls-verify=false", "--quiet"])
        .arg("--signature-policy")
        .arg(env.policy())
        .arg(&src)
        .ok();
    podman().args(["tag", &src, &dst]).ok();
    podman()
        .args(["push", "--tls-verify=false", "--quiet"])
        .arg("--signature-policy")
        .arg(env.policy())
        .arg(&dst)
        .ok();
    let inspect = podman().args(["image", "inspect", &dst]).ok().json();
    assert_eq!(inspect[0]["Id"], image.config.hex(), "{inspect:#}");
    // The pushed copy is there for the developer, not for anonymous users.
    skopeo_inspect(&env, &docker_ref(&reg, "team/dst:v1"), Some(&dev)).ok();
    let out = skopeo_inspect(&env, &docker_ref(&reg, "team/dst:v1"), None).run();
    assert_refused(&out, "an anonymous inspect in a private project");
}

#[test]
fn skopeo_creds_copy_and_inspect() {
    let Some(reg) = start("skopeo_creds_copy_and_inspect") else {
        return;
    };
    reg.create_project("team", false);
    let env = containers(&reg);
    let work = berth_e2e::tempdir("berth-e2e-auth-skopeo.");
    let (layout, image) = layout_with_image(&work.path().join("src"));
    let admin = reg.admin();
    let dest = docker_ref(&reg, "team/app:v1");

    let wrong = Credentials::new(reg.admin_user(), "Wrong12345");
    let out = skopeo_push(&env, &layout, &dest, Some(&wrong)).run();
    assert_refused(&out, "a skopeo copy with a wrong password");

    skopeo_push(&env, &layout, &dest, Some(&admin)).ok();
    let raw = skopeo_inspect(&env, &dest, Some(&admin)).ok().stdout;
    assert_eq!(oci::digest_of(&raw), image.manifest.digest);
    let back = work.path().join("back");
    env.skopeo()
        .args(["copy", "--preserve-digests", "--src-tls-verify=false"])
        .arg(format!("--src-creds={}:{}", admin.user, admin.password))
        .arg(&dest)
        .arg(format!("oci:{}:copied", back.display()))
        .ok();
    assert_eq!(
        oci::resolve_tag(&back, "copied")["digest"],
        image.manifest.digest.as_str()
    );
}

#[test]
fn oras_with_a_project_robot() {
    let Some(reg) = start("oras_with_a_project_robot") else {
        return;
    };
    let python = berth_e2e::python();
    require_tools(&[&python]);
    reg.create_project("team", false);
    let robot = reg.create_robot("team", "ci", &["pull", "push"], -1);
    let work = berth_e2e::tempdir("berth-e2e-auth-oras.");
    let file = work.path().join("notes.txt");
    let content = format!("robot artifact {}\n", Rng::new().hex(16));
    std::fs::write(&file, &content).expect("cannot write the artifact file");

    let oras = |command: &str, who: Option<&Credentials>| {
        let cmd = Cmd::new(&python)
            .arg(berth_e2e::scripts_dir().join("oras_e2e.py"))
            .arg(command)
            .args(["--registry", &reg.host(), "--repo", "team/artifacts"])
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("ORAS_E2E_FAST_RETRY", "1");
        match who {
            Some(c) => cmd
                .env("ORAS_E2E_USERNAME", &c.user)
                .env("ORAS_E2E_PASSWORD", &c.password),
            None => cmd
                .env_remove("ORAS_E2E_USERNAME")
                .env_remove("ORAS_E2E_PASSWORD"),
        }
    };
    let creds = robot.credentials();
    let pushed = oras("push-artifact", Some(&creds))
        .args([
            "--tag",
            "v1",
            "--artifact-type",
            "application/vnd.berth.e2e.notes.v1",
        ])
        .arg("--file")
        .arg(&file)
        .ok()
        .json();
    let digest = pushed["digest"].as_str().unwrap_or_default().to_owned();
    let out = work.path().join("pulled");
    oras("pull", Some(&creds))
        .args(["--ref", "v1", "--outdir"])
        .arg(&out)
        .ok();
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap_or_default(),
        content
    );
    // The manifest is there, as the admin sees it.
    let manifest = http::get(&reg.url("/v2/team/artifacts/manifests/v1"))
        .header("Accept", oci::ACCEPT_ALL_MANIFESTS)
        .send();
    manifest.expect_status(200);
    assert_eq!(oci::digest_of(&manifest.body), digest, "{manifest}");

    // Without the robot: nothing.
    let anon = oras("pull", None)
        .args(["--ref", "v1", "--outdir"])
        .arg(work.path().join("anon"))
        .run();
    assert_refused(&anon, "an anonymous oras pull from a private project");

    // Disabled: refused.
    reg.disable_robot(&robot);
    let disabled = oras("pull", Some(&creds))
        .args(["--ref", "v1", "--outdir"])
        .arg(work.path().join("disabled"))
        .run();
    assert_refused(&disabled, "an oras pull as a disabled robot");
    let resp = token_response(&reg, &["repository:team/artifacts:pull"], Some(&creds));
    assert_eq!(
        resp.status, 401,
        "a disabled robot's credentials must get no token:\n{resp}"
    );
}

#[test]
fn guest_member_cannot_push() {
    let Some(reg) = start("guest_member_cannot_push") else {
        return;
    };
    reg.create_project("team", false);
    let guest = reg.create_user("visitor", PASSWORD);
    reg.add_member("team", "visitor", Role::Guest);
    let env = containers(&reg);
    let work = berth_e2e::tempdir("berth-e2e-auth-guest.");
    let (layout, image) = layout_with_image(&work.path().join("src"));
    skopeo_push(
        &env,
        &layout,
        &docker_ref(&reg, "team/app:v1"),
        Some(&reg.admin()),
    )
    .ok();

    // A guest pulls…
    let raw = skopeo_inspect(&env, &docker_ref(&reg, "team/app:v1"), Some(&guest))
        .ok()
        .stdout;
    assert_eq!(oci::digest_of(&raw), image.manifest.digest);
    // …but does not push.
    let out = skopeo_push(
        &env,
        &layout,
        &docker_ref(&reg, "team/app:v2"),
        Some(&guest),
    )
    .run();
    assert_refused(&out, "a guest's push");

    // What the server said: the guest's token holds pull only, and the
    // upload with it is a 403 DENIED (insufficient_scope).
    let token = issue_token(&reg, &["repository:team/app:pull,push"], Some(&guest));
    assert_eq!(
        granted(&token, "team/app"),
        ["pull"],
        "{}",
        access_of(&token)
    );
    let resp = start_upload_with(&reg, "team/app", Some(&token));
    assert_denied_insufficient_scope(&resp, "a guest's upload");
    let denied = logged_with_status(&reg, 403);
    if reg.target().uses_aws() {
        assert!(
            !denied.is_empty(),
            "the registry should have logged the 403s:\n{}",
            reg.log_tail()
        );
    }
    eprintln!("403s in the registry log: {denied:?}");
}

#[test]
fn disabled_and_expired_robots_are_refused() {
    let Some(reg) = start("disabled_and_expired_robots_are_refused") else {
        return;
    };
    reg.create_project("team", false);
    let env = containers(&reg);
    let work = berth_e2e::tempdir("berth-e2e-auth-robots.");
    let (layout, _) = layout_with_image(&work.path().join("src"));

    // Works while enabled…
    let robot = reg.create_robot("team", "builder", &["pull", "push"], 30);
    skopeo_push(
        &env,
        &layout,
        &docker_ref(&reg, "team/app:v1"),
        Some(&robot.credentials()),
    )
    .ok();
    // …not once disabled: neither the client nor a token request.
    reg.disable_robot(&robot);
    let out = skopeo_inspect(
        &env,
        &docker_ref(&reg, "team/app:v1"),
        Some(&robot.credentials()),
    )
    .run();
    assert_refused(&out, "a disabled robot's pull");
    let resp = token_response(
        &reg,
        &["repository:team/app:pull"],
        Some(&robot.credentials()),
    );
    assert_eq!(resp.status, 401, "a disabled robot gets no token:\n{resp}");
    let listed = reg.api("GET", &format!("/robots/{}", robot.id), None);
    listed.expect_status(200);
    assert_eq!(listed.json()["disable"], true, "{listed}");

    // Expired: a robot whose `expires_at` is in the past, if the API lets
    // one be made (Harbor's does not; durations are whole days).
    let expired = reg.create_robot("team", "old", &["pull"], 1);
    let past = expire(&reg, &expired);
    match past {
        Some(at) => {
            eprintln!("robot {} now expires at {at}", expired.name);
            let resp = token_response(
                &reg,
                &["repository:team/app:pull"],
                Some(&expired.credentials()),
            );
            assert_eq!(resp.status, 401, "an expired robot gets no token:\n{resp}");
            let out = skopeo_inspect(
                &env,
                &docker_ref(&reg, "team/app:v1"),
                Some(&expired.credentials()),
            )
            .run();
            assert_refused(&out, "an expired robot's pull");
        }
        None => eprintln!(
            "NOTE: the API sets no `expires_at` in the past (PUT with expires_at, or \
             duration 0): only disabled robots were checked"
        ),
    }
}

/// Tries to make `robot` expired through the API: a PUT with `expires_at`
/// in the past, else one with `duration: 0`. The `expires_at` it then has,
/// if that is in the past.
fn expire(reg: &Registry, robot: &Robot) -> Option<i64> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    for change in [json!({"expires_at": now - 3600}), json!({"duration": 0})] {
        let mut body = robot.body.clone();
        for (k, v) in change.as_object().into_iter().flatten() {
            body[k] = v.clone();
        }
        let resp = reg.api("PUT", &format!("/robots/{}", robot.id), Some(&body));
        eprintln!(
            "PUT /robots/{} with {change}: HTTP {}",
            robot.id, resp.status
        );
        let got = reg.api("GET", &format!("/robots/{}", robot.id), None);
        if got.status != 200 {
            continue;
        }
        let at = got.json()["expires_at"].as_i64().unwrap_or(-1);
        if at >= 0 && at <= now {
            return Some(at);
        }
    }
    None
}

#[test]
fn anonymous_pulls_library_but_never_pushes() {
    let Some(reg) = start("anonymous_pulls_library_but_never_pushes") else {
        return;
    };
    let env = containers(&reg);
    let work = berth_e2e::tempdir("berth-e2e-auth-anon.");
    let (layout, image) = layout_with_image(&work.path().join("src"));
    let public = docker_ref(&reg, "library/pub:v1");
    skopeo_push(&env, &layout, &public, Some(&reg.admin())).ok();

    // Anonymous pulls of the public project work.
    let raw = skopeo_inspect(&env, &public, None).ok().stdout;
    assert_eq!(oci::digest_of(&raw), image.manifest.digest);
    let back = work.path().join("back");
    env.skopeo()
        .args([
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--src-no-creds",
        ])
        .arg(&public)
        .arg(format!("oci:{}:copied", back.display()))
        .ok();
    assert_eq!(
        oci::resolve_tag(&back, "copied")["digest"],
        image.manifest.digest.as_str()
    );
    let blob = http::get(&reg.url(&format!("/v2/library/pub/blobs/{}", image.config.digest)))
        .auth(Auth::Anonymous)
        .follow()
        .send();
    blob.expect_status(200);

    // Anonymous pushes do not, not even into the public project.
    let out = skopeo_push(&env, &layout, &docker_ref(&reg, "library/pub:v2"), None).run();
    assert_refused(&out, "an anonymous push into library");
    let resp = start_upload_with(&reg, "library/pub", None);
    assert_eq!(resp.status, 401, "an upload without a token:\n{resp}");
    let challenge = Challenge::of(&resp).unwrap_or_else(|| panic!("no challenge:\n{resp}"));
    assert!(
        challenge
            .scopes
            .iter()
            .any(|s| s.starts_with("repository:library/pub:") && s.contains("push")),
        "the challenge should ask for push on library/pub:\n{resp}"
    );
    let anon = issue_token(&reg, &["repository:library/pub:pull,push"], None);
    assert_eq!(
        granted(&anon, "library/pub"),
        ["pull"],
        "{}",
        access_of(&anon)
    );
    let resp = start_upload_with(&reg, "library/pub", Some(&anon));
    assert_denied_insufficient_scope(&resp, "an anonymous upload into library");
}

#[test]
fn push_into_a_missing_project_is_refused_clearly() {
    let Some(reg) = start("push_into_a_missing_project_is_refused_clearly") else {
        return;
    };
    let env = containers(&reg);
    let work = berth_e2e::tempdir("berth-e2e-auth-missing.");
    let (layout, _) = layout_with_image(&work.path().join("src"));
    let out = skopeo_push(
        &env,
        &layout,
        &docker_ref(&reg, "nosuchproject/app:v1"),
        Some(&reg.admin()),
    )
    .run();
    assert_refused(&out, "a push into a missing project");

    // As the server says it, to the admin, with the admin's token.
    let resp = http::post(&reg.url("/v2/nosuchproject/app/blobs/uploads/")).send();
    assert!(
        (400..500).contains(&resp.status) && resp.status != 401,
        "an upload into a missing project should be a 4xx other than 401:\n{resp}"
    );
    let body = resp.body_str();
    assert!(
        body.contains("nosuchproject")
            && (body.contains("not found")
                || body.contains("exist")
                || body.contains("NAME_UNKNOWN")),
        "the error should say that project nosuchproject does not exist:\n{resp}"
    );
    eprintln!("a push into a missing project: {resp}");
}
