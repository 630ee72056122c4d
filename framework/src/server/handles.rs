//! The service handles a server hands out, and the original guide's calls
//! on them (`get_server_stats`, `allocate_buffer`,
//! `schedule_message_processing`, `get_room_status`, …).

use std::future::Future;

use super::service::TcpGameService;
use crate::chat::ChatRoomMessageHandler;
use crate::connection::ConnectionService;
use crate::heartbeat::HeartbeatService;
use crate::monitor::{PerformanceMonitor, ServerStats};
use crate::pool::EnhancedMemoryPool;
use crate::room::{RoomConnectionService, RoomStatus};
use crate::scheduler::{AsyncTaskScheduler, SchedulerError};

impl TcpGameService {
    /// The connection registry.
    pub fn connection_service(&self) -> &ConnectionService {
        &self.shared().connections
    }

    /// The rooms.
    pub fn room_service(&self) -> &RoomConnectionService {
        &self.shared().rooms
    }

    /// The built-in chat system.
    pub fn chat(&self) -> &ChatRoomMessageHandler {
        &self.shared().chat
    }

    /// The heartbeat.
    pub fn heartbeat_service(&self) -> &HeartbeatService {
        &self.shared().heartbeat
    }

    /// The memory pool, when `enable_enhanced_memory_pool` is on.
    pub fn memory_pool(&self) -> Option<&EnhancedMemoryPool> {
        self.shared().pool.as_ref()
    }

    /// A buffer of at least `size` bytes from the memory pool; `None` when
    /// the pool is off or `size` is over 64 KiB.
    pub fn allocate_buffer(&self, size: usize) -> Option<crate::pool::PooledBuffer> {
        self.shared().pool.as_ref()?.allocate_buffer(size)
    }

    /// Returns a buffer to the pool, as dropping it does.
    pub fn deallocate_buffer(&self, buffer: crate::pool::PooledBuffer) {
        drop(buffer);
    }

    /// The memory pool's report, when the pool is on.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it never waits.
    pub async fn get_memory_pool_status(&self) -> Option<String> {
        self.shared().pool.as_ref().map(EnhancedMemoryPool::report)
    }

    /// The performance monitor.
    pub fn performance_monitor(&self) -> &PerformanceMonitor {
        &self.shared().monitor
    }

    /// Connections, message and byte rates, latency percentiles, and which
    /// performance services are on.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it never waits.
    pub async fn get_server_stats(&self) -> ServerStats {
        ServerStats::collect(
            &self.shared().monitor,
            self.shared().connections.connection_stats(),
            self.shared().pool.is_some(),
            self.shared().scheduler.is_some(),
            self.config().enable_performance_monitor,
        )
    }

    /// The task scheduler, when `enable_async_scheduler` is on.
    pub fn scheduler(&self) -> Option<&AsyncTaskScheduler> {
        self.shared().scheduler.as_ref()
    }

    /// Runs `job` on the scheduler as critical (`true`) or normal work.
    ///
    /// # Errors
    ///
    /// [`SchedulerError::Disabled`] when the server runs without a
    /// scheduler (`enable_async_scheduler` is off), or the scheduler's own
    /// errors.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it never waits.
    pub async fn schedule_message_processing(
        &self,
        job: impl Future<Output = ()> + Send + 'static,
        critical: bool,
    ) -> Result<(), SchedulerError> {
        let scheduler = self.scheduler().ok_or(SchedulerError::Disabled)?;
        scheduler.schedule_message_processing(job, critical).await
    }

    /// Runs `job` on the scheduler as background work.
    ///
    /// # Errors
    ///
    /// As [`schedule_message_processing`](Self::schedule_message_processing).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it never waits.
    pub async fn schedule_background_cleanup(
        &self,
        job: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), SchedulerError> {
        let scheduler = self.scheduler().ok_or(SchedulerError::Disabled)?;
        scheduler.schedule_background_cleanup(job).await
    }

    /// The scheduler's report, when the scheduler is on.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it never waits.
    pub async fn get_scheduler_performance_report(&self) -> Option<String> {
        self.shared()
            .scheduler
            .as_ref()
            .map(AsyncTaskScheduler::get_scheduler_performance_report)
    }

    /// Sessions connected now.
    pub async fn get_connection_count(&self) -> usize {
        self.shared().connections.connection_count()
    }

    /// `(user_count, users)` of a room.
    pub fn get_room_status(&self, room_id: u32) -> (usize, Vec<u32>) {
        self.shared().rooms.get_room_status(room_id)
    }

    /// The status of every room.
    pub fn get_all_rooms_status(&self) -> Vec<RoomStatus> {
        self.shared().rooms.get_all_rooms_status()
    }

    /// Removes empty rooms; returns how many.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it never waits.
    pub async fn cleanup_empty_rooms(&self) -> usize {
        self.shared().rooms.cleanup_empty_rooms().await
    }
}
