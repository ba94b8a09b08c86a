//! The `sluice` binary: parse flags, load the config (file, then `KAFKA_*` environment, then
//! flags), set up logging, bind the listeners, and run the server until SIGINT or SIGTERM.
//! `sluice health` is the container health check: one ApiVersions round trip.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sluice::config::{env, parse_host_port, parse_listener, Config, HttpListen};
use sluice::server::{self, Listener};

/// A single-node broker that speaks Kafka's wire protocol.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about)]
struct Cli {
    /// TOML config file; `config/sluice.toml` documents every key and its default.
    #[arg(long, env = "SLUICE_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (Kafka's `log.dir`); default `./data`.
    #[arg(long, env = "SLUICE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on, [NAME://]HOST:PORT (repeatable; port 0 picks a free port).
    #[arg(long = "listen", value_name = "HOST:PORT")]
    listen: Vec<String>,
    /// Address to advertise to clients, HOST:PORT (one per --listen, in order). Without it,
    /// each client is told the address it connected to.
    #[arg(long = "advertise", value_name = "HOST:PORT")]
    advertise: Vec<String>,
    /// HTTP listener for /metrics and the web console, HOST:PORT or `off` (default
    /// 127.0.0.1:8080; port 0 picks a free port).
    #[arg(long = "http", env = "SLUICE_HTTP", value_name = "HOST:PORT|off")]
    http: Option<String>,
    /// Serve the web console without authentication even when the HTTP listener is bound
    /// beyond loopback (`http.console_anonymous`). Unsafe: anyone who reaches the port may
    /// read, produce and delete as far as `User:ANONYMOUS` may; for a development container.
    #[arg(long, env = "SLUICE_HTTP_CONSOLE_ANONYMOUS", value_name = "true|false")]
    http_console_anonymous: Option<bool>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check that a broker answers: one ApiVersions round trip; exit 0 if it does.
    Health {
        /// Broker to ask; default: this configuration's first listener without TLS (file,
        /// KAFKA_* environment, --listen), or its first TLS listener when all use TLS, on
        /// 127.0.0.1 when it binds all interfaces.
        #[arg(long)]
        bootstrap: Option<String>,
        /// Give up after this many milliseconds.
        #[arg(long, default_value_t = 5000)]
        timeout_ms: u64,
    },
}

/// Exit status for a bad config, flag or environment variable.
const EXIT_BAD_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Health {
        bootstrap,
        timeout_ms,
    }) = &cli.command
    {
        let (target, tls) = match bootstrap {
            Some(b) => (b.clone(), false),
            None => match build_config(&cli) {
                Ok((c, ..)) => local_address(&c),
                Err(e) => {
                    eprintln!("sluice: {e:#}");
                    return ExitCode::from(EXIT_BAD_CONFIG);
                }
            },
        };
        return health(&target, *timeout_ms, tls);
    }
    let (config, origins, ignored, unknown) = match build_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sluice: {e:#}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
    for (key, value, source) in &origins {
        // Passwords and JAAS configurations (which hold passwords) are never logged, as
        // Kafka prints its Password-typed settings as [hidden].
        let value = if sluice::security::is_secret_key(key) {
            "[hidden]"
        } else {
            value.as_str()
        };
        tracing::info!("config {key} = {value} (from {source})");
    }
    if !ignored.is_empty() {
        tracing::info!(
            "ignored (no meaning on a single node): {}",
            ignored.join(", ")
        );
    }
    if !unknown.is_empty() {
        tracing::warn!("unknown broker properties, ignored: {}", unknown.join(", "));
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sluice: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("sluice: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// (key, value, source) of every setting that is not a default.
type Origins = Vec<(String, String, String)>;

fn file_origins(path: &std::path::Path) -> Origins {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let Ok(table) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (section, v) in &table {
        if let Some(t) = v.as_table() {
            for (k, v) in t {
                out.push((
                    format!("{section}.{k}"),
                    v.to_string(),
                    path.display().to_string(),
                ));
            }
        }
    }
    out
}

fn build_config(cli: &Cli) -> anyhow::Result<(Config, Origins, Vec<String>, Vec<String>)> {
    let mut origins = Origins::new();
    let mut config = match &cli.config {
        Some(path) => {
            let c = Config::load(path)?;
            origins.extend(file_origins(path));
            c
        }
        None => Config::default(),
    };
    let report = env::apply(&mut config, std::env::vars())?;
    for (var, prop, value) in report.applied {
        origins.push((prop, value, format!("environment {var}")));
    }
    if let Some(d) = &cli.data_dir {
        config.data_dir = d.clone();
        origins.push((
            "log.dir".into(),
            d.display().to_string(),
            "--data-dir".into(),
        ));
    }
    if !cli.listen.is_empty() {
        for l in &cli.listen {
            parse_listener(l).map_err(|m| anyhow::anyhow!("command line: --listen: {m}"))?;
        }
        config.listeners = cli.listen.clone();
        config.advertised_listeners.clear();
        origins.push(("listeners".into(), cli.listen.join(","), "--listen".into()));
    }
    if !cli.advertise.is_empty() {
        for a in &cli.advertise {
            parse_host_port(a).map_err(|m| anyhow::anyhow!("command line: --advertise: {m}"))?;
        }
        if cli.advertise.len() != config.listeners.len() {
            anyhow::bail!(
                "command line: --advertise given {} times for {} listeners; give one per listener",
                cli.advertise.len(),
                config.listeners.len()
            );
        }
        config.advertised_listeners = cli.advertise.clone();
        origins.push((
            "advertised.listeners".into(),
            cli.advertise.join(","),
            "--advertise".into(),
        ));
    }
    if let Some(h) = &cli.http {
        config.http = HttpListen::parse(h).map_err(|m| anyhow::anyhow!("--http: {m}"))?;
        origins.push((
            "http.listen".into(),
            h.clone(),
            "--http or SLUICE_HTTP".into(),
        ));
    }
    if let Some(anonymous) = cli.http_console_anonymous {
        config.http_console_anonymous = anonymous;
        origins.push((
            "http.console_anonymous".into(),
            anonymous.to_string(),
            "--http-console-anonymous or SLUICE_HTTP_CONSOLE_ANONYMOUS".into(),
        ));
    }
    Ok((config, origins, report.ignored, report.unknown))
}

async fn run(config: Config) -> anyhow::Result<()> {
    // Authorizer settings Sluice cannot use stop the start before any socket or file is
    // touched; the error names the Kafka property.
    sluice::security::acl::settings_from(&config.security)?;
    // Then the TLS settings: a missing or unreadable keystore stops the broker before it
    // binds a port or says it is listening.
    let mut acceptors = Vec::new();
    for spec in &config.listeners {
        let (name, _, _) = parse_listener(spec).map_err(anyhow::Error::msg)?;
        let protocol = config.security.protocol_of(name.as_deref());
        let acceptor = match (protocol, name) {
            (Some(p), Some(name)) if p.tls() => Some(std::sync::Arc::new(
                sluice::security::tls::TlsAcceptor::build(&config.security, &name, p)
                    .with_context(|| format!("listener {name} ({p}): TLS settings"))?,
            )),
            _ => None,
        };
        acceptors.push(acceptor);
    }
    let mut listeners = Vec::new();
    for ((i, spec), tls) in config.listeners.iter().enumerate().zip(acceptors) {
        let (name, host, port) = parse_listener(spec).map_err(anyhow::Error::msg)?;
        // Validation made sure every listener has a protocol.
        let protocol = config
            .security
            .protocol_of(name.as_deref())
            .with_context(|| format!("listener {spec} has no security protocol"))?;
        let socket = if host.is_empty() {
            // Every interface: dual-stack where IPv6 exists, else IPv4.
            match tokio::net::TcpListener::bind(format!("[::]:{port}")).await {
                Ok(s) => s,
                Err(_) => tokio::net::TcpListener::bind(format!("0.0.0.0:{port}"))
                    .await
                    .with_context(|| format!("cannot listen on :{port}"))?,
            }
        } else {
            let addr = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            tokio::net::TcpListener::bind(&addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?
        };
        let advertised = match config.advertised_listeners.get(i).filter(|a| !a.is_empty()) {
            Some(a) => {
                let (_, h, p) = parse_listener(a).map_err(anyhow::Error::msg)?;
                Some((h, p))
            }
            None => None,
        };
        let name = name.unwrap_or_else(|| protocol.name().to_string());
        listeners.push(Listener {
            socket,
            advertised,
            name,
            protocol,
            tls,
        });
    }
    // Bound beside the Kafka listeners, before the data directory is opened, so a bad
    // address fails start-up as early.
    let http = sluice::http::bind(&config.http).await?;
    match sluice::limits::raise_open_files_limit() {
        Some((now, Some(was))) => {
            tracing::info!("raised the open-files limit from {was} to {now} (the hard limit)")
        }
        Some((now, None)) => tracing::info!("open-files limit {now}"),
        None => {}
    }
    let data_dir = config.data_dir.clone();
    let node_id = config.node_id;
    let broker = tokio::task::spawn_blocking(move || sluice::api::Broker::open(config))
        .await?
        .with_context(|| format!("cannot open data directory {}", data_dir.display()))?;
    for l in &listeners {
        let addr = l.socket.local_addr()?;
        // Machine-readable readiness line; tests and scripts wait for it.
        println!("listening on {addr}");
    }
    let http_task = match http {
        Some(socket) => {
            // Machine-readable too: tests read the bound port from it.
            println!("http on http://{}/", socket.local_addr()?);
            Some(tokio::spawn(sluice::http::serve(
                socket,
                std::sync::Arc::clone(&broker),
            )))
        }
        None => None,
    };
    // Kafka's own start-up lines, which Testcontainers' Kafka modules wait for in the log
    // (Python's default and KRaft modes, then Java's and Go's). The listeners are bound, so
    // connections are accepted from here on.
    println!("[KafkaServer id={node_id}] started");
    println!("Kafka Server started");
    println!("Transitioning from RECOVERY to RUNNING");
    tracing::info!(data_dir = %data_dir.display(), "sluice is ready");
    let served = server::run(listeners, broker, shutdown_signal()).await;
    // `server::run` cancelled the shutdown token, which stops the HTTP server too.
    if let Some(task) = http_task {
        match tokio::time::timeout(server::SHUTDOWN_GRACE, task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::error!(error = %e, "http listener failed"),
            Ok(Err(e)) => tracing::error!(error = %e, "http task failed"),
            Err(_) => tracing::warn!("http requests did not finish within the grace period"),
        }
    }
    served
}

/// Where a local health check should connect, and whether over TLS: the first listener
/// without TLS, else the first one, on the loopback address when it binds all interfaces.
fn local_address(c: &Config) -> (String, bool) {
    let parsed: Vec<_> = c
        .listeners
        .iter()
        .filter_map(|l| parse_listener(l).ok())
        .map(|(name, host, port)| {
            let tls = c
                .security
                .protocol_of(name.as_deref())
                .is_some_and(|p| p.tls());
            (host, port, tls)
        })
        .collect();
    let Some((host, port, tls)) = parsed
        .iter()
        .find(|(_, _, tls)| !tls)
        .or_else(|| parsed.first())
        .cloned()
    else {
        return ("127.0.0.1:9092".into(), false);
    };
    let host = match host.as_str() {
        "0.0.0.0" | "" | "::" => "127.0.0.1".to_string(),
        _ => host,
    };
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    (addr, tls)
}

fn health(bootstrap: &str, timeout_ms: u64, tls: bool) -> ExitCode {
    let timeout = std::time::Duration::from_millis(timeout_ms);
    let answer = if tls {
        sluice::health::check_tls(bootstrap, timeout)
    } else {
        sluice::health::check(bootstrap, timeout).map(Some)
    };
    match answer {
        Ok(Some(n)) => {
            println!("ok: {bootstrap} answers ApiVersions with {n} APIs");
            ExitCode::SUCCESS
        }
        Ok(None) => {
            println!("ok: {bootstrap} completes a TLS handshake and requires a client certificate");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("unhealthy: {bootstrap}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
