//! The cluster run: what spreading rooms over nodes through Redis costs.
//!
//! Three setups take the same workload in turn, each on fresh processes:
//! one gamewire node with no adapter (the in-process default), one node
//! through a Redis, and `--nodes` nodes through one Redis with the clients
//! spread over them (client i on node i mod n, so every room has members
//! on every node and every line crosses Redis). Each round rotates which
//! setup goes first; the figures that matter are each setup's ratios to the
//! in-process node of the same round.

use std::net::SocketAddr;

use anyhow::bail;

use crate::redis::RedisChild;
use crate::report::{Figures, median, millis, per_second};
use crate::{ServerKind, Workload, run, spawn_server_with};

/// One way of serving the chat.
#[derive(Debug, Clone)]
struct Setup {
    name: String,
    nodes: usize,
    redis: bool,
}

/// Runs the three setups `rounds` times and prints their figures, then
/// one table of all of them.
pub(crate) async fn cluster(
    workload: &Workload,
    nodes: usize,
    rounds: usize,
) -> anyhow::Result<()> {
    workload.check()?;
    if workload.websocket {
        bail!("the cluster run loads the nodes over TCP: leave out --websocket");
    }
    if nodes < 2 {
        bail!("--nodes must be at least 2: one node is measured anyway");
    }
    let setups = [
        Setup {
            name: "1 node, in-process".into(),
            nodes: 1,
            redis: false,
        },
        Setup {
            name: "1 node, Redis".into(),
            nodes: 1,
            redis: true,
        },
        Setup {
            name: format!("{nodes} nodes, Redis"),
            nodes,
            redis: true,
        },
    ];
    let rounds = rounds.max(1);
    // results[round][setup], in the order of `setups`.
    let mut results: Vec<Vec<Figures>> = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let mut figures: Vec<Option<Figures>> = vec![None; setups.len()];
        for turn in 0..setups.len() {
            // A rotating order: no setup always goes first on a machine
            // that is warming up.
            let index = (turn + round) % setups.len();
            let setup = &setups[index];
            println!("\n== round {} of {rounds}: {} ==", round + 1, setup.name);
            let run = run_setup(setup, workload).await?;
            run.print();
            figures[index] = Some(run);
        }
        results.push(figures.into_iter().flatten().collect());
    }
    print_table(&setups, &results);
    let lost: u64 = results.iter().flatten().map(|f| f.lost).sum();
    let failed: u64 = results.iter().flatten().map(|f| f.failed_clients).sum();
    if lost > 0 || failed > 0 {
        bail!("{lost} lines lost and {failed} clients failed in all");
    }
    Ok(())
}

/// Starts the setup's processes, loads them, and stops them.
async fn run_setup(setup: &Setup, workload: &Workload) -> anyhow::Result<Figures> {
    let redis = match setup.redis {
        true => Some(RedisChild::start().await?),
        false => None,
    };
    let url = redis.as_ref().map(RedisChild::url);
    let extra: Vec<&str> = match &url {
        Some(url) => vec!["--redis", url],
        None => Vec::new(),
    };
    let mut children = Vec::with_capacity(setup.nodes);
    let mut addresses: Vec<SocketAddr> = Vec::with_capacity(setup.nodes);
    for _ in 0..setup.nodes {
        let (child, address) = spawn_server_with(ServerKind::Gamewire, false, &extra).await?;
        children.push(child);
        addresses.push(address);
    }
    let pids: Vec<u32> = children
        .iter()
        .filter_map(tokio::process::Child::id)
        .collect();
    let (figures, _) = run(&addresses, &pids, redis.as_ref(), workload, &setup.name).await?;
    for mut child in children {
        child.kill().await?;
    }
    Ok(figures)
}

/// Every setup's figures, as medians over the rounds, and its delivered/s
/// and delivery p99 as ratios to the in-process node of the same round.
fn print_table(setups: &[Setup], results: &[Vec<Figures>]) {
    let rounds = results.len();
    println!(
        "\n{:<20} {:>13} {:>7} {:>11} {:>11} {:>8} {:>9} {:>9} {:>8} {:>9}",
        "setup",
        "delivered/s",
        "÷ 1",
        "rt p99",
        "deliv p99",
        "÷ 1",
        "node cpu",
        "PUBLISH",
        "cmds",
        "redis cpu"
    );
    println!(
        "{:<20} {:>13} {:>7} {:>11} {:>11} {:>8} {:>9} {:>9} {:>8} {:>9}",
        "", "", "", "", "", "", "cores", "per line", "per line", "cores"
    );
    let of = |setup: usize, figure: fn(&Figures) -> Option<f64>| -> Option<f64> {
        median(
            &results
                .iter()
                .map(|round| figure(&round[setup]))
                .collect::<Vec<_>>(),
        )
    };
    let ratio_to_first = |setup: usize, figure: fn(&Figures) -> f64| -> Option<f64> {
        let ratios: Vec<Option<f64>> = results
            .iter()
            .map(|round| {
                let base = figure(&round[0]);
                (base != 0.0).then(|| figure(&round[setup]) / base)
            })
            .collect();
        median(&ratios)
    };
    let shown = |value: Option<f64>, digits: usize| {
        value.map_or("-".to_owned(), |v| format!("{v:.digits$}"))
    };
    for (index, setup) in setups.iter().enumerate() {
        let delivered = of(index, |f| Some(f.delivered_per_second)).unwrap_or(0.0);
        println!(
            "{:<20} {:>13} {:>7} {:>11} {:>11} {:>8} {:>9} {:>9} {:>8} {:>9}",
            setup.name,
            per_second(delivered),
            shown(ratio_to_first(index, |f| f.delivered_per_second), 3),
            millis(of(index, |f| Some(f.p99_ms)).unwrap_or(0.0)),
            millis(of(index, |f| Some(f.delivery_p99_ms)).unwrap_or(0.0)),
            shown(ratio_to_first(index, |f| f.delivery_p99_ms), 2),
            shown(of(index, |f| f.server_cpu), 2),
            shown(of(index, |f| f.redis_publish_per_line), 3),
            shown(of(index, |f| f.redis_commands_per_line), 3),
            shown(of(index, |f| f.redis_cpu), 2),
        );
    }
    let medians = if rounds > 1 {
        format!("medians over {rounds} rounds; ")
    } else {
        String::new()
    };
    println!(
        "({medians}÷ 1: to the in-process node of the same round; rt: a sender's own line back; \
         deliv: sent → each member; node cpu: all nodes together)"
    );
}
