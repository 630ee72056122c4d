use std::sync::{Arc, Mutex};
use std::time::Duration;

use gamewire::TcpGameService;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::*;

#[test]
fn commands_parse() {
    assert_eq!(parse_command("/join 4"), Ok(Command::Join(4)));
    assert_eq!(parse_command(" /leave 2 "), Ok(Command::Leave(2)));
    assert_eq!(parse_command("/rooms"), Ok(Command::Rooms));
    assert_eq!(
        parse_command("hello there"),
        Ok(Command::Say("hello there".into()))
    );
    assert!(parse_command("/join").unwrap_err().contains("room number"));
    assert_eq!(
        parse_command("/join 4294967296").unwrap_err(),
        "room numbers go from 0 to 4294967295"
    );
    assert!(
        parse_command("/dance")
            .unwrap_err()
            .contains("unknown command")
    );
}

/// What `run` printed so far, shared with the test.
#[derive(Clone, Default)]
struct Screen(Arc<Mutex<Vec<u8>>>);

impl Write for Screen {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Screen {
    async fn wait_for(&self, needle: &str) {
        let found = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if String::from_utf8_lossy(&self.0.lock().unwrap()).contains(needle) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        let screen = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        assert!(
            found.is_ok(),
            "never printed {needle:?}; the screen:\n{screen}"
        );
    }
}

#[tokio::test]
async fn typed_lines_become_chat() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let service = TcpGameService::with_default_config().protocol::<ChatMessage>();
    let running = service.clone();
    tokio::spawn(async move { running.serve(listener).await.unwrap() });

    let client = Client::<ChatMessage>::connect(address).await.unwrap();
    let user = client.user_id();
    let (mut keyboard, input) = tokio::io::duplex(1024);
    let screen = Screen::default();
    let session = tokio::spawn(run(client, BufReader::new(input), screen.clone()));

    keyboard.write_all(b"hello?\n/join 5\n").await.unwrap();
    screen.wait_for("join a room first").await;
    screen.wait_for("* joined room 5").await;
    keyboard.write_all(b"good game\n/rooms\n").await.unwrap();
    screen
        .wait_for(&format!("[room 5] user {user}: good game"))
        .await;
    screen.wait_for("* room 5: 1 member").await;
    keyboard.write_all(b"/help\n").await.unwrap();
    screen.wait_for("/help, /quit").await;
    keyboard.write_all(b"/quit\n").await.unwrap();
    session.await.unwrap().unwrap();
    service.shutdown().await;
}

/// The server closing ends the client at once, though nothing was typed.
#[tokio::test]
async fn the_client_ends_when_the_server_closes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let service = TcpGameService::with_default_config().protocol::<ChatMessage>();
    let running = service.clone();
    tokio::spawn(async move { running.serve(listener).await.unwrap() });

    let client = Client::<ChatMessage>::connect(address).await.unwrap();
    // A keyboard that stays open and silent.
    let (_keyboard, input) = tokio::io::duplex(1024);
    let screen = Screen::default();
    let session = tokio::spawn(run(client, BufReader::new(input), screen.clone()));
    screen.wait_for("connected as user").await;
    service.shutdown().await;
    tokio::time::timeout(Duration::from_secs(10), session)
        .await
        .expect("the client ended with the server")
        .unwrap()
        .unwrap();
    screen.wait_for("! the server closed the connection").await;
}
