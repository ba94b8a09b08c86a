//! The `sluice` binary: parse flags, load the config, set up logging, bind the listeners,
//! and run the server until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use sluice::config::{parse_host_port, Config};
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
    /// Address to listen on, HOST:PORT (repeatable; port 0 picks a free port).
    #[arg(long = "listen", value_name = "HOST:PORT")]
    listen: Vec<String>,
    /// Address to advertise to clients, HOST:PORT (one per --listen, in order). Without it,
    /// each client is told the address it connected to.
    #[arg(long = "advertise", value_name = "HOST:PORT")]
    advertise: Vec<String>,
}

/// Exit status for a bad config or flag, as the issue asks.
const EXIT_BAD_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match build_config(&cli) {
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

fn build_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(d) = &cli.data_dir {
        config.data_dir = d.clone();
    }
    if !cli.listen.is_empty() {
        for l in &cli.listen {
            parse_host_port(l).map_err(|m| anyhow::anyhow!("command line: --listen: {m}"))?;
        }
        config.listeners = cli.listen.clone();
        config.advertised_listeners.clear();
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
    }
    Ok(config)
}

async fn run(config: Config) -> anyhow::Result<()> {
    let mut listeners = Vec::new();
    for (i, addr) in config.listeners.iter().enumerate() {
        let socket = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let advertised = match config.advertised_listeners.get(i) {
            Some(a) => Some(parse_host_port(a).map_err(anyhow::Error::msg)?),
            None => None,
        };
        listeners.push(Listener { socket, advertised });
    }
    let data_dir = config.data_dir.clone();
    let broker = tokio::task::spawn_blocking(move || sluice::api::Broker::open(config))
        .await?
        .with_context(|| format!("cannot open data directory {}", data_dir.display()))?;
    for l in &listeners {
        let addr = l.socket.local_addr()?;
        // Machine-readable readiness line; tests and scripts wait for it.
        println!("listening on {addr}");
    }
    tracing::info!(data_dir = %data_dir.display(), "sluice is ready");
    server::run(listeners, broker, shutdown_signal()).await
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
