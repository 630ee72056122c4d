//! A `redis-server` of a test's own: a free port on 127.0.0.1, nothing on
//! disk, killed when dropped; it can be killed and started again on the
//! same port, as a Redis restart.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// A running `redis-server`.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// Starts one on a free port, once it answers a `PING`; `None` (having
    /// said the test is skipped, or failed under CI) when Debian's
    /// `redis-server` is not installed.
    pub async fn start() -> Option<Self> {
        if !crate::tools::available("redis-server", "Debian package `redis-server`") {
            return None;
        }
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let mut server = RedisServer { child: None, port };
        server.restart().await;
        Some(server)
    }

    /// Its URL, `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills it (`SIGKILL`): everything it held is lost.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts it (again) on its port, empty, and waits until it answers.
    pub async fn restart(&mut self) {
        self.kill().await;
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        for _ in 0..200 {
            if self.command("PING").await.as_deref() == Some("+PONG") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server did not answer on port {}", self.port);
    }

    /// Keeps it busy for `millis` milliseconds (a script that loops), as a
    /// Redis that is slow or saving: every client waits. The future is
    /// `'static`, to be spawned, and ends with the stall.
    pub fn stall(&self, millis: u32) -> impl std::future::Future<Output = ()> + 'static {
        let port = self.port;
        async move {
            let script = format!(
                "local s = redis.call('TIME') repeat local n = redis.call('TIME') \
                 until (n[1] - s[1]) * 1000000 + (n[2] - s[2]) > {micros}",
                micros = u64::from(millis) * 1000
            );
            let mut request = String::from("*3\r\n$4\r\nEVAL\r\n");
            request.push_str(&format!("${}\r\n{script}\r\n", script.len()));
            request.push_str("$1\r\n0\r\n");
            let mut socket = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            socket.write_all(request.as_bytes()).await.unwrap();
            let mut answer = [0u8; 64];
            let _ = socket.read(&mut answer).await;
        }
    }

    /// The members of the set at `key`, sorted.
    pub async fn members(&self, key: &str) -> Vec<String> {
        use tokio::io::AsyncBufReadExt;
        let socket = TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        let mut socket = tokio::io::BufReader::new(socket);
        let request = format!("SMEMBERS {key}\r\n");
        socket
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .unwrap();
        let mut line = String::new();
        socket.read_line(&mut line).await.unwrap();
        let count: usize = line.trim_end().trim_start_matches('*').parse().unwrap();
        let mut members = Vec::with_capacity(count);
        for _ in 0..count {
            line.clear();
            socket.read_line(&mut line).await.unwrap();
            line.clear();
            socket.read_line(&mut line).await.unwrap();
            members.push(line.trim_end().to_owned());
        }
        members.sort_unstable();
        members
    }

    /// Sends one inline command and returns the first line of the answer.
    pub async fn command(&self, command: &str) -> Option<String> {
        let mut socket = TcpStream::connect(("127.0.0.1", self.port)).await.ok()?;
        socket
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .ok()?;
        let mut answer = vec![0u8; 64 * 1024];
        let mut read = 0;
        while !answer[..read].ends_with(b"\r\n") {
            let n = socket.read(&mut answer[read..]).await.ok()?;
            if n == 0 {
                return None;
            }
            read += n;
        }
        let text = String::from_utf8_lossy(&answer[..read]).into_owned();
        Some(text.lines().next().unwrap_or_default().to_owned())
    }
}
