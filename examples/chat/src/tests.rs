use gamewire::ChatMessage;
use gamewire::client::Client;
use tokio::net::TcpListener;

use super::*;

#[tokio::test]
async fn two_players_join_a_room_and_chat() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let service = server(TcpServerConfig::default());
    let running = service.clone();
    let serving = tokio::spawn(async move { running.serve(listener).await });

    let mut alice = Client::<ChatMessage>::connect(address).await.unwrap();
    let mut bob = Client::<ChatMessage>::connect(address).await.unwrap();
    alice
        .send(&ChatMessage::JoinRoom { room_id: 1 })
        .await
        .unwrap();
    assert!(matches!(
        alice.next_message().await.unwrap(),
        ChatMessage::RoomJoined { room_id: 1, .. }
    ));
    bob.send(&ChatMessage::JoinRoom { room_id: 1 })
        .await
        .unwrap();
    assert!(matches!(
        bob.next_message().await.unwrap(),
        ChatMessage::RoomJoined { room_id: 1, .. }
    ));
    assert_eq!(
        alice.next_message().await.unwrap(),
        ChatMessage::UserJoined {
            room_id: 1,
            user_id: bob.user_id()
        }
    );

    bob.send(&ChatMessage::SendChat {
        room_id: 1,
        text: "hi".into(),
    })
    .await
    .unwrap();
    for client in [&mut alice, &mut bob] {
        match client.next_message().await.unwrap() {
            ChatMessage::ChatBroadcast {
                room_id,
                sender,
                text,
                ..
            } => {
                assert_eq!((room_id, text.as_str()), (1, "hi"));
                assert_ne!(sender, 0);
            }
            other => panic!("expected the chat line, got {other:?}"),
        }
    }
    assert_eq!(service.get_room_status(1).0, 2);

    service.shutdown().await;
    serving.await.unwrap().unwrap();
}

/// The exchange the book's wire-protocol chapter shows byte by byte: the
/// client side is written by hand from the chapter, and every byte the
/// server sends is checked (the chat line's timestamp aside).
#[tokio::test]
async fn the_wire_protocol_chapter_is_exact() {
    use gamewire::Message;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let service = server(TcpServerConfig::default());
    let running = service.clone();
    tokio::spawn(async move { running.serve(listener).await });
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();

    let fingerprint = ChatMessage::PROTOCOL.fingerprint.to_le_bytes();
    let mut hello = vec![0, 0, 0, 24, 0x00, 0x01, 11];
    hello.extend_from_slice(b"ChatMessage");
    hello.push(0xfd);
    hello.extend_from_slice(&fingerprint);
    hello.push(0x00);
    let exchange: [(&str, Vec<u8>, Vec<u8>); 4] = [
        (
            "hello / welcome",
            hello,
            vec![
                0, 0, 0, 13, 0x01, 0x01, 0xfb, 0x10, 0x27, 0xfb, 0x30, 0x75, 0xfc, 0x00, 0x00,
                0x01, 0x00,
            ],
        ),
        (
            "JoinRoom { room_id: 1 }",
            vec![0, 0, 0, 3, 0x06, 0x00, 0x01],
            vec![0, 0, 0, 5, 0x06, 0x04, 0x01, 0x01, 0x01],
        ),
        (
            "SendChat { room_id: 1, text: \"hi\" }",
            vec![0, 0, 0, 6, 0x06, 0x02, 0x01, 0x02, b'h', b'i'],
            // The last 8 bytes, the timestamp, are checked apart.
            vec![0, 0, 0, 16, 0x06, 0x08, 0x01, 0x01, 0x02, b'h', b'i', 0xfd],
        ),
        (
            "ListRooms",
            vec![0, 0, 0, 2, 0x06, 0x03],
            vec![0, 0, 0, 5, 0x06, 0x09, 0x01, 0x01, 0x01],
        ),
    ];
    for (what, request, expected) in exchange {
        socket.write_all(&request).await.unwrap();
        let mut head = [0u8; 4];
        socket.read_exact(&mut head).await.unwrap();
        let mut reply = head.to_vec();
        reply.resize(4 + u32::from_be_bytes(head) as usize, 0);
        socket.read_exact(&mut reply[4..]).await.unwrap();
        println!("{what}\nC→S {}\nS→C {}", hex(&request), hex(&reply));
        assert_eq!(&reply[..expected.len()], &expected[..], "{what}");
        if what.starts_with("SendChat") {
            let stamp = u64::from_le_bytes(reply[12..20].try_into().unwrap());
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            assert!(
                now.as_millis() as u64 - stamp < 60_000,
                "timestamp in milliseconds since 1970"
            );
        }
    }
    println!(
        "fingerprint of ChatMessage: {:#018x}",
        ChatMessage::PROTOCOL.fingerprint
    );
    service.shutdown().await;
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The book's Python client, written from the wire-protocol chapter alone,
/// chats with the example server. Skipped where there is no `python3`,
/// except under CI (`CI` set), where that is a failure.
#[tokio::test]
async fn the_books_python_client_can_chat() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../book/src/reference/chat_client.py"
    );
    if !gamewire_tests::tools::available("python3", "Debian package `python3`") {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let service = server(TcpServerConfig::default());
    let running = service.clone();
    tokio::spawn(async move { running.serve(listener).await });

    let output = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        tokio::process::Command::new("python3")
            .args([script, &address.to_string(), "7", "hello from Python"])
            .output(),
    )
    .await
    .expect("the Python client finished in time")
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("joined room 7 with [1]"), "{stdout}");
    assert!(
        stdout.contains("[room 7] user 1: hello from Python"),
        "{stdout}"
    );
    service.shutdown().await;
}

/// What the TCP client says in the browser test.
const TCP_LINE: &str = "hello from tcp";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_pages_and_a_tcp_client_chat_in_one_room() {
    use gamewire_tests::node::{Node, chromium};
    let Some(node) = Node::find() else { return };
    let Some(chromium) = chromium() else { return };

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let service = server(TcpServerConfig {
        ws_bind_address: Some("127.0.0.1:0".into()),
        ..TcpServerConfig::default()
    });
    let running = service.clone();
    tokio::spawn(async move { running.serve(listener).await });
    let ws = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            if let Some(ws) = service.local_ws_addr() {
                break ws;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the WebSocket listener is up");

    const ROOM: u32 = 7;
    let mut tcp = Client::<ChatMessage>::connect(address).await.unwrap();
    tcp.send(&ChatMessage::JoinRoom { room_id: ROOM })
        .await
        .unwrap();
    assert!(matches!(
        tcp.next_message().await.unwrap(),
        ChatMessage::RoomJoined { room_id: ROOM, .. }
    ));

    // Once both pages are in the room, the TCP client speaks, then waits
    // for a line from each page.
    let talk = async {
        let mut joined = 0;
        while joined < 2 {
            if let ChatMessage::UserJoined { room_id: ROOM, .. } = tcp.next_message().await.unwrap()
            {
                joined += 1;
            }
        }
        tcp.send(&ChatMessage::SendChat {
            room_id: ROOM,
            text: TCP_LINE.into(),
        })
        .await
        .unwrap();
        let mut heard = std::collections::BTreeSet::new();
        while heard.len() < 2 {
            if let ChatMessage::ChatBroadcast { text, .. } = tcp.next_message().await.unwrap()
                && text.starts_with("hello from page")
            {
                heard.insert(text);
            }
        }
        heard
    };
    let env = [
        ("GAMEWIRE_PAGE_URL", format!("http://{ws}/")),
        ("GAMEWIRE_ROOM", ROOM.to_string()),
        ("GAMEWIRE_TCP_LINE", TCP_LINE.into()),
        ("GAMEWIRE_CHROMIUM", chromium.display().to_string()),
    ];
    let browser = node.run(
        &["--test", "--test-reporter=spec", "test/browser.e2e.mjs"],
        &env,
    );
    let (heard, ()) = tokio::time::timeout(std::time::Duration::from_secs(150), async {
        tokio::join!(talk, browser)
    })
    .await
    .expect("the browser test ended within 150 s");
    assert_eq!(
        heard.into_iter().collect::<Vec<_>>(),
        ["hello from page A", "hello from page B"]
    );
}
