//! What the compiler cannot see across items and crates is checked when the
//! server is built, before it binds: `check()` (which `start` and `serve`
//! run first) reports every problem at once, each with its `file:line`.

use gamewire::ServerError;
use gamewire::prelude::*;

use crate::support::test_config;

// ANCHOR: unhandled
/// `Join` is sent by clients, and no handler covers it.
mod unhandled {
    use gamewire::prelude::*;

    #[message]
    pub enum Unhandled {
        #[gamewire(direction = to_server)]
        Join { name: String },
        #[gamewire(direction = to_client)]
        Joined,
    }
}
// ANCHOR_END: unhandled

/// The same protocol, with `Join` marked as needing no handler.
mod opted_out {
    use gamewire::prelude::*;

    #[message]
    pub enum OptedOut {
        #[gamewire(direction = to_server, unhandled)]
        Join { name: String },
        #[gamewire(direction = to_client)]
        Joined,
    }
}

// ANCHOR: needs_state
/// A handler that takes a `State<Scores>`, and a variant with no handler.
mod needs_state {
    use gamewire::prelude::*;

    #[message]
    pub enum NeedsState {
        #[gamewire(direction = to_server)]
        Score { points: u32 },
        #[gamewire(direction = to_server)]
        Forfeit,
    }

    pub struct Scores;

    #[handler(NeedsState::Score)]
    async fn score(_: Score, _: State<Scores>) {}
}
// ANCHOR_END: needs_state

/// A handler that takes the task scheduler.
mod needs_scheduler {
    use gamewire::AsyncTaskScheduler;
    use gamewire::prelude::*;

    #[message]
    pub enum NeedsScheduler {
        #[gamewire(direction = to_server)]
        Save,
    }

    #[handler(NeedsScheduler::Save)]
    async fn save(_: Save, _: AsyncTaskScheduler) {}
}

/// The 1-based line of this file whose text starts with `start`.
fn line_of(start: &str) -> usize {
    let source = include_str!("build_checks.rs");
    let index = source
        .lines()
        .position(|line| line.trim_start().starts_with(start))
        .unwrap_or_else(|| panic!("no line starts with {start:?}"));
    index + 1
}

/// The problems `check()` found for `service`.
fn problems(service: &TcpGameService) -> Vec<String> {
    match service.check() {
        Err(ServerError::Build(error)) => error.problems().to_vec(),
        other => panic!("expected the build to fail, got {other:?}"),
    }
}

#[test]
fn a_client_to_server_variant_without_a_handler_is_refused() {
    let service = TcpGameService::with_config(test_config()).protocol::<unhandled::Unhandled>();
    let problems = problems(&service);
    let here = format!(
        "tests/it/build_checks.rs:{}:",
        line_of("Join { name: String },")
    );
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].starts_with("no handler for `Unhandled::Join` (declared at "),
        "{}",
        problems[0]
    );
    assert!(problems[0].contains(&here), "{} lacks {here}", problems[0]);
    assert!(
        problems[0].ends_with(
            "which clients send; write a `#[handler(Unhandled::Join)]` fn, or mark the variant `#[gamewire(unhandled)]`"
        ),
        "{}",
        problems[0]
    );
}

#[test]
fn the_unhandled_opt_out_passes() {
    let service = TcpGameService::with_config(test_config()).protocol::<opted_out::OptedOut>();
    service
        .check()
        .expect("`unhandled` variants need no handler");
}

#[test]
fn a_missing_state_is_reported_with_the_handler_location() {
    let service = TcpGameService::with_config(test_config()).protocol::<needs_state::NeedsState>();
    let problems = problems(&service);
    let handler_at = format!(
        "handler `score` at tests/it/build_checks.rs:{}:",
        line_of("#[handler(NeedsState::Score)]")
    );
    let missing_state = problems
        .iter()
        .find(|p| p.contains("State<"))
        .unwrap_or_else(|| panic!("no missing state in {problems:#?}"));
    assert!(missing_state.starts_with(&handler_at), "{missing_state}");
    assert!(
        missing_state.contains("needs_state::Scores>`, but no such state was provided; add it with `TcpGameService::with_state`"),
        "{missing_state}"
    );
    // Every problem is reported at once: the state and `Forfeit`.
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("no handler for `NeedsState::Forfeit`")),
        "{problems:#?}"
    );
}

#[test]
fn providing_the_state_leaves_only_the_unhandled_variant() {
    let service = TcpGameService::with_config(test_config())
        .protocol::<needs_state::NeedsState>()
        .with_state(needs_state::Scores);
    let problems = problems(&service);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].contains("`NeedsState::Forfeit`"),
        "{problems:#?}"
    );
}

#[test]
fn a_scheduler_parameter_needs_a_server_with_a_scheduler() {
    let without =
        TcpGameService::with_config(test_config()).protocol::<needs_scheduler::NeedsScheduler>();
    let problems = problems(&without);
    let handler_at = format!(
        "handler `save` at tests/it/build_checks.rs:{}:",
        line_of("#[handler(NeedsScheduler::Save)]")
    );
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].starts_with(&handler_at), "{}", problems[0]);
    assert!(
        problems[0].ends_with("takes `AsyncTaskScheduler`, but the server runs no scheduler; set `enable_async_scheduler: true` in its `TcpServerConfig`"),
        "{}",
        problems[0]
    );
    let with = TcpGameService::with_config(gamewire::TcpServerConfig {
        enable_async_scheduler: true,
        ..test_config()
    })
    .protocol::<needs_scheduler::NeedsScheduler>();
    with.check().expect("the server runs a scheduler");
}

/// The Compile errors chapter of the book shows both reports exactly as
/// `check()` words them, paths, lines and type names included.
#[test]
fn the_book_shows_the_real_reports() {
    let book = include_str!("../../book/src/reference/compile-errors.md");
    let services = [
        TcpGameService::with_config(test_config()).protocol::<unhandled::Unhandled>(),
        TcpGameService::with_config(test_config()).protocol::<needs_state::NeedsState>(),
    ];
    for service in services {
        let report = match service.check() {
            Err(ServerError::Build(error)) => error.to_string(),
            other => panic!("expected the build to fail, got {other:?}"),
        };
        assert!(
            book.contains(&format!("```text\n{report}\n```")),
            "book/src/reference/compile-errors.md lacks this report:\n{report}"
        );
    }
}
