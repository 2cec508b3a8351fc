//! `berth`: the all-in-one local server and operator CLI.

mod cli;
mod portal;

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
use berth::http::{AppState, Limits, Portal, UploadRouting, app};
use berth::registry::{Registry, RegistryOptions};
use berth::wiring;
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
    #[command(flatten)]
    Api(cli::ApiCommand),
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
    /// Seconds between the job workers' scheduled rounds: due scheduled
    /// collections and retention runs, stalled tasks, expired upload
    /// sessions (0: never).
    #[arg(long, env = "BERTH_SWEEP_INTERVAL", default_value_t = 60)]
    sweep_interval: u64,
    /// Webhook targets and registry endpoints may be loopback or private
    /// addresses (link-local and metadata addresses never are); the
    /// `webhook_allow_private` setting of `/configurations` overrides.
    #[arg(long, env = "BERTH_WEBHOOK_ALLOW_PRIVATE")]
    webhook_allow_private: bool,
    /// Seconds garbage collection leaves unreferenced blobs, links and
    /// untagged artifacts alone (longer than the slowest push; 0: the
    /// shortest the design allows, 4 s).
    #[arg(long, env = "BERTH_GC_GRACE", default_value_t = berth::registry::DEFAULT_GC_GRACE.as_secs())]
    gc_grace: u64,
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

/// Where upload sessions continue (DESIGN §4, upload gateway). The key
/// that signs upload tokens comes only from the environment
/// (`BERTH_UPLOAD_SECRET`, or `BERTH_UPLOAD_SECRET_ARN` on AWS), never
/// from the command line, which other users of the machine can read.
#[derive(clap::Args)]
struct UploadArgs {
    /// Base URL of an upload gateway; upload `Location`s point there.
    #[arg(long, env = "BERTH_UPLOAD_GATEWAY_URL", value_parser = parse_public_url)]
    upload_gateway_url: Option<String>,
    /// Run as the upload gateway: serve upload sessions only, with a valid
    /// token. Needs --public-url: the registry's URL, where finished blobs
    /// are found.
    #[arg(long, env = "BERTH_UPLOAD_GATEWAY", default_value_t = false)]
    gateway: bool,
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

/// The registry over the configured backend, with the request settings,
/// (except on the upload gateway) the job queue its workers take from,
/// and the web portal, if this process serves it.
async fn app_state(args: &ServeArgs, portal: Option<Portal>) -> Result<Arc<AppState>, String> {
    let cfg = &args.config();
    berth::outbound::set_default_allow_private(args.webhook_allow_private);
    let uploads = &args.uploads;
    let opts = RegistryOptions {
        gc_grace: Duration::from_secs(args.gc_grace),
        ..RegistryOptions::default()
    };
    let (registry, aws) = match cfg.backend {
        Backend::Local => (wiring::local_registry(&cfg.data_dir, opts).await?, None),
        Backend::Aws => {
            let aws = wiring::Aws::from_env().await?;
            (wiring::aws_registry(&aws, opts), Some(aws))
        }
    };
    if uploads.gateway && cfg.public_url.is_none() {
        return Err(
            "the upload gateway needs --public-url (BERTH_PUBLIC_URL): the registry's URL, \
             where clients find a finished blob"
                .to_owned(),
        );
    }
    let is_gateway = uploads.gateway;
    let uploads = UploadRouting::configure(
        uploads.upload_gateway_url.clone(),
        wiring::upload_key_from_env(aws.as_ref())?,
        uploads.gateway,
    )?;
    // The upload gateway serves sessions vouched for by their signed
    // `_state`; it needs no identity. Everything else does.
    let iam = if is_gateway {
        None
    } else {
        Some(identity(cfg, &registry, aws.as_ref()).await?)
    };
    // The embedded durable queues live in the metadata store: jobs
    // survive a restart. Their visibility timeout outlasts a task's
    // lease, so a redelivery after a crash takes the task over. One queue
    // per worker, as in AWS.
    let local_queue = |name: &str, visibility: u64| {
        Arc::new(berth::store::local_queue::LocalQueue::new(
            registry.kv().clone(),
            name,
            Duration::from_secs(visibility),
        )) as Arc<dyn berth::store::Queue>
    };
    let jobs = (!is_gateway).then(|| {
        let queues = berth::jobs::Queues {
            gc: local_queue(berth::jobs::gc::KIND, 360),
            events: local_queue("webhook", 120),
            replication: local_queue("replication", 900),
            dead_letters: local_queue("webhook-dlq", 3600),
        };
        let webhook_opts = berth::jobs::webhook::WebhookOptions {
            public_url: cfg.public_url.clone(),
            ..Default::default()
        };
        berth::jobs::Jobs::with_options(registry.clone(), queues, webhook_opts)
    });
    // Pushes, pulls and deletes served here send their events to the
    // workers' events queue.
    let registry = match &jobs {
        Some(j) => registry.with_events(j.queues.events.clone()),
        None => registry,
    };
    Ok(Arc::new(AppState {
        registry,
        public_url: cfg.public_url.clone(),
        uploads,
        iam,
        jobs,
        portal,
    }))
}

/// The web portal compiled into this binary; the upload gateway serves
/// upload sessions only, so no portal there.
fn embedded_portal(args: &ServeArgs) -> Result<Option<Portal>, String> {
    if args.uploads.gateway {
        return Ok(None);
    }
    let portal = Portal::new(portal::ASSETS)
        .ok_or("the embedded web portal has no index.html (a broken build)")?;
    if portal::ORIGIN == "placeholder" {
        tracing::warn!("this binary was built without the web portal: / shows how to get it");
    }
    Ok(Some(portal))
}

/// Users, projects, tokens: the keys from the data dir, the first-start
/// bootstrap, and the admin password shown once if it was generated.
async fn identity(
    cfg: &ServeConfig,
    registry: &Registry,
    aws: Option<&wiring::Aws>,
) -> Result<berth::iam::Iam, String> {
    let keys = wiring::local_token_keys(&cfg.data_dir)?;
    let iam = wiring::iam(registry.kv().clone(), Some(Arc::new(keys)));
    let admin_password = wiring::admin_password_from_env(aws).await?;
    if let Some(generated) = wiring::bootstrap_identity(&iam, admin_password.as_deref()).await? {
        // Shown once, on the terminal only: never through the log.
        eprintln!(
            "\nberth: created the system administrator `admin` with the password\n\n    {generated}\n\n\
             It is shown only this once. Change it with `berth user passwd admin`, or set\n\
             BERTH_ADMIN_PASSWORD before the first start to choose it.\n"
        );
    }
    Ok(iam)
}

/// Starts the job workers in this process (what the `gc` function does
/// in AWS), ticking every `interval` seconds.
fn spawn_workers(state: &AppState, interval: u64) {
    if let Some(jobs) = &state.jobs {
        let tick = if interval == 0 {
            u64::MAX / 4
        } else {
            interval
        };
        berth::jobs::spawn_local_workers(jobs.clone(), Duration::from_secs(tick));
    }
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

async fn serve(args: &ServeArgs) -> Result<(), String> {
    let cfg = args.config();
    let limits = args.limits.limits();
    let state = app_state(args, embedded_portal(args)?).await?;
    spawn_workers(&state, args.sweep_interval);
    let audit = state.iam.as_ref().map(|iam| iam.audit.clone());
    let registry = state.registry.clone();
    spawn_flusher(audit.clone(), registry.clone());
    let (listener, addr) = bind(&cfg).await?;
    match cfg.backend {
        Backend::Local => {
            tracing::info!(%addr, data_dir = %cfg.data_dir.display(), "berth is serving")
        }
        Backend::Aws => tracing::info!(%addr, "berth is serving (aws backend)"),
    }
    let served = berth::http::serve(listener, app(state), limits, shutdown())
        .await
        .map_err(|e| e.to_string());
    if let Some(audit) = audit {
        audit.flush().await;
    }
    registry.flush_pulls().await;
    served
}

/// Writes buffered pull records and pull counts every 10 s (they are also
/// written when 50 have gathered).
fn spawn_flusher(audit: Option<berth::iam::AuditLog>, registry: berth::registry::Registry) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Some(audit) = &audit {
                audit.flush().await;
            }
            registry.flush_pulls().await;
        }
    });
}

/// `berth stack`: the functions as Lambda runs them, on one port.
async fn stack(args: &ServeArgs) -> Result<(), String> {
    use berth::lambda::apigw::GatewayConfig;
    use berth::lambda::stack::Stack;
    let cfg = args.config();
    let limits = args.limits.limits();
    // API Gateway serves only the APIs; in AWS the portal comes from
    // CloudFront and S3, which the stack does not emulate.
    let state = app_state(args, None).await?;
    spawn_workers(&state, args.sweep_interval);
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
    let args = match &cli.command {
        Command::Serve(args) | Command::Stack(args) => args,
        Command::Api(command) => return cli::run(command).await,
    };
    init_tracing(args.log_format);
    let run = match &cli.command {
        Command::Stack(args) => stack(args).await,
        _ => serve(args).await,
    };
    if let Err(e) = run {
        tracing::error!("{e}");
        eprintln!("berth: {e}");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}
