//! `berth`: the all-in-one local server and operator CLI.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use berth::config::{Backend, DEFAULT_ADDR, DEFAULT_DATA_DIR, LogFormat, ServeConfig, parse_public_url};
use berth::http::{AppState, app};
use berth::registry::{Registry, RegistryOptions};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "berth", version, about = "Berth container registry")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the registry: every API, in one process.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "BERTH_ADDR", default_value = DEFAULT_ADDR)]
    addr: SocketAddr,
    /// Where embedded metadata and blobs live.
    #[arg(long, env = "BERTH_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Storage backend: local (embedded) or aws.
    #[arg(long, env = "BERTH_BACKEND", default_value = "local")]
    backend: Backend,
    /// The URL clients see (used in Location headers and token realms).
    #[arg(long, env = "BERTH_PUBLIC_URL", value_parser = parse_public_url)]
    public_url: Option<String>,
    /// Log format: text or json.
    #[arg(long, env = "BERTH_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
}

impl From<ServeArgs> for ServeConfig {
    fn from(a: ServeArgs) -> Self {
        Self { addr: a.addr, data_dir: a.data_dir, backend: a.backend, public_url: a.public_url, log_format: a.log_format }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn serve(cfg: ServeConfig) -> Result<(), String> {
    let registry = match cfg.backend {
        Backend::Local => {
            let (kv, blobs) = berth::store::open_local(&cfg.data_dir).await?;
            Registry::new(kv, blobs, RegistryOptions::default())
        }
        Backend::Aws => return Err("the aws backend is not built into this binary yet".to_owned()),
    };
    let state = Arc::new(AppState { registry, public_url: cfg.public_url.clone() });
    let listener = tokio::net::TcpListener::bind(cfg.addr).await.map_err(|e| format!("cannot listen on {}: {e}", cfg.addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%addr, data_dir = %cfg.data_dir.display(), "berth is serving");
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown())
        .await
        .map_err(|e| e.to_string())
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let cfg = ServeConfig::from(args);
            init_tracing(cfg.log_format);
            if let Err(e) = serve(cfg).await {
                tracing::error!("{e}");
                eprintln!("berth: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    std::process::ExitCode::SUCCESS
}
