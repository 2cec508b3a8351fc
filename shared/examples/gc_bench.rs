//! Garbage-collection benchmark (not a test): fills a store with blobs,
//! most of them unreferenced, then runs one collection — repositories and
//! blob shards fanned out over workers, as the queue tasks do — while a
//! pusher keeps pushing images, and prints the sweep throughput and the
//! pushes' success rate and latency.
//!
//! ```sh
//! tests/bench/gc                                   # both backends, default sizes
//! BENCH_GC_BLOBS=100000 cargo run --release -p berth-shared --features local,aws \
//!     --example gc_bench -- local /tmp/gc-bench
//! eval "$(localstack/moto-up)"; cargo run … --example gc_bench -- aws
//! ```
#![allow(clippy::unwrap_used)] // a benchmark: a failure is a panic

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use berth::oci::{Reference, RepoName, sha256_digest};
use berth::registry::keys::GC_SHARDS;
use berth::registry::{Registry, RegistryOptions};
use berth::store::{ByteStream, now_secs};
use bytes::Bytes;
use futures_util::StreamExt;

fn stream(data: Vec<u8>) -> ByteStream {
    Box::pin(futures_util::stream::once(
        async move { Ok(Bytes::from(data)) },
    ))
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn registry(backend: &str, dir: &str) -> Registry {
    let opts = RegistryOptions {
        gc_grace: Duration::ZERO,
        ..RegistryOptions::default()
    };
    match backend {
        "aws" => {
            let aws = berth::wiring::Aws::from_env()
                .await
                .expect("AWS environment (moto-up)");
            berth::wiring::aws_registry(&aws, opts)
        }
        _ => berth::wiring::local_registry(std::path::Path::new(dir), opts)
            .await
            .expect("local store"),
    }
}

fn image(config: &str, layers: &[Vec<u8>]) -> Vec<u8> {
    let layers: Vec<_> = layers
        .iter()
        .map(|l| serde_json::json!({"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":sha256_digest(l).to_string(),"size":l.len()}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType":"application/vnd.oci.image.config.v1+json","digest":sha256_digest(config.as_bytes()).to_string(),"size":config.len()},
        "layers": layers,
    }))
    .unwrap_or_default()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let backend = args.get(1).map_or("local", String::as_str).to_owned();
    let dir = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| "/tmp/berth-gc-bench".into());
    let blobs = env_usize("BENCH_GC_BLOBS", 100_000);
    let referenced_pct = env_usize("BENCH_GC_REFERENCED_PCT", 10);
    let repos = env_usize("BENCH_GC_REPOS", 50);
    let workers = env_usize("BENCH_GC_WORKERS", 16);
    let reg = registry(&backend, &dir).await;
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let names: Vec<RepoName> = (0..repos)
        .map(|i| format!("bench{run}/r{i}").parse().unwrap())
        .collect();

    // Fill: tiny blobs; every tenth repository-batch referenced by a manifest.
    let t = Instant::now();
    let per_repo = blobs / repos;
    futures_util::stream::iter(0..repos)
        .for_each_concurrent(workers, |r| {
            let (reg, repo, run) = (reg.clone(), names[r].clone(), run.clone());
            async move {
                let mut kept = Vec::new();
                for i in 0..per_repo {
                    let data = format!("{run}-{r}-{i}").into_bytes();
                    let d = sha256_digest(&data);
                    reg.monolithic_upload(&repo, &d, stream(data.clone()))
                        .await
                        .unwrap();
                    if i * 100 < per_repo * referenced_pct {
                        kept.push(data);
                    }
                }
                for (n, chunk) in kept.chunks(20).enumerate() {
                    let config = format!("{{\"bench\":\"{run}-{r}-{n}\"}}");
                    let cd = sha256_digest(config.as_bytes());
                    reg.monolithic_upload(&repo, &cd, stream(config.clone().into_bytes()))
                        .await
                        .unwrap();
                    let m = image(&config, chunk);
                    let tag = Reference::Tag(format!("t{n}").parse().unwrap());
                    reg.put_manifest(
                        &repo,
                        &tag,
                        Some("application/vnd.oci.image.manifest.v1+json"),
                        Bytes::from(m),
                    )
                    .await
                    .unwrap();
                }
            }
        })
        .await;
    let filled = t.elapsed();
    eprintln!(
        "filled {} blobs in {} repositories in {:.1}s",
        per_repo * repos,
        repos,
        filled.as_secs_f64()
    );
    tokio::time::sleep(reg.options().grace() + Duration::from_secs(1)).await;

    // A pusher during the collection.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let pusher = {
        let (reg, stop, ok, failed, repo, run) = (
            reg.clone(),
            stop.clone(),
            ok.clone(),
            failed.clone(),
            names[0].clone(),
            run.clone(),
        );
        tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let layer = format!("live-{run}-{i}").into_bytes();
                let config = format!("{{\"live\":{i}}}");
                let t = Instant::now();
                let pushed = async {
                    for b in [layer.clone(), config.clone().into_bytes()] {
                        reg.monolithic_upload(&repo, &sha256_digest(&b), stream(b.clone()))
                            .await?;
                    }
                    let m = image(&config, std::slice::from_ref(&layer));
                    let tag = Reference::Tag(format!("live{i}").parse().unwrap());
                    reg.put_manifest(
                        &repo,
                        &tag,
                        Some("application/vnd.oci.image.manifest.v1+json"),
                        Bytes::from(m),
                    )
                    .await
                }
                .await;
                lat.push(t.elapsed());
                match pushed {
                    Ok(_) => ok.fetch_add(1, Ordering::SeqCst),
                    Err(_) => failed.fetch_add(1, Ordering::SeqCst),
                };
            }
            lat
        })
    };

    let started = now_secs();
    let t = Instant::now();
    let links = Arc::new(AtomicU64::new(0));
    futures_util::stream::iter(names.clone())
        .for_each_concurrent(workers, |repo| {
            let (reg, links) = (reg.clone(), links.clone());
            async move {
                let s = reg
                    .gc_repository(&repo, started, true, false)
                    .await
                    .unwrap();
                links.fetch_add(s.links_removed, Ordering::SeqCst);
            }
        })
        .await;
    let link_phase = t.elapsed();
    let deleted = Arc::new(AtomicU64::new(0));
    futures_util::stream::iter(GC_SHARDS)
        .for_each_concurrent(workers, |s| {
            let (reg, deleted) = (reg.clone(), deleted.clone());
            async move {
                let b = reg.gc_blobs(s, started, false).await.unwrap();
                deleted.fetch_add(b.deleted, Ordering::SeqCst);
            }
        })
        .await;
    let total = t.elapsed();
    stop.store(true, Ordering::SeqCst);
    let mut lat = pusher.await.unwrap();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let (ok, failed) = (ok.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    let links = links.load(Ordering::SeqCst);
    let deleted = deleted.load(Ordering::SeqCst);
    println!(
        "backend={backend} blobs={} unreferenced_links_removed={links} blobs_deleted={deleted} \
         link_phase={:.1}s total={:.1}s sweep={:.0} blobs/s | pushes during gc: {ok} ok, {failed} failed, \
         p50={:.1}ms p99={:.1}ms",
        per_repo * repos,
        link_phase.as_secs_f64(),
        total.as_secs_f64(),
        deleted as f64 / total.as_secs_f64().max(1e-9),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
    );
}
