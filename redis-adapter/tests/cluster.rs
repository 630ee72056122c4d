//! Rooms across nodes: a real `redis-server` of the test's own, and three
//! server nodes, each on a tokio runtime of its own, so that one can be
//! crashed (its runtime dropped at once: no goodbye reaches Redis, as with
//! `kill -9`; the chat example's own test kills a process). Clients talk to
//! them over TCP on 127.0.0.1.
//!
//! Needs Debian's `redis-server`; without it each test says it was
//! skipped, and under CI (`CI` set) it fails.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gamewire::client::{Client, Incoming};
use gamewire::wire::{ErrorCode, ErrorFrame};
use gamewire::{ChatMessage, SendError, TcpGameService, TcpServerConfig};
use gamewire_redis::RedisAdapter;
use gamewire_tests::redis::RedisServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The lease of the tests' nodes: a crashed node is found gone within
/// 4 s.
const LEASE: Duration = Duration::from_secs(3);

/// How long anything that should happen may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// One server node on a runtime of its own.
struct Node {
    runtime: Option<tokio::runtime::Runtime>,
    service: TcpGameService,
    address: SocketAddr,
}

impl Node {
    /// Starts a node of the cluster on `url`, once it has joined.
    async fn start(url: &str) -> Node {
        Node::with(url, |adapter| adapter).await
    }

    /// Starts a node whose adapter `configure` sets up, its lease
    /// [`LEASE`] unless it says otherwise.
    async fn with(
        url: &str,
        configure: impl FnOnce(RedisAdapter) -> RedisAdapter + Send + 'static,
    ) -> Node {
        Node::with_config(url, TcpServerConfig::default(), configure).await
    }

    /// Starts a node with `config` (and an operator's listener, for its
    /// metrics) whose adapter `configure` sets up.
    async fn with_config(
        url: &str,
        config: TcpServerConfig,
        configure: impl FnOnce(RedisAdapter) -> RedisAdapter + Send + 'static,
    ) -> Node {
        let url = url.to_owned();
        let node = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let (service, address) = runtime.block_on(async {
                let adapter = RedisAdapter::connect(&url).await.unwrap();
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let address = listener.local_addr().unwrap();
                let config = TcpServerConfig {
                    metrics_bind_address: Some("127.0.0.1:0".into()),
                    ..config
                };
                let service = TcpGameService::with_config(config)
                    .protocol::<ChatMessage>()
                    .adapter(configure(adapter.with_lease(LEASE)));
                let serving = service.clone();
                tokio::spawn(async move { serving.serve(listener).await.unwrap() });
                (service, address)
            });
            Node {
                runtime: Some(runtime),
                service,
                address,
            }
        })
        .join()
        .unwrap();
        // The handshake completes once the node accepts, after it joined.
        Client::<ChatMessage>::connect(node.address)
            .await
            .unwrap()
            .close()
            .await;
        node
    }

    async fn client(&self) -> Client<ChatMessage> {
        Client::connect(self.address).await.unwrap()
    }

    /// Stops the node at once, as `kill -9` would: its tasks are dropped
    /// where they stand.
    fn crash(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    fn room_size(&self, room_id: u32) -> usize {
        self.service.get_room_status(room_id).0
    }

    /// The value of one sample of its metrics, such as
    /// `gamewire_cluster_up`; 0 when it is not there.
    async fn metric(&self, sample: &str) -> f64 {
        let address = self
            .service
            .local_metrics_addr()
            .expect("a metrics listener");
        let mut socket = TcpStream::connect(address).await.unwrap();
        let request = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        tokio::time::timeout(PATIENCE, socket.read_to_string(&mut response))
            .await
            .expect("a scrape in time")
            .unwrap();
        response
            .lines()
            .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' '))
            .map_or(0.0, |value| value.parse().unwrap())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.crash();
    }
}

/// Waits until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "not within {PATIENCE:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The next message, failing the test after [`PATIENCE`].
async fn next(client: &mut Client<ChatMessage>) -> Incoming<ChatMessage> {
    tokio::time::timeout(PATIENCE, client.recv())
        .await
        .expect("a message in time")
        .expect("the connection is open")
}

/// Skips what is not a message matching `wanted`, up to [`PATIENCE`].
async fn expect(
    client: &mut Client<ChatMessage>,
    wanted: impl Fn(&ChatMessage) -> bool,
) -> ChatMessage {
    loop {
        if let Incoming::Message(message) = next(client).await
            && wanted(&message)
        {
            return message;
        }
    }
}

/// The next error frame, skipping messages but failing on one that is
/// `forbidden`, or on the close.
async fn error_frame(
    client: &mut Client<ChatMessage>,
    forbidden: impl Fn(&ChatMessage) -> bool,
) -> ErrorFrame {
    loop {
        match next(client).await {
            Incoming::Error(error) => return error,
            Incoming::Message(message) if forbidden(&message) => panic!("unexpected {message:?}"),
            Incoming::Message(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

async fn join(client: &mut Client<ChatMessage>, room_id: u32) -> Vec<u32> {
    let reply = client
        .request(&ChatMessage::JoinRoom { room_id }, |m| {
            matches!(m, ChatMessage::RoomJoined { .. })
        })
        .await
        .unwrap();
    let ChatMessage::RoomJoined { users, .. } = reply else {
        unreachable!()
    };
    users
}

/// A member of `room_id` on each of two nodes, each known on the other's
/// node: the first joins, the second node learns of it, the second joins,
/// and the first hears of it.
async fn one_member_each(
    first: &Node,
    second: &Node,
    room_id: u32,
) -> (Client<ChatMessage>, Client<ChatMessage>) {
    let mut one = first.client().await;
    let mut other = second.client().await;
    join(&mut one, room_id).await;
    eventually("the second node knows the room", || {
        second.room_size(room_id) == 1
    })
    .await;
    join(&mut other, room_id).await;
    expect(&mut one, |m| matches!(m, ChatMessage::UserJoined { .. })).await;
    (one, other)
}

/// Says lines in `room_id` until `listener` hears one of `speaker`'s: after
/// a fault the nodes take a while to find each other again. Returns the
/// text heard; fails on a message to the listener that is `forbidden`, and
/// after 400 lines.
async fn say_until_heard(
    speaker: &mut Client<ChatMessage>,
    listener: &mut Client<ChatMessage>,
    room_id: u32,
    forbidden: impl Fn(&ChatMessage) -> bool,
) -> String {
    for attempt in 0..400 {
        let text = format!("line {attempt}");
        let _ = speaker.send(&ChatMessage::SendChat { room_id, text }).await;
        let got = tokio::time::timeout(Duration::from_millis(50), listener.recv()).await;
        match got {
            Ok(Some(Incoming::Message(ChatMessage::ChatBroadcast { sender, text, .. })))
                if sender == speaker.user_id() =>
            {
                return text;
            }
            Ok(Some(Incoming::Message(message))) if forbidden(&message) => {
                panic!("unexpected {message:?}")
            }
            Ok(Some(_)) | Err(_) => {}
            Ok(None) => panic!("the listener was disconnected"),
        }
    }
    panic!("no line of the speaker's reached the listener");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_spans_three_nodes() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let nodes = [
        Node::start(&redis.url()).await,
        Node::start(&redis.url()).await,
        Node::start(&redis.url()).await,
    ];
    let mut clients = Vec::new();
    for node in &nodes {
        clients.push(node.client().await);
    }
    let ids: Vec<u32> = clients.iter().map(Client::user_id).collect();

    // Each joins once the node it is on knows the members before it.
    for (i, client) in clients.iter_mut().enumerate() {
        eventually("the members before are known", || {
            nodes[i].room_size(7) == i
        })
        .await;
        let mut users = join(client, 7).await;
        users.sort_unstable();
        let mut expected = ids[..=i].to_vec();
        expected.sort_unstable();
        assert_eq!(users, expected, "RoomJoined names members on every node");
    }
    for (i, client) in clients.iter_mut().enumerate() {
        for &newcomer in &ids[i + 1..] {
            let notice = expect(client, |m| matches!(m, ChatMessage::UserJoined { .. })).await;
            assert_eq!(
                notice,
                ChatMessage::UserJoined {
                    room_id: 7,
                    user_id: newcomer
                }
            );
        }
    }
    for node in &nodes {
        eventually("every node sees three members", || node.room_size(7) == 3).await;
    }

    // Every line reaches every member once, in each sender's order.
    const LINES: usize = 50;
    for round in 0..LINES {
        for client in &clients {
            let text = format!("{round}");
            client
                .send(&ChatMessage::SendChat { room_id: 7, text })
                .await
                .unwrap();
        }
    }
    for client in &mut clients {
        let mut heard: HashMap<u32, Vec<usize>> = HashMap::new();
        while heard.values().map(Vec::len).sum::<usize>() < LINES * ids.len() {
            match next(client).await {
                Incoming::Message(ChatMessage::ChatBroadcast { sender, text, .. }) => {
                    heard.entry(sender).or_default().push(text.parse().unwrap());
                }
                other => panic!("only chat lines are expected now: {other:?}"),
            }
        }
        for &sender in &ids {
            assert_eq!(
                heard[&sender],
                (0..LINES).collect::<Vec<_>>(),
                "from {sender}"
            );
        }
    }

    // The room listing and the status are the cluster's.
    let list = clients[2]
        .request(&ChatMessage::ListRooms, |m| {
            matches!(m, ChatMessage::RoomList { .. })
        })
        .await
        .unwrap();
    let ChatMessage::RoomList { rooms } = list else {
        unreachable!()
    };
    assert_eq!(rooms.len(), 1);
    assert_eq!((rooms[0].room_id, rooms[0].user_count), (7, 3));

    // `send_to_user` reaches a user on another node, and says when the
    // user is on none.
    let note = ChatMessage::RoomLeft { room_id: 99 };
    nodes[0]
        .service
        .connection_service()
        .send_to_user(ids[2], &note)
        .await
        .unwrap();
    assert_eq!(expect(&mut clients[2], |_| true).await, note);
    let nobody = nodes[0]
        .service
        .connection_service()
        .send_to_user(999_999, &note)
        .await;
    assert!(
        matches!(nobody, Err(SendError::UnknownUser(999_999))),
        "{nobody:?}"
    );

    // A leave and a disconnect are told on every node.
    let leaving = clients.remove(1);
    leaving.close().await;
    for client in &mut clients {
        let notice = expect(client, |m| matches!(m, ChatMessage::UserLeft { .. })).await;
        assert_eq!(
            notice,
            ChatMessage::UserLeft {
                room_id: 7,
                user_id: ids[1]
            }
        );
    }
    for node in &nodes {
        eventually("every node sees two members", || node.room_size(7) == 2).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_node_leaves_its_rooms_within_its_lease() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let survivor = Node::start(&redis.url()).await;
    let mut doomed = Node::start(&redis.url()).await;
    let (mut staying, going) = one_member_each(&survivor, &doomed, 3).await;
    let gone_id = going.user_id();

    let crashed = Instant::now();
    doomed.crash();
    let notice = expect(&mut staying, |m| matches!(m, ChatMessage::UserLeft { .. })).await;
    let took = crashed.elapsed();
    assert_eq!(
        notice,
        ChatMessage::UserLeft {
            room_id: 3,
            user_id: gone_id
        }
    );
    // The documented bound: the lease and a third of it (4 s here),
    // with a second for a busy machine.
    assert!(
        took <= LEASE + LEASE / 3 + Duration::from_secs(1),
        "{took:?}"
    );
    assert_eq!(survivor.room_size(3), 1);
    drop(going);

    // The survivor goes on serving.
    let line = ChatMessage::SendChat {
        room_id: 3,
        text: "still here".into(),
    };
    staying.send(&line).await.unwrap();
    expect(&mut staying, |m| {
        matches!(m, ChatMessage::ChatBroadcast { .. })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_loses_nothing_silently() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let a = Node::start(&redis.url()).await;
    let b = Node::start(&redis.url()).await;
    let (mut speaker, mut listener) = one_member_each(&a, &b, 5).await;

    redis.kill().await;
    // Said while Redis is down: the speaker's node delivers it to its own
    // members and tells the speaker it reached no further.
    let said = ChatMessage::SendChat {
        room_id: 5,
        text: "during the outage".into(),
    };
    speaker.send(&said).await.unwrap();
    let error = error_frame(&mut speaker, |m| {
        !matches!(m, ChatMessage::ChatBroadcast { .. })
    })
    .await;
    assert!(
        [ErrorCode::HandlerFailed, ErrorCode::NotDelivered]
            .map(ErrorCode::as_u16)
            .contains(&error.code),
        "{error:?}"
    );
    assert!(error.message.contains("other nodes"), "{error:?}");

    redis.restart().await;
    // Both nodes come back: they reconnect, subscribe and announce their
    // members again; then lines cross nodes again, each once.
    // Nobody left: the nodes found each other again within the grace the
    // restart gives them.
    let heard = say_until_heard(&mut speaker, &mut listener, 5, |m| {
        matches!(m, ChatMessage::UserLeft { .. })
    })
    .await;
    assert_ne!(heard, "during the outage");
    let listener_id = listener.user_id();
    eventually("a knows the listener again", || {
        a.service.get_room_status(5).1.contains(&listener_id)
    })
    .await;
    // A fresh user id does not repeat one given before the restart.
    let newcomer = a.client().await;
    assert!(newcomer.user_id() > listener_id.max(speaker.user_id()));
    // Past the grace (a lease), nobody was taken for gone either.
    tokio::time::sleep(LEASE + LEASE / 3).await;
    assert_eq!(a.room_size(5), 2);
    assert_eq!(b.room_size(5), 2);
    while let Ok(Some(incoming)) =
        tokio::time::timeout(Duration::from_millis(100), speaker.recv()).await
    {
        if let Incoming::Message(left @ ChatMessage::UserLeft { .. }) = incoming {
            panic!("a false notice after the restart: {left:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_says_goodbye_before_its_lease_runs_out() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    // A lease longer than the test's patience: only the goodbye can tell
    // the survivor in time.
    let long = Duration::from_secs(600);
    let survivor = Node::with(&redis.url(), move |a| a.with_lease(long)).await;
    let first = redis.members("gamewire:nodes").await;
    let leaving = Node::with(&redis.url(), move |a| a.with_lease(long)).await;
    let both = redis.members("gamewire:nodes").await;
    let leaving_id = both.iter().find(|id| !first.contains(id)).unwrap().clone();
    let (mut staying, going) = one_member_each(&survivor, &leaving, 4).await;
    let gone_id = going.user_id();

    // `shutdown` returns once the node has left the cluster.
    leaving.service.shutdown().await;
    let its_keys = redis
        .command(&format!(
            "EXISTS gamewire:node:{leaving_id}:alive gamewire:node:{leaving_id}:rooms \
             gamewire:node:{leaving_id}:users"
        ))
        .await;
    assert_eq!(its_keys.as_deref(), Some(":0"), "its keys are gone");
    assert_eq!(
        redis.members("gamewire:nodes").await,
        first,
        "only the survivor is listed"
    );
    let notice = expect(&mut staying, |m| matches!(m, ChatMessage::UserLeft { .. })).await;
    assert_eq!(
        notice,
        ChatMessage::UserLeft {
            room_id: 4,
            user_id: gone_id
        }
    );
    assert_eq!(survivor.room_size(4), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_falls_behind_tells_the_members_who_missed_lines() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    // A backlog smaller than any room message: the behind node drops
    // every one, as a node far behind its peers would drop the excess.
    // Presence events (under four times it) still get through.
    let speaking = Node::start(&redis.url()).await;
    let behind = Node::with(&redis.url(), |a| a.with_backlog(40)).await;
    let (mut speaker, mut listener) = one_member_each(&speaking, &behind, 6).await;

    let line = ChatMessage::SendChat {
        room_id: 6,
        text: "lost on the way".into(),
    };
    speaker.send(&line).await.unwrap();
    // The line itself must not come: it was dropped.
    let error = error_frame(&mut listener, |m| {
        matches!(m, ChatMessage::ChatBroadcast { .. })
    })
    .await;
    assert_eq!(error.code, ErrorCode::NotDelivered.as_u16(), "{error:?}");
    assert!(
        error.message.contains("1 message said in room 6") && error.message.contains("fell behind"),
        "{error:?}"
    );
    // The speaker heard its own line, as ever; the node it is on was not
    // behind.
    expect(&mut speaker, |m| {
        matches!(m, ChatMessage::ChatBroadcast { .. })
    })
    .await;

    // The operator sees it in both nodes' metrics: the listener's
    // UserJoined notice crossed one way, the line was dropped the other.
    assert_eq!(speaking.metric("gamewire_cluster_up").await, 1.0);
    assert_eq!(speaking.metric("gamewire_cluster_nodes").await, 1.0);
    assert_eq!(
        speaking.metric("gamewire_cluster_published_total").await,
        1.0
    );
    assert_eq!(
        speaking.metric("gamewire_cluster_received_total").await,
        1.0
    );
    assert_eq!(behind.metric("gamewire_cluster_published_total").await, 1.0);
    assert_eq!(behind.metric("gamewire_cluster_dropped_total").await, 1.0);
    assert_eq!(behind.metric("gamewire_cluster_received_total").await, 0.0);
    let missed = "gamewire_error_frames_total{code=\"not_delivered\"}";
    assert_eq!(behind.metric(missed).await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_other_nodes_rooms_do_not_fill_this_ones_table() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let elsewhere = Node::start(&redis.url()).await;
    let one_room = TcpServerConfig {
        max_rooms: 1,
        ..TcpServerConfig::default()
    };
    let here = Node::with_config(&redis.url(), one_room, |a| a).await;
    let mut visitor = elsewhere.client().await;
    for room_id in [10, 11] {
        join(&mut visitor, room_id).await;
    }
    eventually("this node knows the other's rooms", || {
        here.room_size(10) == 1 && here.room_size(11) == 1
    })
    .await;

    // Two rooms known from the other node, and still room for one here.
    let mut local = here.client().await;
    join(&mut local, 20).await;
    local
        .send(&ChatMessage::JoinRoom { room_id: 21 })
        .await
        .unwrap();
    // Not joined past max_rooms.
    let refused = error_frame(&mut local, |m| matches!(m, ChatMessage::RoomJoined { .. })).await;
    assert!(refused.message.contains("rooms"), "{refused:?}");
    // A room that exists in the cluster is joined, not created.
    join(&mut local, 10).await;
    assert_eq!(here.room_size(10), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_events_overflowed_still_hears_its_rooms() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let speaking = Node::start(&redis.url()).await;
    // A queue of one event, and a Redis that stalls: events overflow, and
    // the node must mend both what it announced and what it listens to.
    let busy = Node::with(&redis.url(), |a| a.with_queue(1)).await;
    let mut speaker = speaking.client().await;
    join(&mut speaker, 8).await;
    let mut first = busy.client().await;
    join(&mut first, 8).await;
    let mut second = busy.client().await;
    join(&mut second, 8).await;
    // (Their notices may not have crossed: the queue holds one event.)
    eventually("both nodes know all three", || {
        speaking.room_size(8) == 3 && busy.room_size(8) == 3
    })
    .await;

    // While Redis stalls, the second member leaves and joins again: the
    // leave waits in the writer, what follows overflows the queue.
    let stall = tokio::spawn(redis.stall(500));
    tokio::time::sleep(Duration::from_millis(100)).await;
    for message in [
        ChatMessage::LeaveRoom { room_id: 8 },
        ChatMessage::JoinRoom { room_id: 8 },
    ] {
        second.send(&message).await.unwrap();
    }
    expect(&mut second, |m| matches!(m, ChatMessage::RoomJoined { .. })).await;
    stall.await.unwrap();
    // Then the first member leaves: the second is still in the room, and
    // the node must go on hearing it.
    first
        .send(&ChatMessage::LeaveRoom { room_id: 8 })
        .await
        .unwrap();
    expect(&mut first, |m| matches!(m, ChatMessage::RoomLeft { .. })).await;

    say_until_heard(&mut speaker, &mut second, 8, |_| false).await;
    let mut expected = vec![speaker.user_id(), second.user_id()];
    expected.sort_unstable();
    eventually("the other node sees who is in the room", || {
        speaking.service.get_room_status(8).1 == expected
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counter_that_went_back_gives_out_no_held_id() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let a = Node::start(&redis.url()).await;
    let b = Node::start(&redis.url()).await;
    // Both users known on both nodes (a user's connect is said before
    // their join).
    let (on_a, on_b) = one_member_each(&a, &b, 9).await;
    let held = [on_a.user_id(), on_b.user_id()];

    // As after a Redis that restarted empty, before the nodes raised the
    // counter again: it stands below ids that are held.
    let below = held.iter().min().unwrap() - 1;
    let reset = redis
        .command(&format!("SET gamewire:next_user_id {below}"))
        .await;
    assert_eq!(reset.as_deref(), Some("+OK"));
    let newcomer = b.client().await;
    assert!(
        !held.contains(&newcomer.user_id()),
        "{} is held already: {held:?}",
        newcomer.user_id()
    );
    let another = a.client().await;
    assert!(!held.contains(&another.user_id()) && another.user_id() != newcomer.user_id());
}
