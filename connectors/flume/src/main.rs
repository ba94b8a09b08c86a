//! `sluice-flume agent --conf DIR --conf-file FILE --name NAME [-Dkey=value ...]`: the same
//! flags as `flume-ng agent`. Loads the config, builds the named agent, runs it until
//! SIGINT/SIGTERM, then drains in-flight transactions and exits 0. A bad config exits 2 with
//! every problem named by file, line and key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use sluice_flume::conf::{self, load::LoadOptions};
use sluice_flume::Agent;

#[derive(Parser)]
#[command(
    name = "sluice-flume",
    version,
    about = "Runs Apache Flume agent configs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an agent (like `flume-ng agent`).
    Agent(AgentArgs),
}

#[derive(Args)]
struct AgentArgs {
    /// Flume's conf directory (accepted for compatibility; log4j and flume-env.sh files in
    /// it are not read: logging is set with -Dflume.root.logger or RUST_LOG).
    #[arg(short = 'c', long = "conf", value_name = "DIR")]
    conf: Option<PathBuf>,
    /// A properties file; repeat to merge several (later files override earlier ones).
    #[arg(short = 'f', long = "conf-file", value_name = "FILE", required = true)]
    conf_file: Vec<PathBuf>,
    /// The agent to run (the prefix of its keys in the file).
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    name: String,
    /// A Java system property, e.g. -Dflume.root.logger=INFO,console or
    /// -Dflume.monitoring.type=http -Dflume.monitoring.port=34545 (also ${sys:KEY} in values).
    #[arg(short = 'D', value_name = "KEY=VALUE", allow_hyphen_values = true)]
    define: Vec<String>,
    /// JVM options such as -Xmx512m are accepted and ignored (there is no JVM).
    #[arg(short = 'X', value_name = "OPT", hide = true)]
    jvm: Vec<String>,
    /// Treat every configuration warning (a dropped component, a removed trailing comment)
    /// as an error.
    #[arg(long)]
    strict: bool,
    /// Accepted for compatibility: the config is read once at start.
    #[arg(long = "no-reload-conf")]
    no_reload_conf: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Agent(args) => agent(args),
    }
}

fn system_properties(defs: &[String]) -> BTreeMap<String, String> {
    defs.iter()
        .map(|d| match d.split_once('=') {
            Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
            None => (d.trim().to_string(), String::new()),
        })
        .collect()
}

fn init_logging(props: &BTreeMap<String, String>) {
    // flume.root.logger=LEVEL,appender: the level is honoured; every appender logs to stderr.
    let level = props
        .get("flume.root.logger")
        .and_then(|v| v.split(',').next())
        .map(|l| l.trim().to_ascii_lowercase())
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "info".to_string());
    let level = if level == "warning" {
        "warn".to_string()
    } else {
        level
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only on a terminal, and never with NO_COLOR set (no-color.org), as the
        // broker does: log files and container logs get plain text.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
}

fn agent(args: AgentArgs) -> ExitCode {
    let props = system_properties(&args.define);
    init_logging(&props);
    sluice_flume::ssl::set_system_properties(props.clone());
    if !args.jvm.is_empty() {
        tracing::info!("ignoring JVM options: -X{}", args.jvm.join(" -X"));
    }
    if let Some(dir) = &args.conf {
        tracing::debug!("conf directory {} (not read)", dir.display());
    }
    let _ = args.no_reload_conf;
    let opts = LoadOptions {
        files: args.conf_file.clone(),
        agent: args.name.clone(),
        system_properties: props.clone(),
    };
    let (cfg, mut warnings) = match conf::load(&opts) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("sluice-flume: {e}");
            return ExitCode::from(2);
        }
    };
    let agent = match Agent::build(cfg, &mut warnings) {
        Ok(a) => a,
        Err(e) => {
            for w in &warnings {
                eprintln!("sluice-flume: warning: {w}");
            }
            eprintln!("sluice-flume: {e}");
            return ExitCode::from(2);
        }
    };
    for w in &warnings {
        tracing::warn!("{w}");
    }
    if args.strict && !warnings.is_empty() {
        eprintln!(
            "sluice-flume: --strict: {} configuration warning(s), see above",
            warnings.len()
        );
        return ExitCode::from(2);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sluice-flume: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(agent, &props)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice-flume: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(agent: Agent, props: &BTreeMap<String, String>) -> anyhow::Result<()> {
    if props.get("flume.monitoring.type").map(String::as_str) == Some("http") {
        let port: u16 = props
            .get("flume.monitoring.port")
            .map(|p| p.parse())
            .transpose()
            .context("-Dflume.monitoring.port is not a port number")?
            .unwrap_or(41414);
        let bind = SocketAddr::from(([0, 0, 0, 0], port));
        let counters = agent.counters();
        tokio::spawn(async move {
            if let Err(e) = sluice_flume::monitoring::serve(bind, counters).await {
                tracing::error!("monitoring: {e:#}");
            }
        });
    }
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        token.cancel();
    });
    agent.run(shutdown).await
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
