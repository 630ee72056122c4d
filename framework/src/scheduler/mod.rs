//! `AsyncTaskScheduler`: prioritized work off the session tasks.
//!
//! Handlers run on their session's task, in order. Work that should not
//! hold up a session (a score recount, a save, a cleanup) goes to the
//! scheduler instead: a fixed number of worker tasks that take jobs from
//! three bounded queues, **critical**, **normal** and **background**.
//!
//! A worker always takes the most urgent job, with one exception that keeps
//! lower priorities from starving: a queue that has waited through
//! `fairness` picks of more urgent jobs (twice that for background) gets the
//! next pick. Under a flood of background work, a critical job still starts
//! next; under a flood of critical work, background work still progresses.
//!
//! # Examples
//!
//! ```
//! use gamewire::{AsyncTaskScheduler, SchedulerConfig, TaskPriority};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), gamewire::SchedulerError> {
//! let scheduler = AsyncTaskScheduler::new(SchedulerConfig::default());
//! let (tx, rx) = tokio::sync::oneshot::channel();
//! scheduler.schedule_message_processing(async move { let _ = tx.send(42); }, true).await?;
//! assert_eq!(rx.await.unwrap(), 42);
//! assert_eq!(scheduler.stats().priority(TaskPriority::Critical).completed, 1);
//! # Ok(())
//! # }
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use hdrhistogram::Histogram;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::monitor::LatencySummary;

type Job = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// How urgent a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskPriority {
    /// Runs before anything else.
    Critical,
    /// Ordinary work.
    Normal,
    /// Cleanup and bookkeeping; runs when nothing is more urgent, but never
    /// starves.
    Background,
}

impl TaskPriority {
    const ALL: [TaskPriority; 3] = [
        TaskPriority::Critical,
        TaskPriority::Normal,
        TaskPriority::Background,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for TaskPriority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskPriority::Critical => "critical",
            TaskPriority::Normal => "normal",
            TaskPriority::Background => "background",
        })
    }
}

/// Sizes and fairness of an [`AsyncTaskScheduler`].
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// Worker tasks, each running one job at a time.
    pub workers: usize,
    /// Jobs each priority's queue holds; more are refused.
    pub queue_capacity: usize,
    /// Picks of more urgent work a waiting normal job sits through before it
    /// goes next; background waits twice as many. `0` means strict
    /// priority: the most urgent job always goes first, and a steady stream
    /// of critical work can starve the rest.
    pub fairness: u32,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            queue_capacity: 10_000,
            fairness: 8,
        }
    }
}

/// A job was not accepted.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchedulerError {
    /// The priority's queue is at `queue_capacity`.
    #[error("the {0} queue is full")]
    QueueFull(TaskPriority),
    /// The scheduler was shut down.
    #[error("the scheduler is shut down")]
    ShutDown,
    /// The server runs without a scheduler.
    #[error("the scheduler is off; set `enable_async_scheduler: true` in the server's config")]
    Disabled,
}

struct Queued {
    job: Job,
    submitted: Instant,
}

#[derive(Default)]
struct Queues {
    queues: [VecDeque<Queued>; 3],
    /// Picks each non-empty queue has waited through since it was served.
    waited: [u32; 3],
}

impl Queues {
    /// The next job, by priority, letting a queue that waited too long go
    /// first.
    fn pick(&mut self, fairness: u32) -> Option<(TaskPriority, Queued)> {
        let most_urgent = TaskPriority::ALL
            .into_iter()
            .find(|p| !self.queues[p.index()].is_empty())?;
        let starving = [TaskPriority::Background, TaskPriority::Normal]
            .into_iter()
            .filter(|_| fairness > 0)
            .find(|p| {
                let i = p.index();
                !self.queues[i].is_empty() && self.waited[i] >= fairness * i as u32
            });
        let chosen = match starving {
            Some(p) if p != most_urgent => p,
            _ => most_urgent,
        };
        for p in TaskPriority::ALL {
            let i = p.index();
            if p == chosen || self.queues[i].is_empty() {
                self.waited[i] = 0;
            } else {
                self.waited[i] = self.waited[i].saturating_add(1);
            }
        }
        let job = self.queues[chosen.index()].pop_front()?;
        Some((chosen, job))
    }
}

#[derive(Default)]
struct PriorityCounters {
    submitted: AtomicU64,
    started: AtomicU64,
    completed: AtomicU64,
    panicked: AtomicU64,
    rejected: AtomicU64,
}

struct Inner {
    config: SchedulerConfig,
    queues: Mutex<Queues>,
    work: Notify,
    counters: [PriorityCounters; 3],
    /// Submit-to-start latency per priority, in nanoseconds.
    waits: [Mutex<Histogram<u64>>; 3],
    shutdown: CancellationToken,
    started: OnceLock<()>,
}

/// A pool of worker tasks running prioritized jobs.
///
/// Cheap to clone; every clone is the same scheduler. Workers start with
/// the first job, on the Tokio runtime of the caller.
#[derive(Clone)]
pub struct AsyncTaskScheduler {
    inner: Arc<Inner>,
}

impl fmt::Debug for AsyncTaskScheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncTaskScheduler")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn wait_histogram() -> Mutex<Histogram<u64>> {
    Mutex::new(
        Histogram::new_with_bounds(1, 60_000_000_000, 2)
            .expect("static histogram bounds are valid"),
    )
}

impl AsyncTaskScheduler {
    /// A scheduler with these sizes; no worker runs until the first job.
    pub fn new(config: SchedulerConfig) -> Self {
        AsyncTaskScheduler {
            inner: Arc::new(Inner {
                config,
                queues: Mutex::default(),
                work: Notify::new(),
                counters: Default::default(),
                waits: [wait_histogram(), wait_histogram(), wait_histogram()],
                shutdown: CancellationToken::new(),
                started: OnceLock::new(),
            }),
        }
    }

    /// Queues `job` at `priority`.
    ///
    /// # Errors
    ///
    /// [`SchedulerError::QueueFull`] when that queue is at capacity,
    /// [`SchedulerError::ShutDown`] after [`shutdown`](Self::shutdown).
    ///
    /// # Panics
    ///
    /// When called outside a Tokio runtime before any worker started.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it never waits.
    pub async fn schedule(
        &self,
        priority: TaskPriority,
        job: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), SchedulerError> {
        self.submit(priority, Box::pin(job))
    }

    /// Queues `job` as critical (`true`) or normal work, as the guide's
    /// `schedule_message_processing` does.
    ///
    /// # Errors
    ///
    /// As [`schedule`](Self::schedule).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn schedule_message_processing(
        &self,
        job: impl Future<Output = ()> + Send + 'static,
        critical: bool,
    ) -> Result<(), SchedulerError> {
        let priority = if critical {
            TaskPriority::Critical
        } else {
            TaskPriority::Normal
        };
        self.submit(priority, Box::pin(job))
    }

    /// Queues `job` as background work.
    ///
    /// # Errors
    ///
    /// As [`schedule`](Self::schedule).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn schedule_background_cleanup(
        &self,
        job: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), SchedulerError> {
        self.submit(TaskPriority::Background, Box::pin(job))
    }

    fn submit(&self, priority: TaskPriority, job: Job) -> Result<(), SchedulerError> {
        let inner = &*self.inner;
        if inner.shutdown.is_cancelled() {
            return Err(SchedulerError::ShutDown);
        }
        self.start_workers();
        let counters = &inner.counters[priority.index()];
        {
            let mut queues = inner.queues.lock().unwrap_or_else(|e| e.into_inner());
            let queue = &mut queues.queues[priority.index()];
            if queue.len() >= inner.config.queue_capacity {
                counters.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(SchedulerError::QueueFull(priority));
            }
            queue.push_back(Queued {
                job,
                submitted: Instant::now(),
            });
        }
        counters.submitted.fetch_add(1, Ordering::Relaxed);
        inner.work.notify_one();
        Ok(())
    }

    fn start_workers(&self) {
        self.inner.started.get_or_init(|| {
            for _ in 0..self.inner.config.workers.max(1) {
                tokio::spawn(worker(Arc::clone(&self.inner)));
            }
        });
    }

    /// Stops the workers once their current jobs finish; queued jobs are
    /// dropped and new ones refused.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
        let mut queues = self.inner.queues.lock().unwrap_or_else(|e| e.into_inner());
        for queue in &mut queues.queues {
            queue.clear();
        }
    }

    /// The counters and waits of every priority.
    pub fn stats(&self) -> SchedulerStats {
        let queues = self.inner.queues.lock().unwrap_or_else(|e| e.into_inner());
        let queued: [usize; 3] = std::array::from_fn(|i| queues.queues[i].len());
        drop(queues);
        SchedulerStats {
            workers: self.inner.config.workers.max(1),
            priorities: TaskPriority::ALL.map(|p| {
                let i = p.index();
                let c = &self.inner.counters[i];
                let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
                let waits = self.inner.waits[i]
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                PriorityStats {
                    priority: p,
                    queued: queued[i],
                    submitted: load(&c.submitted),
                    started: load(&c.started),
                    completed: load(&c.completed),
                    panicked: load(&c.panicked),
                    rejected: load(&c.rejected),
                    wait: LatencySummary::of_nanos(&waits),
                }
            }),
        }
    }

    /// A readable report of [`stats`](Self::stats), as the guide's
    /// `get_scheduler_performance_report` prints it.
    pub fn get_scheduler_performance_report(&self) -> String {
        self.stats().to_string()
    }
}

/// One worker: take the next job, run it, repeat until shutdown.
async fn worker(inner: Arc<Inner>) {
    loop {
        let next = {
            let notified = inner.work.notified();
            tokio::pin!(notified);
            // Register before looking, so a job queued in between wakes us.
            notified.as_mut().enable();
            let picked = inner
                .queues
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pick(inner.config.fairness);
            match picked {
                Some(next) => next,
                None => {
                    tokio::select! {
                        () = inner.shutdown.cancelled() => return,
                        () = notified => continue,
                    }
                }
            }
        };
        let (priority, queued) = next;
        let i = priority.index();
        let waited = queued.submitted.elapsed();
        inner.counters[i].started.fetch_add(1, Ordering::Relaxed);
        inner.waits[i]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .saturating_record((waited.as_nanos() as u64).max(1));
        match (CatchPanic { job: queued.job }).await {
            Ok(()) => inner.counters[i].completed.fetch_add(1, Ordering::Relaxed),
            Err(()) => {
                tracing::error!(%priority, "a scheduled job panicked");
                inner.counters[i].panicked.fetch_add(1, Ordering::Relaxed)
            }
        };
        if inner.shutdown.is_cancelled() {
            return;
        }
    }
}

/// Runs a job, turning a panic into `Err` so the worker survives it.
struct CatchPanic {
    job: Job,
}

impl Future for CatchPanic {
    type Output = Result<(), ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let job = &mut self.job;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(())) => Poll::Ready(Ok(())),
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

/// Counters of one priority.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PriorityStats {
    /// Which priority.
    pub priority: TaskPriority,
    /// Jobs waiting now.
    pub queued: usize,
    /// Jobs accepted.
    pub submitted: u64,
    /// Jobs a worker started.
    pub started: u64,
    /// Jobs that finished.
    pub completed: u64,
    /// Jobs that panicked.
    pub panicked: u64,
    /// Jobs refused for a full queue.
    pub rejected: u64,
    /// Time from submission to start.
    pub wait: LatencySummary,
}

/// A snapshot of a scheduler.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SchedulerStats {
    /// Worker tasks.
    pub workers: usize,
    /// Critical, normal, background.
    pub priorities: [PriorityStats; 3],
}

impl SchedulerStats {
    /// The counters of one priority.
    pub fn priority(&self, priority: TaskPriority) -> &PriorityStats {
        &self.priorities[priority.index()]
    }
}

impl fmt::Display for SchedulerStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AsyncTaskScheduler ({} workers)", self.workers)?;
        for p in &self.priorities {
            write!(
                f,
                "\n  {:<10} queued {:>5}, run {:>8}, panicked {}, rejected {}; wait {}",
                p.priority, p.queued, p.completed, p.panicked, p.rejected, p.wait
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Waits at most `limit` for `condition`.
    async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
        let start = Instant::now();
        while !condition() {
            if start.elapsed() > limit {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        true
    }

    fn one_worker() -> AsyncTaskScheduler {
        AsyncTaskScheduler::new(SchedulerConfig {
            workers: 1,
            queue_capacity: 1000,
            fairness: 8,
        })
    }

    /// Blocks the single worker until the returned sender fires.
    async fn hold_the_worker(scheduler: &AsyncTaskScheduler) -> tokio::sync::oneshot::Sender<()> {
        let (release, gate) = tokio::sync::oneshot::channel::<()>();
        let (held, running) = tokio::sync::oneshot::channel::<()>();
        scheduler
            .schedule(TaskPriority::Normal, async move {
                let _ = held.send(());
                let _ = gate.await;
            })
            .await
            .unwrap();
        running.await.unwrap();
        release
    }

    fn recorder(
        log: &Arc<Mutex<Vec<String>>>,
        name: String,
    ) -> impl Future<Output = ()> + Send + 'static {
        let log = Arc::clone(log);
        async move { log.lock().unwrap().push(name) }
    }

    #[tokio::test]
    async fn critical_starts_ahead_of_a_background_flood() {
        let scheduler = one_worker();
        let release = hold_the_worker(&scheduler).await;
        let log = Arc::new(Mutex::new(Vec::new()));
        for n in 0..100 {
            scheduler
                .schedule_background_cleanup(recorder(&log, format!("background {n}")))
                .await
                .unwrap();
        }
        scheduler
            .schedule_message_processing(recorder(&log, "critical".into()), true)
            .await
            .unwrap();
        release.send(()).unwrap();
        assert!(eventually(Duration::from_secs(20), || log.lock().unwrap().len() == 101).await);
        let log = log.lock().unwrap();
        assert_eq!(
            log[0], "critical",
            "queued behind 100 background jobs, it ran first"
        );
        assert_eq!(log[1], "background 0");
    }

    #[tokio::test]
    async fn background_work_is_not_starved_by_critical_work() {
        let scheduler = one_worker();
        let release = hold_the_worker(&scheduler).await;
        let log = Arc::new(Mutex::new(Vec::new()));
        scheduler
            .schedule_background_cleanup(recorder(&log, "background".into()))
            .await
            .unwrap();
        for n in 0..100 {
            scheduler
                .schedule_message_processing(recorder(&log, format!("critical {n}")), true)
                .await
                .unwrap();
        }
        release.send(()).unwrap();
        assert!(eventually(Duration::from_secs(20), || log.lock().unwrap().len() == 101).await);
        let position = log
            .lock()
            .unwrap()
            .iter()
            .position(|e| e == "background")
            .unwrap();
        // Background waits through at most 2 × fairness = 16 critical picks.
        assert_eq!(position, 16, "{:?}", &log.lock().unwrap()[..20]);
    }

    /// The picking rule alone: with `fairness` 0 the most urgent job
    /// always goes first; with 2, normal work waits through 2 picks of
    /// critical work and background through 4.
    #[test]
    fn pick_order_follows_fairness() {
        fn order(fairness: u32) -> String {
            let mut queues = Queues::default();
            for (priority, count) in [
                (TaskPriority::Critical, 6),
                (TaskPriority::Normal, 2),
                (TaskPriority::Background, 2),
            ] {
                for _ in 0..count {
                    queues.queues[priority.index()].push_back(Queued {
                        job: Box::pin(async {}),
                        submitted: Instant::now(),
                    });
                }
            }
            std::iter::from_fn(|| queues.pick(fairness))
                .map(|(priority, _)| match priority {
                    TaskPriority::Critical => 'c',
                    TaskPriority::Normal => 'n',
                    TaskPriority::Background => 'b',
                })
                .collect()
        }
        assert_eq!(order(0), "ccccccnnbb");
        assert_eq!(order(2), "ccncbncccb");
    }

    #[tokio::test]
    async fn full_queues_refuse_and_count() {
        let scheduler = AsyncTaskScheduler::new(SchedulerConfig {
            workers: 1,
            queue_capacity: 2,
            fairness: 8,
        });
        let release = hold_the_worker(&scheduler).await;
        for _ in 0..2 {
            scheduler
                .schedule_background_cleanup(async {})
                .await
                .unwrap();
        }
        let refused = scheduler.schedule_background_cleanup(async {}).await;
        assert_eq!(
            refused,
            Err(SchedulerError::QueueFull(TaskPriority::Background))
        );
        let stats = scheduler.stats();
        let background = stats.priority(TaskPriority::Background);
        assert_eq!((background.queued, background.rejected), (2, 1));
        drop(release);
        assert!(
            eventually(Duration::from_secs(20), || {
                scheduler
                    .stats()
                    .priority(TaskPriority::Background)
                    .completed
                    == 2
            })
            .await
        );
        let report = scheduler.get_scheduler_performance_report();
        assert!(report.contains("background"), "{report}");
    }

    #[tokio::test]
    async fn a_panicking_job_leaves_the_worker_running() {
        let scheduler = one_worker();
        scheduler
            .schedule(TaskPriority::Normal, async {
                panic!("a test panic in a job")
            })
            .await
            .unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        scheduler
            .schedule(TaskPriority::Normal, async move {
                let _ = tx.send("still working");
            })
            .await
            .unwrap();
        assert_eq!(rx.await.unwrap(), "still working");
        assert_eq!(scheduler.stats().priority(TaskPriority::Normal).panicked, 1);
    }

    #[tokio::test]
    async fn shutdown_refuses_new_jobs() {
        let scheduler = one_worker();
        scheduler.shutdown();
        let refused = scheduler.schedule(TaskPriority::Critical, async {}).await;
        assert_eq!(refused, Err(SchedulerError::ShutDown));
    }
}
