//! The performance services on a running server: pooled read buffers that
//! idle connections do not hold, live statistics, and the scheduler.

use std::time::Duration;

use gamewire::client::Client;
use gamewire::{AsyncTaskScheduler, TaskPriority, TcpServerConfig};

use crate::support::*;

#[tokio::test]
async fn idle_connections_hold_no_read_buffer() {
    let config = TcpServerConfig {
        enable_enhanced_memory_pool: true,
        ..test_config()
    };
    let service = test_server(config);
    let address = start(&service).await;
    let mut clients = Vec::new();
    for _ in 0..10 {
        let mut client = Client::<TestMessage>::connect(address).await.unwrap();
        let reply = within(client.request(
            &TestMessage::Echo {
                text: "x".repeat(100),
            },
            |_| true,
        ))
        .await;
        reply.unwrap();
        clients.push(client);
    }
    let pool = service.memory_pool().expect("the pool is on");
    eventually("every read buffer to be back in the pool", || {
        pool.stats().in_use == 0
    })
    .await;
    let stats = pool.stats();
    assert!(
        stats.hits + stats.misses >= 10,
        "reads took pooled buffers: {stats:?}"
    );
    assert!(stats.retained_bytes > 0);
    let report = service.get_memory_pool_status().await.unwrap();
    assert!(report.contains("EnhancedMemoryPool"), "{report}");
    service.shutdown().await;
}

#[tokio::test]
async fn the_server_works_without_the_pool() {
    let service = test_server(test_config());
    let address = start(&service).await;
    let mut client = Client::<TestMessage>::connect(address).await.unwrap();
    let reply = within(client.request(
        &TestMessage::Echo {
            text: "plain".into(),
        },
        |_| true,
    ))
    .await;
    assert_eq!(
        reply.unwrap(),
        TestMessage::Echoed {
            text: "plain".into()
        }
    );
    assert!(service.memory_pool().is_none());
    assert!(
        !service
            .get_server_stats()
            .await
            .enhanced_memory_pool_enabled
    );
    service.shutdown().await;
}

#[tokio::test]
async fn server_stats_count_messages_and_latencies() {
    let service = test_server(test_config());
    let address = start(&service).await;
    let mut client = Client::<TestMessage>::connect(address).await.unwrap();
    for n in 0..50 {
        let reply = within(client.request(&TestMessage::Count, |_| true))
            .await
            .unwrap();
        assert_eq!(reply, TestMessage::Counted { n: n + 1 });
    }
    let stats = service.get_server_stats().await;
    assert_eq!(stats.connection_count, 1);
    assert_eq!(stats.messages_processed, 50);
    assert_eq!(stats.handler_latency.count, 50);
    assert_eq!(stats.queue_latency.count, 50);
    assert!(stats.handler_latency.p50_us > 0.0);
    assert!(stats.handler_latency.p50_us <= stats.handler_latency.p999_us);
    assert!(!stats.enhanced_memory_pool_enabled && !stats.async_scheduler_enabled);
    let text = stats.to_string();
    assert!(text.contains("handler time:"), "{text}");
    assert!(stats.uptime > Duration::ZERO);
    service.shutdown().await;
}

#[tokio::test]
async fn the_scheduler_runs_jobs_from_the_server_and_from_handlers() {
    let config = TcpServerConfig {
        enable_async_scheduler: true,
        ..test_config()
    };
    let service = test_server(config);
    let _address = start(&service).await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    service
        .schedule_message_processing(async move { tx.send("done").unwrap() }, true)
        .await
        .unwrap();
    assert_eq!(within(rx).await.unwrap(), "done");
    let (tx, rx) = tokio::sync::oneshot::channel();
    service
        .schedule_background_cleanup(async move { tx.send(()).unwrap() })
        .await
        .unwrap();
    within(rx).await.unwrap();

    let scheduler: &AsyncTaskScheduler = service.scheduler().unwrap();
    let stats = scheduler.stats();
    assert_eq!(stats.priority(TaskPriority::Critical).completed, 1);
    eventually("the background job to be counted", || {
        scheduler
            .stats()
            .priority(TaskPriority::Background)
            .completed
            == 1
    })
    .await;
    let report = service.get_scheduler_performance_report().await.unwrap();
    assert!(report.contains("critical"), "{report}");
    assert!(service.get_server_stats().await.async_scheduler_enabled);
    service.shutdown().await;
}

#[tokio::test]
async fn without_the_scheduler_scheduling_is_refused() {
    let service = test_server(test_config());
    let refused = service.schedule_background_cleanup(async {}).await;
    assert_eq!(refused, Err(gamewire::SchedulerError::Disabled));
    assert!(service.get_scheduler_performance_report().await.is_none());
}

/// The message and byte counts do not depend on the latency monitor.
#[tokio::test]
async fn counters_without_the_monitor() {
    let service = test_server(gamewire::TcpServerConfig {
        enable_performance_monitor: false,
        ..test_config()
    });
    let address = start(&service).await;
    let mut client = Client::<TestMessage>::connect(address).await.unwrap();
    let other = Client::<TestMessage>::connect(address).await.unwrap();
    for n in 0..10 {
        let reply = within(client.request(&TestMessage::Count, |_| true))
            .await
            .unwrap();
        assert_eq!(reply, TestMessage::Counted { n: n + 1 });
    }
    let stats = service.get_server_stats().await;
    assert!(!stats.performance_monitor_enabled);
    assert_eq!(stats.messages_processed, 10);
    assert_eq!(stats.handler_latency.count, 0, "no latencies recorded");
    let connections = &stats.connections;
    assert_eq!(connections.current_connections, 2);
    assert_eq!(connections.total_connections, 2);
    assert_eq!(connections.messages_in, 10);
    // Two hellos and ten messages in; two welcomes and ten replies out.
    assert_eq!(connections.frames_in, 12);
    eventually("the replies to be counted as written", || {
        service.connection_service().connection_stats().frames_out == 12
    })
    .await;
    let connections = service.connection_service().connection_stats();
    assert!(connections.bytes_in > 12 * 4 && connections.bytes_out > 12 * 4);

    // A session that ends keeps its counts in the totals.
    other.close().await;
    eventually("one session", || {
        service.connection_service().connection_count() == 1
    })
    .await;
    let after = service.connection_service().connection_stats();
    assert_eq!((after.current_connections, after.total_connections), (1, 2));
    assert!(after.frames_in >= 12, "the ended session's frames are kept");
    assert_eq!(after.messages_in, 10);
    service.shutdown().await;
}

#[tokio::test]
async fn stamped_messages_give_end_to_end_latency() {
    let service = test_server(test_config());
    let address = start(&service).await;
    let mut client = Client::<TestMessage>::connect(address).await.unwrap();
    for n in 0..20 {
        client
            .send_stamped(&TestMessage::Echo {
                text: n.to_string(),
            })
            .await
            .unwrap();
        let reply = within(client.next_message()).await.unwrap();
        assert_eq!(
            reply,
            TestMessage::Echoed {
                text: n.to_string()
            }
        );
    }
    // Unstamped messages are handled the same, and not counted.
    within(client.request(&TestMessage::Count, |_| true))
        .await
        .unwrap();
    let stats = service.get_server_stats().await;
    assert_eq!(stats.end_to_end_latency.count, 20);
    assert_eq!(stats.handler_latency.count, 21);
    assert!(stats.end_to_end_latency.p50_us <= stats.end_to_end_latency.max_us);
    service.shutdown().await;
}
