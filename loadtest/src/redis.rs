//! The `redis-server` a cluster run starts for its nodes, and what the
//! run reads from it: how many commands it ran (`INFO commandstats`), and
//! its CPU time.
//!
//! Spoken to in RESP over a plain socket: two commands do not warrant a
//! Redis client in the load generator.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// A `redis-server` of the run's own: a free port on 127.0.0.1, nothing
/// on disk, killed when dropped.
pub(crate) struct RedisChild {
    child: Child,
    port: u16,
}

impl RedisChild {
    /// Starts one and waits until it answers.
    pub(crate) async fn start() -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start redis-server (Debian: apt install redis-server)")?;
        let redis = RedisChild { child, port };
        for _ in 0..200 {
            if redis.command("PING").await.is_ok() {
                return Ok(redis);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        bail!("redis-server did not answer on port {port}")
    }

    /// Its URL, for the nodes.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Its process id, for its CPU time.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Calls of each command since it started, from `INFO commandstats`
    /// (`publish`, `sadd`, …).
    pub(crate) async fn calls(&self) -> anyhow::Result<HashMap<String, u64>> {
        let info = self.command("INFO commandstats").await?;
        Ok(parse_commandstats(&info))
    }

    /// Sends one inline command and returns its reply: a simple string,
    /// or a bulk string's contents.
    async fn command(&self, command: &str) -> anyhow::Result<String> {
        let socket = TcpStream::connect(("127.0.0.1", self.port)).await?;
        let mut socket = BufReader::new(socket);
        socket
            .get_mut()
            .write_all(format!("{command}\r\n").as_bytes())
            .await?;
        let mut first = String::new();
        socket.read_line(&mut first).await?;
        let first = first.trim_end();
        if let Some(len) = first.strip_prefix('$') {
            let len: usize = len.parse().context("a bulk length")?;
            let mut body = vec![0; len + 2];
            socket.read_exact(&mut body).await?;
            body.truncate(len);
            return Ok(String::from_utf8_lossy(&body).into_owned());
        }
        match first.strip_prefix('+') {
            Some(simple) => Ok(simple.to_owned()),
            None => bail!("redis-server answered {first:?}"),
        }
    }
}

/// `cmdstat_publish:calls=12,usec=…` lines, as command → calls.
fn parse_commandstats(info: &str) -> HashMap<String, u64> {
    info.lines()
        .filter_map(|line| {
            let (name, fields) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = fields.split(',').find_map(|f| f.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}

/// What Redis did over a stretch of a run.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RedisWork {
    /// `PUBLISH` calls.
    pub(crate) publish: u64,
    /// Every command.
    pub(crate) commands: u64,
}

impl RedisWork {
    /// The work between two `calls` snapshots.
    pub(crate) fn between(before: &HashMap<String, u64>, after: &HashMap<String, u64>) -> Self {
        let delta = |name: &str| {
            after
                .get(name)
                .copied()
                .unwrap_or(0)
                .saturating_sub(before.get(name).copied().unwrap_or(0))
        };
        // `INFO` itself is counted; the snapshots are not the run's work.
        let commands = after
            .keys()
            .filter(|name| name.as_str() != "info")
            .map(|name| delta(name))
            .sum();
        RedisWork {
            publish: delta("publish"),
            commands,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commandstats_read_back() {
        let info = "# Commandstats\r\ncmdstat_publish:calls=120,usec=300,usec_per_call=2.50,rejected_calls=0,failed_calls=0\r\ncmdstat_info:calls=3,usec=9\r\ncmdstat_sadd:calls=7,usec=1\r\n";
        let before = parse_commandstats(info);
        assert_eq!(before["publish"], 120);
        assert_eq!(before["sadd"], 7);
        let mut after = before.clone();
        after.insert("publish".into(), 170);
        after.insert("info".into(), 4);
        after.insert("incr".into(), 2);
        let work = RedisWork::between(&before, &after);
        assert_eq!((work.publish, work.commands), (50, 52));
    }
}
