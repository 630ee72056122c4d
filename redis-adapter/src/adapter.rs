//! [`RedisAdapter`]: rooms, presence and `send_to_user` across the nodes
//! that share one Redis.
//!
//! What lives in Redis (every key and channel starts with the prefix,
//! `gamewire` by default):
//!
//! | key or channel | what |
//! | --- | --- |
//! | `nodes` | the ids of the nodes that joined (random 64-bit numbers) |
//! | `node:{n}:alive` | node `n`'s lease, a key that expires unless renewed |
//! | `node:{n}:rooms`, `node:{n}:users` | node `n`'s memberships (`room:user`) and users |
//! | channel `presence` | every membership event, `J n room user`, `L`, `C n user`, `D`, `H n` (announced again), `G n` (left) |
//! | channel `room:{id}` | room `id`'s messages, subscribed only by the nodes with members in it |
//! | channel `to:{n}` | messages to a user of node `n` |
//!
//! One task per node writes, in the order the node's sessions did things,
//! pipelining whatever waits: a room message costs one `PUBLISH`. One task
//! reads the subscriptions, and subscribes again after a reconnection. One
//! renews the lease and watches the other nodes' leases.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use gamewire::cluster::{Adapter, ClusterError, ClusterFrame, ClusterStats, LocalNode, NodeId};
use gamewire::wire::Hello;
use gamewire::{AuthError, Authenticator};
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink};
use redis::{AsyncCommands, Pipeline};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::inbox::{Dropped, Inbox, Kind};
use crate::{RedisAuthenticator, RedisError, lock};

/// The prefix of every key and channel, unless
/// [`RedisAdapter::with_prefix`] names another.
pub const DEFAULT_PREFIX: &str = "gamewire";

/// How long a node's lease lasts unless renewed, by default; it is renewed
/// every third of it. A node killed without a word is found gone by the
/// others within the lease and a third: 13.3 s by default.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// Most events a node holds for Redis, by default: beyond, a room message
/// reaches that node's members only and its sender is told.
pub const DEFAULT_QUEUE: usize = 65_536;

/// Most bytes of the other nodes' messages a node holds waiting for
/// delivery, by default: beyond, a node that fell behind drops room
/// messages and tells the members who missed them.
pub const DEFAULT_BACKLOG: usize = 16 * 1024 * 1024;

/// Most events written to Redis in one round trip.
const BATCH: usize = 512;

/// How long a Redis command may take before it is given up (and Redis
/// taken for down), and how long a connection may take to open.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a stopping server waits for its node to leave the cluster:
/// the last events and the goodbye, a few round trips.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);

/// A node's work for Redis, in the order its sessions did it.
enum Op {
    Connected(u32),
    Disconnected(u32),
    Joined(u32, u32),
    Left(u32, u32),
    Publish(u32, ClusterFrame),
}

/// Makes a gamewire server one node of a cluster whose nodes share one
/// Redis: rooms, their members and notices, and `send_to_user` span every
/// node; user ids come from one counter in Redis.
///
/// ```no_run
/// use gamewire::TcpGameService;
/// use gamewire_redis::RedisAdapter;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// TcpGameService::with_default_config()
///     .adapter(RedisAdapter::connect("redis://127.0.0.1:6379/").await?)
///     .start()
///     .await?;
/// # Ok(())
/// # }
/// ```
///
/// The guarantees, and their limits, are in the book's "Scaling out"
/// chapter.
pub struct RedisAdapter {
    client: redis::Client,
    redis: ConnectionManager,
    prefix: String,
    lease: Duration,
    queue: usize,
    backlog: usize,
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisAdapter")
            .field("prefix", &self.prefix)
            .field("lease", &self.lease)
            .field("queue", &self.queue)
            .field("backlog", &self.backlog)
            .field("node", &self.inner.node.get())
            .finish_non_exhaustive()
    }
}

/// What the adapter's methods and its tasks share.
#[derive(Default)]
struct Inner {
    node: OnceLock<NodeId>,
    ops: OnceLock<mpsc::Sender<Op>>,
    /// Whether the last exchange with Redis worked.
    up: AtomicBool,
    /// A membership event could not be queued: announce everything again.
    dirty: AtomicBool,
    /// The users of other nodes, and where they are.
    users: Mutex<HashMap<u32, NodeId>>,
    /// The other nodes this one knows of, whose leases it watches.
    known: Mutex<HashSet<NodeId>>,
    /// This node's members per room: the rooms it subscribes to.
    subscribed: Mutex<HashSet<u32>>,
    /// Where subscriptions are made, while subscribed.
    sink: Mutex<Option<PubSubSink>>,
    /// Counters for [`Adapter::stats`].
    counts: Counts,
    /// When the other nodes' leases may be judged again, after Redis came
    /// back: until then, a missing lease may only mean its node has not
    /// announced itself again yet.
    judge_from: Mutex<Option<tokio::time::Instant>>,
    /// Set once the node leaves: its lease is no longer renewed.
    leaving: AtomicBool,
    /// This node, for the authenticator, once started.
    local: OnceLock<LocalNode>,
    /// Tells the writer to leave the cluster.
    leave: Notify,
    /// The writer, which leaves the cluster when it ends.
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl RedisAdapter {
    /// Connects to the Redis at `url` (`redis://host:port/`). The node
    /// joins the cluster when the server starts.
    ///
    /// # Errors
    ///
    /// When the URL is not one, or Redis cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, RedisError> {
        let client = redis::Client::open(url)?;
        // A Redis that stopped answering is found out in a bounded time:
        // what waits for it is reported, not held.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_max_delay(Duration::from_secs(2));
        let redis = ConnectionManager::new_with_config(client.clone(), config).await?;
        Ok(RedisAdapter {
            client,
            redis,
            prefix: DEFAULT_PREFIX.to_owned(),
            lease: DEFAULT_LEASE,
            queue: DEFAULT_QUEUE,
            backlog: DEFAULT_BACKLOG,
            inner: Arc::default(),
        })
    }

    /// Keys and channels start with `prefix` instead of
    /// [`DEFAULT_PREFIX`]: one per game sharing a Redis.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// A node's lease lasts `lease` instead of [`DEFAULT_LEASE`]; a node
    /// killed without a word is found gone within `lease` and a third.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_secs(1));
        self
    }

    /// At most `events` wait for Redis instead of [`DEFAULT_QUEUE`].
    pub fn with_queue(mut self, events: usize) -> Self {
        self.queue = events.max(1);
        self
    }

    /// At most `bytes` of the other nodes' messages wait for delivery on
    /// this node instead of [`DEFAULT_BACKLOG`].
    pub fn with_backlog(mut self, bytes: usize) -> Self {
        self.backlog = bytes;
        self
    }

    /// This node's id, once the server has started.
    pub fn node_id(&self) -> Option<NodeId> {
        self.inner.node.get().copied()
    }

    fn queue_membership(&self, op: Op) {
        if let Some(ops) = self.inner.ops.get()
            && ops.try_send(op).is_err()
        {
            // The replica on the other nodes would miss it: the writer
            // announces this node's state whole instead.
            self.inner.dirty.store(true, Ordering::Relaxed);
        }
    }
}

/// Key and channel names under one prefix.
#[derive(Debug, Clone)]
struct Names(Arc<str>);

impl Names {
    fn key(&self, name: impl fmt::Display) -> String {
        format!("{}:{name}", self.0)
    }
    fn alive(&self, node: NodeId) -> String {
        self.key(format_args!("node:{node}:alive"))
    }
    fn rooms(&self, node: NodeId) -> String {
        self.key(format_args!("node:{node}:rooms"))
    }
    fn users(&self, node: NodeId) -> String {
        self.key(format_args!("node:{node}:users"))
    }
    fn room(&self, room_id: u32) -> String {
        self.key(format_args!("room:{room_id}"))
    }
    fn to(&self, node: NodeId) -> String {
        self.key(format_args!("to:{node}"))
    }
}

/// What a node has done, for [`Adapter::stats`].
#[derive(Default)]
struct Counts {
    published: AtomicU64,
    received: AtomicU64,
    dropped: AtomicU64,
    undelivered: AtomicU64,
    disconnects: AtomicU64,
}

impl Counts {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// What a node's three tasks share.
#[derive(Clone)]
struct Link {
    client: redis::Client,
    redis: ConnectionManager,
    names: Names,
    lease: Duration,
    node: NodeId,
    local: LocalNode,
    inner: Arc<Inner>,
    /// What the other nodes sent, waiting for delivery.
    inbox: Arc<Inbox>,
    /// The presence channel.
    presence: Arc<str>,
    /// This node's own channel, for messages to its users.
    direct: Arc<str>,
    /// What the room channels' names start with, before the room's id.
    room_prefix: Arc<str>,
}

#[gamewire::async_trait]
impl Adapter for RedisAdapter {
    async fn start(&self, local: LocalNode) -> Result<(), ClusterError> {
        let unavailable = |error: redis::RedisError| ClusterError::Unavailable(error.to_string());
        let names = Names(self.prefix.as_str().into());
        let mut redis = self.redis.clone();
        let node = claim_node_id(&mut redis, &names, self.lease)
            .await
            .map_err(unavailable)?;
        let _ = self.inner.local.set(local.clone());
        if self.inner.node.set(node).is_err() {
            return Err(ClusterError::Unavailable(
                "this adapter already serves a node".into(),
            ));
        }
        let (ops, queue) = mpsc::channel(self.queue);
        let _ = self.inner.ops.set(ops);
        let link = Link {
            client: self.client.clone(),
            redis,
            lease: self.lease,
            node,
            local,
            inner: Arc::clone(&self.inner),
            inbox: Arc::new(Inbox::new(self.backlog)),
            presence: names.key("presence").into(),
            direct: names.to(node).into(),
            room_prefix: names.key("room:").into(),
            names,
        };
        // Joined before the server accepts: subscribed, announced and
        // with the other nodes' members in the replica.
        let subscribed = link.subscribe_all().await.map_err(unavailable)?;
        tokio::spawn(link.clone().read(subscribed));
        tokio::spawn(link.clone().deliver());
        tracing::info!(node, "joined the cluster");
        *lock(&self.inner.writer) = Some(tokio::spawn(link.clone().write(queue)));
        tokio::spawn(link.clone().keep_lease());
        Ok(())
    }

    fn user_connected(&self, user_id: u32) {
        self.queue_membership(Op::Connected(user_id));
    }

    fn user_disconnected(&self, user_id: u32) {
        self.queue_membership(Op::Disconnected(user_id));
    }

    fn room_joined(&self, room_id: u32, user_id: u32) {
        self.queue_membership(Op::Joined(room_id, user_id));
    }

    fn room_left(&self, room_id: u32, user_id: u32) {
        self.queue_membership(Op::Left(room_id, user_id));
    }

    fn publish(&self, room_id: u32, message: ClusterFrame) -> Result<(), ClusterError> {
        let queued = if self.inner.up.load(Ordering::Relaxed) {
            let ops = self.inner.ops.get().ok_or(ClusterError::Busy)?;
            ops.try_send(Op::Publish(room_id, message))
                .map_err(|_| ClusterError::Busy)
        } else {
            Err(ClusterError::Unavailable("Redis is unreachable".into()))
        };
        if queued.is_err() {
            Counts::add(&self.inner.counts.undelivered, 1);
        }
        queued
    }

    fn stats(&self) -> Option<ClusterStats> {
        let counts = &self.inner.counts;
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut stats = ClusterStats::default();
        stats.up = self.inner.up.load(Ordering::Relaxed);
        stats.nodes = lock(&self.inner.known).len() as u64;
        stats.published = read(&counts.published);
        stats.received = read(&counts.received);
        stats.dropped = read(&counts.dropped);
        stats.undelivered = read(&counts.undelivered);
        stats.disconnects = read(&counts.disconnects);
        Some(stats)
    }

    async fn send_to_user(&self, user_id: u32, message: ClusterFrame) -> Result<(), ClusterError> {
        let node = lock(&self.inner.users).get(&user_id).copied();
        let node = node.ok_or(ClusterError::UnknownUser(user_id))?;
        let names = Names(self.prefix.as_str().into());
        let mut redis = self.redis.clone();
        let mut payload = envelope(self.node_id().unwrap_or(0), &message);
        payload.extend_from_slice(&user_id.to_be_bytes());
        let receivers: usize = redis
            .publish(names.to(node), payload)
            .await
            .map_err(|error| ClusterError::Unavailable(error.to_string()))?;
        if receivers == 0 {
            // The user's node is not listening: reconnecting to Redis, or
            // dead and not yet found so. Not delivered, but not unknown.
            return Err(ClusterError::Unavailable(format!(
                "node {node}, where user {user_id} is, is not listening now"
            )));
        }
        Ok(())
    }

    async fn stop(&self) {
        let Some(writer) = lock(&self.inner.writer).take() else {
            return;
        };
        self.inner.leave.notify_one();
        // Each command it still sends gives up after RESPONSE_TIMEOUT.
        if tokio::time::timeout(LEAVE_TIMEOUT, writer).await.is_err() {
            tracing::warn!("could not leave the cluster in time: the lease will run out");
        }
    }

    fn authenticator(&self) -> Option<Arc<dyn Authenticator>> {
        let ids = RedisAuthenticator::from_manager(self.redis.clone())
            .with_key(format!("{}:next_user_id", self.prefix));
        Some(Arc::new(ClusterIds {
            ids,
            inner: Arc::clone(&self.inner),
        }))
    }
}

/// Most ids drawn for one hello before it is refused: as many as are held
/// in a row just above where the counter stands.
const MAX_DRAWS: usize = 64;

/// The cluster's user ids: the next of the counter in Redis, skipping ids
/// held by a user connected to any node. The counter alone would give out
/// held ids again after a Redis that restarted empty, until the nodes
/// raised it past their users' ids.
struct ClusterIds {
    ids: RedisAuthenticator,
    inner: Arc<Inner>,
}

impl fmt::Debug for ClusterIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterIds")
            .field("ids", &self.ids)
            .finish()
    }
}

impl ClusterIds {
    fn held(&self, user_id: u32) -> bool {
        lock(&self.inner.users).contains_key(&user_id)
            || self
                .inner
                .local
                .get()
                .is_some_and(|local| local.has_user(user_id))
    }
}

#[gamewire::async_trait]
impl Authenticator for ClusterIds {
    async fn authenticate(&self, hello: &Hello, peer: SocketAddr) -> Result<u32, AuthError> {
        for _ in 0..MAX_DRAWS {
            let user_id = self.ids.authenticate(hello, peer).await?;
            if !self.held(user_id) {
                return Ok(user_id);
            }
            tracing::debug!(user_id, "the counter gave a held id; drawing again");
        }
        Err(AuthError::new(
            "the server cannot give out user ids now; try again",
        ))
    }
}

/// Removes node `ARGV[1]` (its set members `KEYS[3]`, `KEYS[4]`, its entry
/// in `KEYS[2]`) if its lease `KEYS[1]` is still missing, in one step, so
/// that a node announcing itself meanwhile is never removed; returns 1 if
/// it removed it.
const CLEAN_UP: &str = "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end \
    redis.call('SREM', KEYS[2], ARGV[1]) redis.call('DEL', KEYS[3], KEYS[4]) return 1";

/// Raises the counter at `KEYS[1]` to `ARGV[1]` when it is lower.
const RAISE_TO: &str = "local now = tonumber(redis.call('GET', KEYS[1]) or '0') \
    if now < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end";

/// A message as a channel carries it: the sending node's id, big-endian,
/// then the cluster frame; on a `to:{n}` channel, then the recipient's
/// user id, big-endian.
fn envelope(node: NodeId, message: &ClusterFrame) -> Vec<u8> {
    let bytes = message.as_bytes();
    let mut out = Vec::with_capacity(8 + bytes.len());
    out.extend_from_slice(&node.to_be_bytes());
    out.extend_from_slice(bytes);
    out
}

/// Draws a node id at random and claims it by setting its lease, if no
/// live node holds it. Random rather than counted: a counter would start
/// again from 1 in a Redis that restarted empty, and hand a starting node
/// the id of a live one that has not announced itself again yet.
async fn claim_node_id(
    redis: &mut ConnectionManager,
    names: &Names,
    lease: Duration,
) -> redis::RedisResult<NodeId> {
    loop {
        let random = getrandom::u64().map_err(|error| std::io::Error::other(error.to_string()))?;
        // Nonzero (0 means none in a cluster frame) and below 2^63.
        let node = (random >> 1).max(1);
        let claimed: Option<String> = redis::cmd("SET")
            .arg(names.alive(node))
            .arg(1)
            .arg("EX")
            .arg(lease.as_secs())
            .arg("NX")
            .query_async(redis)
            .await?;
        if claimed.is_some() {
            return Ok(node);
        }
    }
}

/// Runs a request of the subscription connection, which has no timeout of
/// its own, giving up after [`RESPONSE_TIMEOUT`] as the other connection
/// does.
async fn within<T>(
    request: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    match tokio::time::timeout(RESPONSE_TIMEOUT, request).await {
        Ok(answer) => answer,
        Err(_) => Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into()),
    }
}

/// The cluster frame of a channel's message, behind the sending node's id
/// (which the pump read already, to leave out this node's own).
fn open_envelope(payload: &[u8]) -> Result<ClusterFrame, ClusterError> {
    let (_node, frame) = payload
        .split_first_chunk::<8>()
        .ok_or(ClusterError::Malformed("no node id"))?;
    ClusterFrame::from_bytes(Bytes::copy_from_slice(frame))
}

/// The recipient and the frame of a `to:{n}` channel's message.
fn open_addressed(payload: &[u8]) -> Result<(u32, ClusterFrame), ClusterError> {
    let (rest, user) = payload
        .split_last_chunk::<4>()
        .ok_or(ClusterError::Malformed("no recipient"))?;
    Ok((u32::from_be_bytes(*user), open_envelope(rest)?))
}

/// A membership event, as the `presence` channel carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presence {
    Joined(NodeId, u32, u32),
    Left(NodeId, u32, u32),
    Connected(NodeId, u32),
    Disconnected(NodeId, u32),
    /// The node announced itself whole: read its sets.
    Hello(NodeId),
    /// The node left the cluster.
    Gone(NodeId),
}

impl Presence {
    fn parse(text: &str) -> Option<Self> {
        let mut words = text.split(' ');
        let kind = words.next()?;
        let node: NodeId = words.next()?.parse().ok()?;
        let mut number = || words.next()?.parse::<u32>().ok();
        let event = match kind {
            "J" => Presence::Joined(node, number()?, number()?),
            "L" => Presence::Left(node, number()?, number()?),
            "C" => Presence::Connected(node, number()?),
            "D" => Presence::Disconnected(node, number()?),
            "H" => Presence::Hello(node),
            "G" => Presence::Gone(node),
            _ => return None,
        };
        Some(event)
    }

    fn node(self) -> NodeId {
        match self {
            Presence::Joined(node, ..)
            | Presence::Left(node, ..)
            | Presence::Connected(node, _)
            | Presence::Disconnected(node, _)
            | Presence::Hello(node)
            | Presence::Gone(node) => node,
        }
    }
}

impl Link {
    /// The writer: this node's events, in order, a pipeline per batch.
    async fn write(self, mut queue: mpsc::Receiver<Op>) {
        let stopped = self.local.stopped();
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let dirty = self.inner.dirty.load(Ordering::Relaxed);
            tokio::select! {
                more = queue.recv_many(&mut batch, BATCH) => if more == 0 { break },
                () = stopped.cancelled() => break,
                () = self.inner.leave.notified() => break,
                // Mended even when no event comes.
                () = tokio::time::sleep(self.lease / 3), if dirty => {}
            }
            self.write_batch(&mut batch).await;
        }
        // What the ending sessions did is said before the node leaves.
        self.inner.leaving.store(true, Ordering::Relaxed);
        while let Ok(op) = queue.try_recv() {
            batch.push(op);
        }
        self.write_batch(&mut batch).await;
        self.leave().await;
    }

    async fn write_batch(&self, batch: &mut Vec<Op>) {
        if !batch.is_empty() {
            self.write_ops(batch).await;
            batch.clear();
        }
        // After the batch, whose events are older than the state
        // announced now: replayed after it, they would undo it.
        if !self.inner.leaving.load(Ordering::Relaxed)
            && self.inner.dirty.swap(false, Ordering::Relaxed)
            && (self.reconcile().await.is_err() || self.announce().await.is_err())
        {
            // Tried again with the next batch, or at the next tick.
            self.inner.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// Writes a batch of events in one pipeline, after following the rooms
    /// it changes: subscribed before a first member's join is said, so the
    /// other nodes never publish to a room this node does not hear.
    async fn write_ops(&self, batch: &[Op]) {
        let rooms: HashSet<u32> = batch
            .iter()
            .filter_map(|op| match *op {
                Op::Joined(room, _) | Op::Left(room, _) => Some(room),
                _ => None,
            })
            .collect();
        for room_id in rooms {
            if self.follow(room_id).await.is_err() {
                self.inner.dirty.store(true, Ordering::Relaxed);
            }
        }
        let node = self.node;
        let presence = &*self.presence;
        let mut pipe = Pipeline::with_capacity(batch.len() * 2);
        for op in batch.iter() {
            match *op {
                Op::Connected(user) => {
                    pipe.sadd(self.names.users(node), user).ignore();
                    pipe.publish(presence, format!("C {node} {user}")).ignore();
                }
                Op::Disconnected(user) => {
                    pipe.srem(self.names.users(node), user).ignore();
                    pipe.publish(presence, format!("D {node} {user}")).ignore();
                }
                Op::Joined(room, user) => {
                    pipe.sadd(self.names.rooms(node), format!("{room}:{user}"))
                        .ignore();
                    pipe.publish(presence, format!("J {node} {room} {user}"))
                        .ignore();
                }
                Op::Left(room, user) => {
                    pipe.srem(self.names.rooms(node), format!("{room}:{user}"))
                        .ignore();
                    pipe.publish(presence, format!("L {node} {room} {user}"))
                        .ignore();
                }
                Op::Publish(room, ref message) => {
                    pipe.publish(self.names.room(room), envelope(node, message))
                        .ignore();
                }
            }
        }
        let mut redis = self.redis.clone();
        let written = pipe.exec_async(&mut redis).await;
        let published = batch
            .iter()
            .filter(|op| matches!(op, Op::Publish(..)))
            .count() as u64;
        let counts = &self.inner.counts;
        match written {
            Ok(()) => Counts::add(&counts.published, published),
            Err(_) => Counts::add(&counts.undelivered, published),
        }
        if written.is_ok() && lock(&self.inner.sink).is_some() {
            self.inner.up.store(true, Ordering::Relaxed);
        }
        if let Err(error) = written {
            tracing::warn!(%error, events = batch.len(), "could not write to Redis");
            self.inner.up.store(false, Ordering::Relaxed);
            self.inner.dirty.store(true, Ordering::Relaxed);
            let why = format!(
                "your message reached the members on this node, not those on other nodes: {error}"
            );
            for op in batch.iter() {
                if let Op::Publish(_, message) = op {
                    self.local.report_undelivered(message, &why);
                }
            }
        }
    }

    /// Subscribes to a room's channel when this node has members there and
    /// is not subscribed, or unsubscribes when it has none and is, so that
    /// what it hears follows its members as they are now. `Err` when there
    /// is no connection or Redis did not answer in time.
    async fn follow(&self, room_id: u32) -> Result<(), ()> {
        let wanted = self.local.has_local_members(room_id);
        if lock(&self.inner.subscribed).contains(&room_id) == wanted {
            return Ok(());
        }
        let Some(mut sink) = lock(&self.inner.sink).clone() else {
            return Err(());
        };
        let channel = self.names.room(room_id);
        let done = match wanted {
            true => within(sink.subscribe(channel)).await,
            false => within(sink.unsubscribe(channel)).await,
        };
        if let Err(error) = done {
            tracing::warn!(room_id, %error, "could not follow a room's channel");
            return Err(());
        }
        let mut subscribed = lock(&self.inner.subscribed);
        match wanted {
            true => subscribed.insert(room_id),
            false => subscribed.remove(&room_id),
        };
        Ok(())
    }

    /// Follows every room this node has members in, or is subscribed to:
    /// after events were dropped, or the connection was made anew.
    async fn reconcile(&self) -> Result<(), ()> {
        let mut rooms: HashSet<u32> = self
            .local
            .local_members()
            .into_iter()
            .map(|(room_id, _)| room_id)
            .collect();
        rooms.extend(lock(&self.inner.subscribed).iter().copied());
        let mut all = Ok(());
        for room_id in rooms {
            all = all.and(self.follow(room_id).await);
        }
        all
    }

    /// Writes this node's state whole (lease, sets) and says so, so that
    /// the other nodes read it again: after Redis lost it, or events were.
    async fn announce(&self) -> redis::RedisResult<()> {
        let node = self.node;
        let members = self.local.local_members();
        let users = self.local.local_users();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .set_ex(self.names.alive(node), 1, self.lease.as_secs())
            .ignore()
            .sadd(self.names.key("nodes"), node)
            .ignore()
            .del(self.names.rooms(node))
            .ignore()
            .del(self.names.users(node))
            .ignore();
        if !members.is_empty() {
            let members: Vec<String> = members
                .iter()
                .map(|(room, user)| format!("{room}:{user}"))
                .collect();
            pipe.sadd(self.names.rooms(node), members).ignore();
        }
        // A Redis that restarted empty must not give out again the ids
        // this node's users hold.
        if let Some(&highest) = users.iter().max() {
            pipe.cmd("EVAL")
                .arg(RAISE_TO)
                .arg(1)
                .arg(self.names.key("next_user_id"))
                .arg(highest)
                .ignore();
        }
        if !users.is_empty() {
            pipe.sadd(self.names.users(node), users).ignore();
        }
        pipe.publish(&*self.presence, format!("H {node}")).ignore();
        let mut redis = self.redis.clone();
        pipe.exec_async(&mut redis).await
    }

    /// Reads another node's sets into the replica.
    async fn read_node(&self, node: NodeId) -> redis::RedisResult<()> {
        let mut redis = self.redis.clone();
        let (members, users): (Vec<String>, Vec<u32>) = redis::pipe()
            .smembers(self.names.rooms(node))
            .smembers(self.names.users(node))
            .query_async(&mut redis)
            .await?;
        let members: Vec<(u32, u32)> = members
            .iter()
            .filter_map(|member| {
                let (room, user) = member.split_once(':')?;
                Some((room.parse().ok()?, user.parse().ok()?))
            })
            .collect();
        self.local.replace_node(node, &members);
        let mut all = lock(&self.inner.users);
        all.retain(|_, of| *of != node);
        all.extend(users.into_iter().map(|user| (user, node)));
        lock(&self.inner.known).insert(node);
        Ok(())
    }

    /// Forgets a node that is gone, and tells this node's members.
    fn forget(&self, node: NodeId) {
        if lock(&self.inner.known).remove(&node) {
            tracing::info!(node, "a node left the cluster");
        }
        lock(&self.inner.users).retain(|_, of| *of != node);
        self.local.node_gone(node);
    }

    /// Subscribes to the presence, this node's and its rooms' channels,
    /// announces this node and reads the others: on start, and after each
    /// reconnection. Returns what the subscriptions receive.
    async fn subscribe_all(&self) -> redis::RedisResult<redis::aio::PubSubStream> {
        let pubsub = within(self.client.get_async_pubsub()).await?;
        let (mut sink, stream) = pubsub.split();
        within(sink.subscribe(&*self.presence)).await?;
        within(sink.subscribe(&*self.direct)).await?;
        let mut rooms: HashSet<u32> = HashSet::new();
        for (room_id, _) in self.local.local_members() {
            if rooms.insert(room_id) {
                within(sink.subscribe(self.names.room(room_id))).await?;
            }
        }
        *lock(&self.inner.subscribed) = rooms;
        *lock(&self.inner.sink) = Some(sink);
        // Rooms joined or left while this ran are followed by the writer.
        self.inner.dirty.store(true, Ordering::Relaxed);
        self.announce().await?;
        // The other nodes may not have announced themselves again yet:
        // none is taken for gone until they had a lease to do it.
        self.grace();
        self.read_nodes().await?;
        self.inner.up.store(true, Ordering::Relaxed);
        Ok(stream)
    }

    /// Holds off judging the other nodes' leases for one lease: after this
    /// node found Redis back, or lost.
    fn grace(&self) {
        *lock(&self.inner.judge_from) = Some(tokio::time::Instant::now() + self.lease);
    }

    /// Whether the other nodes' leases may be judged now.
    fn may_judge(&self) -> bool {
        lock(&self.inner.judge_from).is_none_or(|from| tokio::time::Instant::now() >= from)
    }

    /// Reads every other node's members into the replica, and removes the
    /// nodes whose lease ran out.
    async fn read_nodes(&self) -> redis::RedisResult<()> {
        let mut redis = self.redis.clone();
        let nodes: Vec<NodeId> = redis.smembers(self.names.key("nodes")).await?;
        for node in nodes.into_iter().filter(|&node| node != self.node) {
            let alive: bool = redis.exists(self.names.alive(node)).await?;
            if alive {
                self.read_node(node).await?;
            } else if self.may_judge() {
                if self.clean_up(node).await {
                    self.forget(node);
                }
            } else {
                // Judged once the grace is over; meanwhile the replica
                // keeps what it knew of the node.
                lock(&self.inner.known).insert(node);
            }
        }
        Ok(())
    }

    /// Reads the subscriptions until the connection is lost, then
    /// subscribes again, with a backoff, until the server stops.
    async fn read(self, mut stream: redis::aio::PubSubStream) {
        let stopped = self.local.stopped();
        loop {
            loop {
                let message = tokio::select! {
                    message = stream.next() => message,
                    () = stopped.cancelled() => return,
                };
                match message {
                    Some(message) => {
                        if let Some(kind) = self.classify(&message) {
                            self.inbox.push(kind, message);
                        }
                    }
                    None => break,
                }
            }
            self.inner.up.store(false, Ordering::Relaxed);
            Counts::add(&self.inner.counts.disconnects, 1);
            *lock(&self.inner.sink) = None;
            tracing::warn!(
                node = self.node,
                "lost the connection to Redis; reconnecting"
            );
            // What came before the loss is applied before the replica is
            // read again, not after.
            tokio::select! {
                () = self.inbox.drained() => {}
                () = stopped.cancelled() => return,
            }
            let mut backoff = Duration::from_millis(100);
            stream = loop {
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = stopped.cancelled() => return,
                }
                match self.subscribe_all().await {
                    Ok(stream) => break stream,
                    Err(error) => {
                        tracing::debug!(%error, "Redis is still unreachable");
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                }
            };
            tracing::info!(node = self.node, "reconnected to Redis");
        }
    }

    /// What a message is, or `None` for this node's own room messages
    /// (delivered here when sent) and channels it does not read.
    fn classify(&self, message: &redis::Msg) -> Option<Kind> {
        let channel = message.get_channel_name();
        if channel == &*self.presence {
            return Some(Kind::Presence);
        }
        if channel == &*self.direct {
            return Some(Kind::Direct);
        }
        let room = channel.strip_prefix(&*self.room_prefix)?.parse().ok()?;
        let origin = message.get_payload_bytes().first_chunk::<8>()?;
        (NodeId::from_be_bytes(*origin) != self.node).then_some(Kind::Room(room))
    }

    /// Delivers what the other nodes sent, in order, and tells the members
    /// who missed what had to be dropped.
    async fn deliver(self) {
        let stopped = self.local.stopped();
        loop {
            let message = tokio::select! {
                message = self.inbox.pop() => message,
                () = stopped.cancelled() => return,
            };
            match message {
                Some((message, kind)) => self.receive(&message, kind).await,
                None => self.report_dropped(self.inbox.take_dropped()).await,
            }
        }
    }

    async fn report_dropped(&self, dropped: Dropped) {
        let rooms: u64 = dropped.rooms.values().sum::<u64>() + dropped.other_rooms;
        Counts::add(&self.inner.counts.dropped, rooms + dropped.direct);
        tracing::warn!(
            node = self.node,
            rooms,
            direct = dropped.direct,
            presence = dropped.presence,
            "fell behind the other nodes: dropped their messages"
        );
        for (room_id, count) in dropped.rooms {
            let noun = if count == 1 { "message" } else { "messages" };
            let why = format!(
                "{count} {noun} said in room {room_id} on other nodes did not reach you: \
                 this server fell behind them"
            );
            self.local.report_missed(room_id, &why);
        }
        if dropped.presence
            && let Err(error) = self.read_nodes().await
        {
            tracing::warn!(%error, "could not read the other nodes' members again");
        }
    }

    /// Applies or delivers one message, of the kind the pump found it to
    /// be.
    async fn receive(&self, message: &redis::Msg, kind: Kind) {
        let payload = message.get_payload_bytes();
        let dropped = |error: ClusterError| {
            let channel = message.get_channel_name();
            tracing::warn!(%error, channel, "dropped a message from another node");
        };
        match kind {
            Kind::Presence => match std::str::from_utf8(payload).ok().and_then(Presence::parse) {
                Some(event) if event.node() != self.node => self.apply(event).await,
                Some(_) => {}
                None => tracing::warn!("a malformed presence event"),
            },
            Kind::Direct => match open_addressed(payload) {
                // A recipient who left since is not told of it: the
                // sender's `send_to_user` had already returned.
                Ok((user, frame)) => {
                    if self.local.deliver_to_user(user, &frame) {
                        Counts::add(&self.inner.counts.received, 1);
                    }
                }
                Err(error) => dropped(error),
            },
            // This node's own messages were delivered here when sent; the
            // pump left them out.
            Kind::Room(room) => match open_envelope(payload) {
                Ok(frame) => {
                    self.local.deliver_to_room(room, &frame);
                    Counts::add(&self.inner.counts.received, 1);
                }
                Err(error) => dropped(error),
            },
        }
    }

    async fn apply(&self, event: Presence) {
        let node = event.node();
        let first = lock(&self.inner.known).insert(node);
        match event {
            Presence::Joined(node, room, user) => self.local.remote_joined(node, room, user),
            Presence::Left(node, room, user) => self.local.remote_left(node, room, user),
            Presence::Connected(node, user) => {
                lock(&self.inner.users).insert(user, node);
            }
            Presence::Disconnected(node, user) => {
                let mut users = lock(&self.inner.users);
                if users.get(&user) == Some(&node) {
                    users.remove(&user);
                }
            }
            Presence::Hello(node) => {
                if let Err(error) = self.read_node(node).await {
                    tracing::warn!(node, %error, "could not read a node's members");
                }
            }
            Presence::Gone(node) => {
                self.forget(node);
                return;
            }
        }
        if first {
            tracing::info!(node, "a node joined the cluster");
        }
    }

    /// Renews this node's lease and watches the others', until the server
    /// stops.
    async fn keep_lease(self) {
        let stopped = self.local.stopped();
        let every = self.lease / 3;
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = stopped.cancelled() => return,
            }
            if let Err(error) = self.renew().await {
                tracing::warn!(%error, "could not renew the lease");
            }
        }
    }

    async fn renew(&self) -> redis::RedisResult<()> {
        if self.inner.leaving.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut redis = self.redis.clone();
        let previous: Option<u8> = redis::cmd("SET")
            .arg(self.names.alive(self.node))
            .arg(1)
            .arg("EX")
            .arg(self.lease.as_secs())
            .arg("GET")
            .query_async(&mut redis)
            .await?;
        if lock(&self.inner.sink).is_some() {
            self.inner.up.store(true, Ordering::Relaxed);
        }
        if previous.is_none() && !self.inner.leaving.load(Ordering::Relaxed) {
            // Redis lost this node (it restarted empty, most likely, and
            // lost the others too), or the others took it for gone.
            tracing::warn!(node = self.node, "the lease had run out; announcing again");
            self.grace();
            if let Err(error) = self.announce().await {
                self.inner.dirty.store(true, Ordering::Relaxed);
                return Err(error);
            }
        }
        let known: Vec<NodeId> = lock(&self.inner.known).iter().copied().collect();
        if known.is_empty() || !self.may_judge() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for &node in &known {
            pipe.exists(self.names.alive(node));
        }
        let alive: Vec<bool> = pipe.query_async(&mut redis).await?;
        for (node, alive) in known.into_iter().zip(alive) {
            if !alive && self.clean_up(node).await {
                tracing::warn!(node, "a node's lease ran out: taking it for gone");
                self.forget(node);
            }
        }
        Ok(())
    }

    /// Removes a gone node's keys, unless it renewed its lease since; any
    /// node may, more than once. Returns whether the node is gone.
    async fn clean_up(&self, node: NodeId) -> bool {
        let mut redis = self.redis.clone();
        let gone: redis::RedisResult<bool> = redis::cmd("EVAL")
            .arg(CLEAN_UP)
            .arg(4)
            .arg(self.names.alive(node))
            .arg(self.names.key("nodes"))
            .arg(self.names.rooms(node))
            .arg(self.names.users(node))
            .arg(node)
            .query_async(&mut redis)
            .await;
        // Unknown (Redis did not answer): judged again at the next round.
        gone.unwrap_or(false)
    }

    /// Leaves the cluster: the keys go, and the others are told.
    async fn leave(&self) {
        let node = self.node;
        let mut redis = self.redis.clone();
        let _: redis::RedisResult<()> = redis::pipe()
            .srem(self.names.key("nodes"), node)
            .del(self.names.rooms(node))
            .del(self.names.users(node))
            .del(self.names.alive(node))
            .publish(&*self.presence, format!("G {node}"))
            .exec_async(&mut redis)
            .await;
        tracing::info!(node, "left the cluster");
    }
}

impl RedisAuthenticator {
    fn from_manager(redis: ConnectionManager) -> Self {
        RedisAuthenticator {
            redis,
            key: crate::DEFAULT_KEY.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_events_read_back() {
        for (text, event) in [
            ("J 3 10 7", Presence::Joined(3, 10, 7)),
            ("L 3 10 7", Presence::Left(3, 10, 7)),
            ("C 4 9", Presence::Connected(4, 9)),
            ("D 4 9", Presence::Disconnected(4, 9)),
            ("H 5", Presence::Hello(5)),
            ("G 5", Presence::Gone(5)),
        ] {
            assert_eq!(Presence::parse(text), Some(event), "{text}");
        }
        for bad in ["", "J", "J x 1 2", "J 1 2", "X 1", "C 1 -4"] {
            assert_eq!(Presence::parse(bad), None, "{bad}");
        }
    }
}
