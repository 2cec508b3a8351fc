//! Builds the web portal (`portal/`, a Vite app) and embeds its files in
//! the `berth` binary, which serves them (`berth::http::portal`).
//!
//! Where the files come from, first match wins:
//!
//! 1. `BERTH_PORTAL_DIST=/path`: a prebuilt `dist` (must hold `index.html`;
//!    a relative path is taken from the repository root).
//! 2. `BERTH_PORTAL_SKIP_BUILD=1`: `portal/dist` as it is, else a placeholder.
//! 3. No Node >= 18 with npm, no `portal/package.json` or no
//!    `portal/package-lock.json`: `portal/dist` as it is, else a
//!    placeholder page saying how to get the portal; cargo prints a warning.
//! 4. Otherwise `npm ci` (when `node_modules` is missing or older than the
//!    lock file) and `npm run build` (when `dist` is older than a source),
//!    output captured. If either fails, so does the cargo build, printing
//!    npm's output: CI must not ship a placeholder for a broken portal.
//!
//! The files are copied into `OUT_DIR` with a gzip copy each (when it is
//! smaller) and listed in `OUT_DIR/portal_assets.rs`, a static table of
//! `berth::http::PortalAsset` with `include_bytes!` of those copies:
//! copies, so that rebuilding `portal/dist` by hand (new hashed names, old
//! ones deleted) never leaves the crate pointing at missing files.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;
use std::{env, fs};

use sha2::{Digest as _, Sha256};

const SKIP_BUILD: &str = "BERTH_PORTAL_SKIP_BUILD";
const PREBUILT: &str = "BERTH_PORTAL_DIST";
const MIN_NODE: u32 = 18;

/// Portal inputs whose change means a rebuild. They are watched even while
/// missing (cargo then reruns this script every build): that is how their
/// creation is noticed.
const SOURCES: [&str; 5] = [
    "src",
    "index.html",
    "package.json",
    "package-lock.json",
    "vite.config.ts",
];
/// Inputs watched only if present.
const OPTIONAL_SOURCES: [&str; 3] = ["public", "tsconfig.json", "tsconfig.node.json"];

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// Where the embedded files came from (`berth` logs it at start).
#[derive(Clone, Copy)]
enum Origin {
    Built,
    Prebuilt,
    Existing,
    Placeholder,
}

impl Origin {
    fn name(self) -> &'static str {
        match self {
            Origin::Built => "built",
            Origin::Prebuilt => "prebuilt",
            Origin::Existing => "existing",
            Origin::Placeholder => "placeholder",
        }
    }
}

fn run() -> Result<(), String> {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed={SKIP_BUILD}");
    println!("cargo:rerun-if-env-changed={PREBUILT}");
    let manifest_dir = PathBuf::from(env_var("CARGO_MANIFEST_DIR").ok_or("no CARGO_MANIFEST_DIR")?);
    let root = manifest_dir
        .parent()
        .and_then(Path::parent)
        .ok_or("functions/berth is not two levels below the repository root")?
        .to_owned();
    let out_dir = PathBuf::from(env_var("OUT_DIR").ok_or("no OUT_DIR")?);
    let portal = root.join("portal");
    let dist = portal.join("dist");

    let (files, origin) = if let Some(prebuilt) = env_var(PREBUILT) {
        let prebuilt = root.join(prebuilt);
        if !prebuilt.join("index.html").is_file() {
            return Err(format!(
                "{PREBUILT}={} holds no index.html",
                prebuilt.display()
            ));
        }
        watch(&prebuilt);
        (Some(prebuilt), Origin::Prebuilt)
    } else if env_var(SKIP_BUILD).is_some_and(|v| v != "0" && v != "false") {
        existing_or_placeholder(
            &dist,
            &format!("{SKIP_BUILD} is set"),
            &format!("Unset {SKIP_BUILD} to build it."),
        )
    } else {
        for source in SOURCES {
            watch(&portal.join(source));
        }
        for source in OPTIONAL_SOURCES {
            let path = portal.join(source);
            if path.exists() {
                watch(&path);
            }
        }
        match cannot_build(&portal) {
            Some(why) => existing_or_placeholder(
                &dist,
                &why,
                &format!(
                    "Install Node >= {MIN_NODE} and npm, then `touch portal/package.json` \
                     and rebuild."
                ),
            ),
            None => {
                build(&portal, &dist)?;
                (Some(dist), Origin::Built)
            }
        }
    };

    let assets = match &files {
        Some(dir) => collect(dir)?,
        None => vec![Asset {
            url: "/index.html".to_owned(),
            body: PLACEHOLDER.as_bytes().to_vec(),
        }],
    };
    embed(&out_dir, &assets, origin)
}

fn env_var(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.is_empty())
}

fn watch(path: &Path) {
    println!("cargo:rerun-if-changed={}", path.display());
}

fn warn(message: &str) {
    println!("cargo:warning={message}");
}

/// `dist` if it holds a build (not rebuilt: it may be stale), else the
/// placeholder, with a warning naming `why` the portal was not built and
/// `how` to build it.
fn existing_or_placeholder(dist: &Path, why: &str, how: &str) -> (Option<PathBuf>, Origin) {
    if dist.join("index.html").is_file() {
        warn(&format!(
            "web portal not rebuilt ({why}): embedding {} as it is",
            dist.display()
        ));
        watch(dist);
        (Some(dist.to_owned()), Origin::Existing)
    } else {
        warn(&format!(
            "web portal not built ({why}): `berth serve` shows a placeholder page at /. {how}"
        ));
        (None, Origin::Placeholder)
    }
}

/// Why the portal cannot be built here, if it cannot.
fn cannot_build(portal: &Path) -> Option<String> {
    if !portal.join("package.json").is_file() {
        return Some(format!("{} has no package.json", portal.display()));
    }
    if !portal.join("package-lock.json").is_file() {
        return Some(format!(
            "{} has no package-lock.json (run `npm install` there and commit it)",
            portal.display()
        ));
    }
    let node = Command::new("node").arg("--version").output();
    let version = match node {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        _ => return Some("`node` was not found".to_owned()),
    };
    let major = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    if major.is_none_or(|m| m < MIN_NODE) {
        return Some(format!("Node {version} is older than {MIN_NODE}"));
    }
    match npm(portal).arg("--version").output() {
        Ok(out) if out.status.success() => None,
        _ => Some("`npm` was not found".to_owned()),
    }
}

fn npm(portal: &Path) -> Command {
    let mut cmd = Command::new(if cfg!(windows) { "npm.cmd" } else { "npm" });
    // Cargo sets DEBUG=true for build scripts; the `debug` package, which
    // Vite's tools use, would read it as a logging namespace.
    cmd.current_dir(portal).env_remove("DEBUG");
    cmd
}

/// `npm ci` if the dependencies are missing or stale, then `npm run build`
/// if `dist` is older than a source.
fn build(portal: &Path, dist: &Path) -> Result<(), String> {
    // npm rewrites this file on every install; comparing with it rather
    // than with the directory ignores unrelated writes inside node_modules.
    let installed = mtime(&portal.join("node_modules").join(".package-lock.json"));
    let locked = mtime(&portal.join("package-lock.json"));
    let install = installed.is_none() || locked > installed;
    if install {
        npm_step(portal, &["ci", "--no-audit", "--no-fund"])?;
    }
    let built = mtime(&dist.join("index.html"));
    let newest_source = SOURCES
        .iter()
        .chain(&OPTIONAL_SOURCES)
        .filter_map(|s| newest(&portal.join(s)))
        .max();
    if install || built.is_none() || newest_source >= built {
        npm_step(portal, &["run", "build"])?;
    }
    if !dist.join("index.html").is_file() {
        return Err(format!(
            "`npm run build` in {} left no dist/index.html",
            portal.display()
        ));
    }
    Ok(())
}

/// Runs npm with its output captured; on failure, the error shows it.
fn npm_step(portal: &Path, args: &[&str]) -> Result<(), String> {
    let shown = format!("npm {}", args.join(" "));
    let out = npm(portal)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `{shown}` in {}: {e}", portal.display()))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "`{shown}` failed in {} ({}); set {SKIP_BUILD}=1 to build berth without \
         rebuilding the portal.\n{}",
        portal.display(),
        out.status,
        output_text(&out)
    ))
}

fn output_text(out: &Output) -> String {
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    text
}

fn mtime(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The newest modification time of a file, or of anything in a directory.
fn newest(path: &Path) -> Option<SystemTime> {
    let meta = fs::metadata(path).ok()?;
    let own = meta.modified().ok();
    if !meta.is_dir() {
        return own;
    }
    let entries = fs::read_dir(path).ok()?;
    entries
        .filter_map(Result::ok)
        .filter_map(|e| newest(&e.path()))
        .chain(own)
        .max()
}

struct Asset {
    /// The URL path, percent-encoded where a byte is not URL-safe.
    url: String,
    body: Vec<u8>,
}

/// Every file below `dir` except hidden ones (`.vite/`, `.DS_Store`), in
/// path order.
fn collect(dir: &Path) -> Result<Vec<Asset>, String> {
    let mut assets = Vec::new();
    walk(dir, "", &mut assets)?;
    assets.sort_by(|a, b| a.url.cmp(&b.url));
    Ok(assets)
}

fn walk(dir: &Path, prefix: &str, assets: &mut Vec<Asset>) -> Result<(), String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(format!(
                "{}: file names must be UTF-8",
                entry.path().display()
            ));
        };
        if name.starts_with('.') {
            continue;
        }
        let url = format!("{prefix}/{}", url_encode(name));
        let path = entry.path();
        if path.is_dir() {
            walk(&path, &url, assets)?;
        } else {
            let body =
                fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            assets.push(Asset { url, body });
        }
    }
    Ok(())
}

/// Percent-encodes what is not an RFC 3986 unreserved character or a
/// sub-delimiter, as a browser sends such a name.
fn url_encode(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Writes the copies and the table to `OUT_DIR`.
fn embed(out_dir: &Path, assets: &[Asset], origin: Origin) -> Result<(), String> {
    let files = out_dir.join("portal");
    if files.exists() {
        fs::remove_dir_all(&files).map_err(|e| format!("cannot clear {}: {e}", files.display()))?;
    }
    fs::create_dir_all(&files).map_err(|e| format!("cannot create {}: {e}", files.display()))?;
    let mut table =
        String::from("// Generated by functions/berth/build.rs: the embedded web portal.\n\n");
    let _ = writeln!(
        table,
        "/// Where the files came from: built, prebuilt, existing or placeholder.\n\
         pub(crate) const ORIGIN: &str = {:?};\n",
        origin.name()
    );
    table.push_str("pub(crate) static ASSETS: &[::berth::http::PortalAsset] = &[\n");
    for (i, asset) in assets.iter().enumerate() {
        let body_path = files.join(i.to_string());
        write_file(&body_path, &asset.body)?;
        let gzip = gzip(&asset.body)?;
        // Worth a second copy only if it saves a tenth; images and fonts
        // are compressed already.
        let gzip_path = (gzip.len() < asset.body.len() / 10 * 9)
            .then(|| files.join(format!("{i}.gz")))
            .map(|p| write_file(&p, &gzip).map(|()| p))
            .transpose()?;
        let etag = hex::encode(Sha256::digest(&asset.body));
        let _ = writeln!(
            table,
            "    ::berth::http::PortalAsset {{\n        path: {:?},\n        content_type: {:?},\n        \
             body: include_bytes!({:?}),\n        gzip: {},\n        etag: {:?},\n    }},",
            asset.url,
            content_type(&asset.url),
            path_str(&body_path)?,
            match &gzip_path {
                Some(p) => format!("Some(include_bytes!({:?}))", path_str(p)?),
                None => "None".to_owned(),
            },
            etag,
        );
    }
    table.push_str("];\n");
    write_file(&out_dir.join("portal_assets.rs"), table.as_bytes())
}

fn path_str(path: &Path) -> Result<&str, String> {
    path.to_str()
        .ok_or_else(|| format!("{}: OUT_DIR must be UTF-8", path.display()))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn gzip(body: &[u8]) -> Result<Vec<u8>, String> {
    // The builder's header has no name and mtime 0: the same input always
    // compresses to the same bytes.
    let mut enc = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::best());
    enc.write_all(body)
        .and_then(|()| enc.finish())
        .map_err(|e| format!("gzip: {e}"))
}

fn content_type(url: &str) -> &'static str {
    let ext = url.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("avif") => "image/avif",
        Some("ico") => "image/x-icon",
        Some("woff") => "font/woff",
        Some("woff2") => "font/woff2",
        Some("ttf") => "font/ttf",
        Some("otf") => "font/otf",
        Some("wasm") => "application/wasm",
        Some("txt") => "text/plain; charset=utf-8",
        Some("xml") => "application/xml",
        _ => "application/octet-stream",
    }
}

/// The page served when the portal could not be built. Self-contained:
/// the portal's security policy allows inline styles, not scripts.
const PLACEHOLDER: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Berth: web portal not built</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 42rem; margin: 3rem auto; padding: 0 1rem; color: #1d2733; background: #fff; }
  code, pre { font-family: ui-monospace, monospace; background: #eef1f4; border-radius: 4px; }
  code { padding: 0 .25em; }
  pre { padding: .75rem 1rem; overflow-x: auto; }
  @media (prefers-color-scheme: dark) {
    body { color: #dde3ea; background: #14191f; }
    code, pre { background: #232b34; }
  }
</style>
</head>
<body>
<main>
<h1>The web portal was not built into this binary</h1>
<p>This <code>berth</code> was compiled without Node.js (or with
<code>BERTH_PORTAL_SKIP_BUILD</code> set and no <code>portal/dist</code>), so it
carries this page instead of the portal. The registry (<code>/v2/</code>) and the
management API (<code>/api/v2.0/</code>) work all the same.</p>
<p>To get the portal, install Node.js 18 or newer with npm (on Debian:
<code>apt-get install nodejs npm</code>), then rebuild from the repository root:</p>
<pre>touch portal/package.json
cargo build --release -p berth</pre>
<p>The build runs <code>npm ci</code> and <code>npm run build</code> in <code>portal/</code>
and embeds <code>portal/dist</code>. To embed a portal built elsewhere, set
<code>BERTH_PORTAL_DIST=/path/to/dist</code> when building.</p>
</main>
</body>
</html>
"#;
