//! `berth`: the all-in-one local server and operator CLI.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth::config::{
    Backend, DEFAULT_ADDR, DEFAULT_DATA_DIR, LogFormat, ServeConfig, parse_public_url,
};
use berth::http::server::{
    DEFAULT_BODY_IDLE_TIMEOUT_SECS, DEFAULT_HEADER_TIMEOUT_SECS, DEFAULT_MAX_CONNECTIONS,
    MAX_CONNECTIONS_CEILING,
};
use berth::http::{AppState, Limits, UploadRouting, app};
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
    /// Run every Lambda function's router behind a local stand-in for API
    /// Gateway: routes from infra/routes.json, requests as Lambda events,
    /// the 10 MB / 6 MB limits enforced as in AWS.
    Stack(ServeArgs),
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
    #[command(flatten)]
    uploads: UploadArgs,
    #[command(flatten)]
    limits: LimitArgs,
}

/// Limits on slow and stalled clients (`berth::http::server`).
#[derive(clap::Args)]
struct LimitArgs {
    /// Seconds a client has to send a request's headers; also how long an
    /// idle keep-alive connection stays open.
    #[arg(long, env = "BERTH_HEADER_TIMEOUT", default_value_t = DEFAULT_HEADER_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout: u64,
    /// Seconds a request body may deliver no bytes (or a client may read
    /// none of a response) before the request fails and its connection closes.
    #[arg(long, env = "BERTH_BODY_IDLE_TIMEOUT", default_value_t = DEFAULT_BODY_IDLE_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..))]
    body_idle_timeout: u64,
    /// Open connections at most; beyond it new ones are answered 503.
    #[arg(long, env = "BERTH_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS as u64,
          value_parser = clap::value_parser!(u64).range(1..=MAX_CONNECTIONS_CEILING as u64))]
    max_connections: u64,
}

impl LimitArgs {
    /// The limits, after raising the open-files limit for them.
    fn limits(&self) -> Limits {
        let max_connections =
            usize::try_from(self.max_connections).unwrap_or(MAX_CONNECTIONS_CEILING);
        berth::http::server::prepare_fd_limit(max_connections);
        Limits {
            header_timeout: Duration::from_secs(self.header_timeout),
            body_idle_timeout: Duration::from_secs(self.body_idle_timeout),
            max_connections,
            ..Limits::default()
        }
    }
}

/// Where upload sessions continue (DESIGN §4, upload gateway).
#[derive(clap::Args)]
struct UploadArgs {
    /// Base URL of an upload gateway; upload `Location`s point there.
    #[arg(long, env = "BERTH_UPLOAD_GATEWAY_URL", value_parser = parse_public_url)]
    upload_gateway_url: Option<String>,
    /// Key that signs upload-session tokens (shared by API and gateway).
    #[arg(long, env = "BERTH_UPLOAD_SECRET", hide_env_values = true)]
    upload_secret: Option<String>,
    /// Run as the upload gateway: serve upload sessions only, with a valid token.
    #[arg(long, env = "BERTH_UPLOAD_GATEWAY", default_value_t = false)]
    gateway: bool,
}

impl UploadArgs {
    fn routing(&self) -> Result<UploadRouting, String> {
        UploadRouting::configure(
            self.upload_gateway_url.clone(),
            self.upload_secret.as_deref(),
            self.gateway,
        )
    }
}

impl ServeArgs {
    fn config(&self) -> ServeConfig {
        ServeConfig {
            addr: self.addr,
            data_dir: self.data_dir.clone(),
            backend: self.backend,
            public_url: self.public_url.clone(),
            log_format: self.log_format,
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG").unwrap_or_else(|_| "info".into());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// The registry over the configured backend, with the request settings.
async fn app_state(cfg: &ServeConfig, uploads: UploadRouting) -> Result<Arc<AppState>, String> {
    let registry = match cfg.backend {
        Backend::Local => {
            let (kv, blobs) = berth::store::open_local(&cfg.data_dir).await?;
            Registry::new(kv, blobs, RegistryOptions::default())
        }
        Backend::Aws => berth::store::aws::registry_from_env().await?,
    };
    Ok(Arc::new(AppState {
        registry,
        public_url: cfg.public_url.clone(),
        uploads,
    }))
}

async fn bind(
    cfg: &ServeConfig,
) -> Result<(tokio::net::TcpListener, std::net::SocketAddr), String> {
    let listener = tokio::net::TcpListener::bind(cfg.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    Ok((listener, addr))
}

async fn serve(cfg: ServeConfig, uploads: UploadRouting, limits: Limits) -> Result<(), String> {
    let state = app_state(&cfg, uploads).await?;
    let (listener, addr) = bind(&cfg).await?;
    match cfg.backend {
        Backend::Local => {
            tracing::info!(%addr, data_dir = %cfg.data_dir.display(), "berth is serving")
        }
        Backend::Aws => tracing::info!(%addr, "berth is serving (aws backend)"),
    }
    berth::http::serve(listener, app(state), limits, shutdown())
        .await
        .map_err(|e| e.to_string())
}

/// `berth stack`: the functions as Lambda runs them, on one port.
async fn stack(cfg: ServeConfig, uploads: UploadRouting, limits: Limits) -> Result<(), String> {
    use berth::lambda::apigw::GatewayConfig;
    use berth::lambda::stack::Stack;
    let state = app_state(&cfg, uploads).await?;
    // Clients reach the stack over plain HTTP, so that is what the
    // functions are told (API Gateway itself would say https/443).
    let gateway = GatewayConfig {
        forwarded_proto: "http".to_owned(),
        forwarded_port: cfg.addr.port(),
        ..GatewayConfig::default()
    };
    let stack = Stack::registry(state, gateway).map_err(|e| e.to_string())?;
    let (listener, addr) = bind(&cfg).await?;
    tracing::info!(%addr, backend = ?cfg.backend, "berth stack is serving (API Gateway + Lambda emulation)");
    berth::lambda::stack::serve(listener, stack, limits, shutdown())
        .await
        .map_err(|e| e.to_string())
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
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
            let cfg = args.config();
            init_tracing(cfg.log_format);
            let started = match args.uploads.routing() {
                Ok(uploads) => serve(cfg, uploads, args.limits.limits()).await,
                Err(e) => Err(e),
            };
            if let Err(e) = started {
                tracing::error!("{e}");
                eprintln!("berth: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
        Command::Stack(args) => {
            let cfg = args.config();
            init_tracing(cfg.log_format);
            let started = match args.uploads.routing() {
                Ok(uploads) => stack(cfg, uploads, args.limits.limits()).await,
                Err(e) => Err(e),
            };
            if let Err(e) = started {
                tracing::error!("{e}");
                eprintln!("berth: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    std::process::ExitCode::SUCCESS
}
