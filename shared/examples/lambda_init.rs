//! Measures each Lambda function binary's initialisation: the time from
//! spawning the process to its first `GET …/invocation/next` on a local
//! Runtime API (what Lambda bills as the init phase), over many starts.
//!
//! ```text
//! cargo build --release -p berth-token -p berth-manifest …
//! cargo run --release -p berth-shared --features lambda --example lambda_init -- \
//!     [--starts 20] target/release/berth-token target/release/berth-manifest …
//! ```
//!
//! The functions get the environment the template gives them, with AWS
//! pointed at a closed local port: a network call at init would fail or
//! stall, and show. Prints median, min and max per binary; asserts nothing.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth::lambda::runtime_api::RuntimeApi;

fn env() -> Vec<(String, String)> {
    [
        ("METADATA_TABLE", "berth-metadata"),
        ("BLOB_BUCKET", "berth-blobs"),
        ("AWS_ACCESS_KEY_ID", "measure"),
        ("AWS_SECRET_ACCESS_KEY", "measure"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("BERTH_UPLOAD_GATEWAY_URL", "https://uploads.example.com"),
        (
            "BERTH_UPLOAD_SECRET_ARN",
            "arn:aws:secretsmanager:us-east-1:000000000000:secret:berth-upload-key",
        ),
        ("BERTH_LOG", "warn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut starts = 20usize;
    let mut binaries = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--starts" => starts = args.next().ok_or("--starts needs a number")?.parse()?,
            _ => binaries.push(PathBuf::from(a)),
        }
    }
    if binaries.is_empty() {
        return Err("name the function binaries to measure".into());
    }
    println!(
        "{:<12} {:>10} {:>10} {:>10}  (init: spawn to first poll, {starts} starts)",
        "function", "median", "min", "max"
    );
    for bin in binaries {
        let name = bin
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("function")
            .trim_start_matches("berth-")
            .to_owned();
        let mut times = Vec::with_capacity(starts);
        for _ in 0..starts {
            let api = RuntimeApi::start().await?;
            let spawned = Instant::now();
            let mut process = api.spawn(&bin, &name, &env())?;
            let polled = api.first_poll(Duration::from_secs(10)).await;
            let exited = process.exited();
            drop(process);
            match polled {
                Some(t) => times.push(t - spawned),
                None => {
                    return Err(
                        format!("{name} never polled for an event (exit: {exited:?})").into(),
                    );
                }
            }
        }
        times.sort();
        println!(
            "{name:<12} {:>10} {:>10} {:>10}",
            ms(times[times.len() / 2]),
            ms(times[0]),
            ms(times[times.len() - 1])
        );
    }
    Ok(())
}
