//! The WebSocket transport: one binary message per frame payload at
//! `ws://HOST:PORT/`, the same handshake, handlers, limits and rooms as
//! TCP, close codes carried in WebSocket close frames, and a page for a
//! plain `GET /`.

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use gamewire::client::Client;
use gamewire::wire::{self, CloseCode, Frame, WEBSOCKET_SUBPROTOCOL, websocket_close_code};
use gamewire::{ChatMessage, Message, TcpServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::support::*;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn ws_config() -> TcpServerConfig {
    TcpServerConfig {
        ws_bind_address: Some("127.0.0.1:0".into()),
        ..test_config()
    }
}

/// Starts `service`, and waits for its WebSocket listener.
async fn start_ws(service: &gamewire::TcpGameService) -> (SocketAddr, SocketAddr) {
    let tcp = start(service).await;
    eventually("the WebSocket listener", || {
        service.local_ws_addr().is_some()
    })
    .await;
    (tcp, service.local_ws_addr().unwrap())
}

/// Connects, offering the subprotocol when `offer`; returns the stream and
/// the subprotocol the server selected.
async fn connect(address: SocketAddr, offer: bool) -> (Ws, Option<String>) {
    let mut request = format!("ws://{address}/").into_client_request().unwrap();
    if offer {
        let value = HeaderValue::from_static("chat, gamewire.v1");
        request
            .headers_mut()
            .insert("sec-websocket-protocol", value);
    }
    let (ws, response) = within(tokio_tungstenite::connect_async(request))
        .await
        .unwrap();
    let selected = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|value| value.to_str().unwrap().to_owned());
    (ws, selected)
}

/// Sends one frame as a binary message: its payload, no length prefix.
async fn send<T: serde::Serialize>(ws: &mut Ws, frame: &T) {
    let bytes = wire::encode_frame(frame).unwrap();
    ws.send(WsMessage::Binary(bytes.slice(4..))).await.unwrap();
}

/// The next frame, skipping pings; `None` at a WebSocket close, with its
/// code.
async fn next<M: Message>(ws: &mut Ws) -> Result<Frame<M>, Option<u16>> {
    loop {
        match within(ws.next()).await {
            Some(Ok(WsMessage::Binary(payload))) => {
                return Ok(wire::decode_payload(&payload).expect("one message, one payload"));
            }
            Some(Ok(WsMessage::Close(close))) => return Err(close.map(|c| c.code.into())),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Err(None),
        }
    }
}

/// Connects and says hello in protocol `M`; returns the user id.
async fn handshake<M: Message>(ws: &mut Ws) -> u32 {
    send(ws, &Frame::<()>::Hello(hello::<M>())).await;
    match next::<M>(ws).await {
        Ok(Frame::Welcome(welcome)) => welcome.user_id,
        other => panic!("expected a welcome, got {other:?}"),
    }
}

#[tokio::test]
async fn a_websocket_client_speaks_the_same_protocol() {
    let service = test_server(ws_config());
    let (_, ws_address) = start_ws(&service).await;
    let (mut ws, selected) = connect(ws_address, true).await;
    assert_eq!(selected.as_deref(), Some(WEBSOCKET_SUBPROTOCOL));
    handshake::<TestMessage>(&mut ws).await;
    send(
        &mut ws,
        &Frame::App(TestMessage::Echo { text: "hi".into() }),
    )
    .await;
    let echoed = next::<TestMessage>(&mut ws).await.unwrap();
    assert_eq!(
        echoed,
        Frame::App(TestMessage::Echoed { text: "hi".into() })
    );
    // A client that offers no subprotocol is accepted too.
    let (mut plain, selected) = connect(ws_address, false).await;
    assert_eq!(selected, None);
    handshake::<TestMessage>(&mut plain).await;
    service.shutdown().await;
}

/// A TCP client and a WebSocket client in one room hear each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_room_mixes_tcp_and_websocket_members() {
    let service = chat_server(ws_config());
    let (tcp_address, ws_address) = start_ws(&service).await;
    let mut tcp = Client::<ChatMessage>::connect(tcp_address).await.unwrap();
    let (mut ws, _) = connect(ws_address, true).await;
    let ws_user = handshake::<ChatMessage>(&mut ws).await;
    send(&mut ws, &Frame::App(ChatMessage::JoinRoom { room_id: 9 })).await;
    assert!(matches!(
        next::<ChatMessage>(&mut ws).await,
        Ok(Frame::App(ChatMessage::RoomJoined { .. }))
    ));
    within(tcp.request(&ChatMessage::JoinRoom { room_id: 9 }, |m| {
        matches!(m, ChatMessage::RoomJoined { .. })
    }))
    .await
    .unwrap();
    let say = |text: &str| ChatMessage::SendChat {
        room_id: 9,
        text: text.into(),
    };
    tcp.send(&say("from tcp")).await.unwrap();
    send(&mut ws, &Frame::App(say("from the browser"))).await;
    let mut ws_heard = Vec::new();
    while ws_heard.len() < 2 {
        if let Ok(Frame::App(ChatMessage::ChatBroadcast { text, .. })) = next(&mut ws).await {
            ws_heard.push(text);
        }
    }
    let mut tcp_heard = Vec::new();
    while tcp_heard.len() < 2 {
        if let ChatMessage::ChatBroadcast { text, sender, .. } =
            within(tcp.next_message()).await.unwrap()
        {
            if text == "from the browser" {
                assert_eq!(sender, ws_user);
            }
            tcp_heard.push(text);
        }
    }
    for heard in [&mut ws_heard, &mut tcp_heard] {
        heard.sort();
        assert_eq!(heard, &["from tcp", "from the browser"]);
    }
    service.shutdown().await;
}

/// A text message, and a message over the frame limit: a gamewire close
/// frame as a binary message, then a WebSocket close with 4000 plus its
/// code.
#[tokio::test]
async fn closes_carry_the_gamewire_code() {
    let service = test_server(TcpServerConfig {
        max_frame_len: 1024,
        ..ws_config()
    });
    let (_, ws_address) = start_ws(&service).await;
    let cases = [
        (WsMessage::text("hello?"), CloseCode::Unsupported),
        (
            WsMessage::Binary(vec![0u8; 4096].into()),
            CloseCode::FrameTooLarge,
        ),
    ];
    for (message, expected) in cases {
        let (mut ws, _) = connect(ws_address, true).await;
        handshake::<TestMessage>(&mut ws).await;
        ws.send(message).await.unwrap();
        let close = loop {
            match next::<TestMessage>(&mut ws).await {
                Ok(Frame::Close(close)) => break close,
                Ok(_) => continue,
                Err(code) => panic!("no close frame before the WebSocket close ({code:?})"),
            }
        };
        assert_eq!(close.code, expected.as_u16(), "{close:?}");
        let ws_code = next::<TestMessage>(&mut ws).await.unwrap_err();
        assert_eq!(ws_code, Some(websocket_close_code(expected.as_u16())));
    }
    service.shutdown().await;
}

/// The bounds of the session hold on WebSocket: a client that reads
/// nothing is closed as a slow consumer when its queue's bytes are spent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_websocket_reader_is_a_slow_consumer() {
    let service = test_server(TcpServerConfig {
        outbound_queue_bytes: 256 * 1024,
        ..ws_config()
    });
    let (tcp_address, ws_address) = start_ws(&service).await;
    let (mut sleeper, _) = connect(ws_address, true).await;
    let user = handshake::<TestMessage>(&mut sleeper).await;
    let flooder = Client::<TestMessage>::connect(tcp_address).await.unwrap();
    let flood = TestMessage::Flood {
        target: user,
        count: 2000,
        size: 32 * 1024,
    };
    flooder.send(&flood).await.unwrap();
    let connections = service.connection_service();
    eventually("the silent reader to be closed", || {
        connections.connection_stats().slow_consumer_disconnects == 1
    })
    .await;
    service.shutdown().await;
}

/// A plain `GET /` gets the server's page; without one, a 404 that names
/// the endpoint.
#[tokio::test]
async fn a_plain_get_gets_the_page() {
    async fn get(address: SocketAddr) -> String {
        let mut socket = TcpStream::connect(address).await.unwrap();
        let request = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        within(socket.read_to_string(&mut response)).await.unwrap();
        response
    }
    let page = "<!doctype html><title>game</title>";
    let service = test_server(ws_config()).web_page(page);
    let (_, ws_address) = start_ws(&service).await;
    let response = get(ws_address).await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.ends_with(page), "{response}");
    service.shutdown().await;

    let service = test_server(ws_config());
    let (_, ws_address) = start_ws(&service).await;
    let response = get(ws_address).await;
    assert!(
        response.starts_with("HTTP/1.1 404 Not Found\r\n"),
        "{response}"
    );
    assert!(response.contains("WebSocket endpoint"), "{response}");
    service.shutdown().await;
}

/// The WebSocket layer's own answers: a ping gets its pong while the
/// server has nothing else to send, and a client's close gets the reply,
/// ends the session and leaves its rooms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_and_closes_are_answered() {
    let service = chat_server(ws_config());
    let (tcp_address, ws_address) = start_ws(&service).await;
    let (mut ws, _) = connect(ws_address, true).await;
    let user = handshake::<ChatMessage>(&mut ws).await;
    ws.send(WsMessage::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    let pong = within(ws.next()).await.unwrap().unwrap();
    assert_eq!(pong, WsMessage::Pong(b"are you there".to_vec().into()));

    let mut tcp = Client::<ChatMessage>::connect(tcp_address).await.unwrap();
    tcp.send(&ChatMessage::JoinRoom { room_id: 3 })
        .await
        .unwrap();
    tcp.next_message().await.unwrap();
    send(&mut ws, &Frame::App(ChatMessage::JoinRoom { room_id: 3 })).await;
    assert!(matches!(
        next::<ChatMessage>(&mut ws).await,
        Ok(Frame::App(ChatMessage::RoomJoined { room_id: 3, .. }))
    ));
    ws.close(None).await.unwrap();
    // The reply to the close ends the stream; nothing comes after it.
    loop {
        match within(ws.next()).await {
            Some(Ok(WsMessage::Close(_))) | None => break,
            Some(Ok(WsMessage::Binary(_))) => continue,
            other => panic!("expected the close reply, got {other:?}"),
        }
    }
    loop {
        if let ChatMessage::UserLeft {
            room_id: 3,
            user_id,
        } = tcp.next_message().await.unwrap()
        {
            assert_eq!(user_id, user);
            break;
        }
    }
    service.shutdown().await;
}

/// A client that writes its first frame right behind its upgrade request,
/// in one segment, is read from that frame on; an upgrade that lacks what
/// RFC 6455 asks for gets a 400.
#[tokio::test]
async fn the_upgrade_is_checked_and_early_frames_are_read() {
    let service = test_server(ws_config());
    let (_, ws_address) = start_ws(&service).await;
    let request = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    // The hello, as one masked binary frame (a mask of zeros leaves the
    // payload as it is).
    let hello = wire::encode_frame(&Frame::<()>::Hello(hello::<TestMessage>())).unwrap();
    let payload = &hello[4..];
    assert!(payload.len() < 126);
    let mut bytes = request.as_bytes().to_vec();
    bytes.extend_from_slice(&[0x82, 0x80 | payload.len() as u8, 0, 0, 0, 0]);
    bytes.extend_from_slice(payload);
    let mut socket = TcpStream::connect(ws_address).await.unwrap();
    socket.write_all(&bytes).await.unwrap();
    let mut response = Vec::new();
    let mut chunk = [0u8; 512];
    // The 101, then the welcome as an unmasked binary frame.
    let welcome = loop {
        let n = within(socket.read(&mut chunk)).await.unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&response));
        response.extend_from_slice(&chunk[..n]);
        if let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") {
            let frame = &response[end + 4..];
            if frame.len() >= 2 && frame.len() >= 2 + usize::from(frame[1]) {
                break frame[2..2 + usize::from(frame[1])].to_vec();
            }
        }
    };
    let head = String::from_utf8_lossy(&response);
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(
        head.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{head}"
    );
    assert!(matches!(
        wire::decode_payload::<Frame<TestMessage>>(&welcome).unwrap(),
        Frame::Welcome(_)
    ));

    let old = request.replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8");
    let mut socket = TcpStream::connect(ws_address).await.unwrap();
    socket.write_all(old.as_bytes()).await.unwrap();
    let mut response = String::new();
    within(socket.read_to_string(&mut response)).await.unwrap();
    assert!(
        response.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{response}"
    );
    assert!(
        response.contains("sec-websocket-version: 13\r\n"),
        "{response}"
    );
    service.shutdown().await;
}
