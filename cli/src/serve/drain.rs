//! Graceful shutdown: the calls in flight, and refusing new ones once the server drains.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::Notify;
use tonic::Status;

#[derive(Debug, Default)]
pub struct Drain {
    calls: AtomicUsize,
    draining: AtomicBool,
    idle: Notify,
}

/// One call in flight; it leaves when this is dropped (for a streamed result, when the
/// stream has ended or its client has gone).
#[derive(Debug)]
pub struct InFlight(Arc<Drain>);

impl Drain {
    /// Admits a call, unless the server is shutting down.
    pub fn enter(self: &Arc<Self>) -> Result<InFlight, Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let call = InFlight(Arc::clone(self));
        if self.draining.load(Ordering::SeqCst) {
            return Err(Status::unavailable("the server is shutting down"));
        }
        Ok(call)
    }

    /// Refuses new calls from now on, and waits until the calls in flight are over.
    pub async fn drained(&self) {
        self.draining.store(true, Ordering::SeqCst);
        loop {
            let idle = self.idle.notified();
            if self.calls.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.calls.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
