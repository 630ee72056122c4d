//! The built-in chat server on defaults: rooms to join, leave, list and talk in.
//!
//! Run: `cargo run -p example-chat` (TCP on 127.0.0.1:7878, WebSocket on
//! 127.0.0.1:7880), then talk to it with `cargo run -p example-chat-client`
//! in another terminal or two, or open http://127.0.0.1:7880/ in a browser.
//! `--bind ADDR` and `--ws-bind ADDR` move the listeners, `--metrics-bind
//! ADDR` serves Prometheus metrics, `--redis URL` joins the nodes that share
//! that Redis into one set of rooms, `--config FILE` reads a TOML file of
//! `TcpServerConfig` fields (each with a `GAMEWIRE_*` environment variable);
//! `--help` says more.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;
use gamewire::{TcpGameService, TcpServerConfig};
use gamewire_redis::RedisAdapter;

/// The default address of the WebSocket listener.
pub const DEFAULT_WS_BIND: &str = "127.0.0.1:7880";

/// Where the chat server listens, and how it is tuned. A flag wins over
/// its environment variable, which wins over the file.
#[derive(Debug, Parser)]
#[command(
    about = "The gamewire chat server: TCP and WebSocket clients in one set of rooms",
    after_help = "Each flag wins over its environment variable, which wins over the file \
                  given with --config, which wins over the defaults."
)]
struct Args {
    /// The TCP listener's address [default: 127.0.0.1:7878].
    #[arg(long, env = "GAMEWIRE_BIND", value_name = "ADDR")]
    bind: Option<String>,
    /// The WebSocket listener's address; browsers connect to ws://ADDR/ and
    /// get the demo page at http://ADDR/ [default: 127.0.0.1:7880].
    #[arg(long, env = "GAMEWIRE_WS_BIND", value_name = "ADDR")]
    ws_bind: Option<String>,
    /// The operator's HTTP listener: Prometheus metrics at
    /// http://ADDR/metrics [default: none].
    #[arg(long, env = "GAMEWIRE_METRICS_BIND", value_name = "ADDR")]
    metrics_bind: Option<String>,
    /// The bearer token of the admin page at http://METRICS_ADDR/admin
    /// (at least 16 characters) [default: no admin page].
    #[arg(
        long,
        env = "GAMEWIRE_ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
    /// A TOML file of `TcpServerConfig` fields (durations as "10s"); fields
    /// it leaves out keep their defaults.
    #[arg(long, env = "GAMEWIRE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// The Redis this node shares with the other nodes of a cluster, as
    /// `redis://HOST:PORT/`: rooms, presence and user ids span every node
    /// on it [default: none, one node on its own].
    #[arg(long, env = "GAMEWIRE_REDIS_URL", value_name = "URL")]
    redis: Option<String>,
    /// Print the configuration the server would run with, and exit.
    #[arg(long)]
    check: bool,
}

impl Args {
    /// The configuration: defaults, then the file, then the environment
    /// and the flags.
    fn config(&self) -> anyhow::Result<TcpServerConfig> {
        let (mut config, file_sets_ws) = match &self.config {
            Some(path) => read_config(path)?,
            None => (TcpServerConfig::default(), false),
        };
        if !file_sets_ws {
            config.ws_bind_address = Some(DEFAULT_WS_BIND.to_owned());
        }
        if let Some(bind) = &self.bind {
            config.bind_address.clone_from(bind);
        }
        if let Some(ws_bind) = &self.ws_bind {
            config.ws_bind_address = Some(ws_bind.clone());
        }
        if let Some(metrics_bind) = &self.metrics_bind {
            config.metrics_bind_address = Some(metrics_bind.clone());
        }
        if let Some(token) = &self.admin_token {
            config.admin_token = Some(token.clone());
        }
        config.validate()?;
        Ok(config)
    }
}

/// The configuration a TOML file gives, and whether it names the
/// WebSocket listener (the chat example opens one unless it says otherwise).
fn read_config(path: &Path) -> anyhow::Result<(TcpServerConfig, bool)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not TOML", path.display()))?;
    let sets_ws = table.contains_key("ws_bind_address");
    let config = table
        .try_into()
        .with_context(|| format!("in the configuration file {}", path.display()))?;
    Ok((config, sets_ws))
}

// ANCHOR: server
/// The chat server: no protocol or handler of its own, so gamewire serves
/// its built-in `ChatMessage` protocol, and the browser demo on the
/// WebSocket port's plain HTTP.
pub fn server(config: TcpServerConfig) -> TcpGameService {
    TcpGameService::with_config(config).web_page(demo_page())
}

/// The browser demo: `web/index.html` with the generated chat client
/// (`clients/typescript/src/chat.ts`, compiled to `web/chat.js` by `npm run
/// build:demo`) in its script.
pub fn demo_page() -> String {
    include_str!("../web/index.html")
        .replace("/*gamewire-chat-client*/", include_str!("../web/chat.js"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs go to stderr, in colour only on a terminal.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args = Args::parse();
    let config = args.config()?;
    if args.check {
        println!("{config:#?}");
        return Ok(());
    }
    let mut server = server(config);
    if let Some(url) = &args.redis {
        let adapter = RedisAdapter::connect(url)
            .await
            .with_context(|| format!("cannot reach Redis at {url}"))?;
        server = server.adapter(adapter);
    }
    server.start().await?;
    Ok(())
}
// ANCHOR_END: server

#[cfg(test)]
mod tests;
