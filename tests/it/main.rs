//! Integration tests: real servers on 127.0.0.1:0, real clients, one binary.

// Test helpers are `pub` for the test modules, not for anyone else.
#![allow(unreachable_pub, missing_docs)]

mod support;

/// Notes the largest allocation of a thread, for the decoding bounds.
#[global_allocator]
static PROBE: gamewire_tests::alloc_probe::Probe = gamewire_tests::alloc_probe::Probe;

mod admin_page;
mod admission_limits;
mod book;
mod build_checks;
mod chat_room_broadcast;
mod codec_allocates_within_the_frame;
mod connection_send_to_user;
mod disconnect_hook;
mod docs;
mod frame_limits;
mod fuzz_corpus_replays;
mod handler_errors;
mod handshake_authenticator;
mod handshake_mismatch;
mod heartbeat_reaps_silent_peer;
mod limits_hold_server_memory;
mod message_wire_ids;
mod metrics_endpoint;
mod middleware_chain;
mod performance_services;
mod protocol_revisions;
mod protocol_schema;
mod queue_bounds;
mod room_disconnect_leaves;
mod room_limits;
mod session_limits;
mod shutdown_drains_queues;
mod shutdown_on_sigterm;
mod slow_consumer;
mod stats_never_go_backwards;
mod tcp_accept_limit;
mod tcp_start_binds;
mod typescript_client;
mod websocket_transport;
