//! One structured log line per call (SPEC §11): the call, the kind of statement, the scope
//! and access level, the rows, the duration and the outcome (a status code). Never the
//! token, the SQL, its parameter values, an error's message (it may quote a value) or the
//! result.

use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Instant;

use arrow_flight::error::FlightError;
use datafusion::arrow::array::RecordBatch;
use futures::Stream;
use jammi_catalog::Grant;
use tonic::Status;

use super::drain::InFlight;

pub struct CallLog {
    call: &'static str,
    kind: &'static str,
    started: Instant,
    scope: OnceLock<String>,
    access: OnceLock<&'static str>,
    /// The call's place among those a shutdown waits for, held as long as the log.
    _in_flight: InFlight,
}

impl CallLog {
    pub fn start(call: &'static str, kind: &'static str, in_flight: InFlight) -> CallLog {
        CallLog {
            call,
            kind,
            started: Instant::now(),
            scope: OnceLock::new(),
            access: OnceLock::new(),
            _in_flight: in_flight,
        }
    }

    /// Records the caller's scope and access level, once they are known.
    pub fn caller(&self, grant: Grant) {
        let _ = self.scope.set(
            grant
                .scope
                .map_or_else(|| "unscoped".to_owned(), |t| t.to_string()),
        );
        let _ = self.access.set(grant.access.as_str());
    }

    /// Writes the line for a call that is over.
    pub fn finish<T>(&self, result: &Result<T, Status>, rows: u64) {
        match result {
            Ok(_) => self.emit(rows, "ok"),
            Err(status) => self.emit(rows, code_name(status)),
        }
    }

    fn emit(&self, rows: u64, outcome: &str) {
        let scope = self.scope.get().map_or("unauthenticated", String::as_str);
        let access = self.access.get().copied().unwrap_or("none");
        let duration_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(
            call = self.call,
            kind = self.kind,
            scope,
            access,
            rows,
            // Microseconds: a call of the server takes a fraction of a millisecond.
            duration_ms = (duration_ms * 1000.0).round() / 1000.0,
            outcome,
        );
    }

    /// `stream`, counting its rows; the line is written when it ends, fails or is dropped
    /// by a departed client.
    pub fn counting<S>(
        self,
        stream: S,
    ) -> impl Stream<Item = Result<RecordBatch, FlightError>> + Send + 'static
    where
        S: Stream<Item = Result<RecordBatch, FlightError>> + Send + 'static,
    {
        Counted {
            inner: Box::pin(stream),
            log: self,
            rows: 0,
            outcome: None,
        }
    }
}

struct Counted<S> {
    inner: Pin<Box<S>>,
    log: CallLog,
    rows: u64,
    /// `Some` once the stream has ended or failed.
    outcome: Option<&'static str>,
}

impl<S> Stream for Counted<S>
where
    S: Stream<Item = Result<RecordBatch, FlightError>>,
{
    type Item = Result<RecordBatch, FlightError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(batch))) => self.rows += batch.num_rows() as u64,
            Poll::Ready(Some(Err(e))) => {
                let outcome = match e {
                    FlightError::Tonic(status) => code_name(status),
                    _ => "error",
                };
                self.outcome.get_or_insert(outcome);
            }
            Poll::Ready(None) => {
                self.outcome.get_or_insert("ok");
            }
            Poll::Pending => {}
        }
        polled
    }
}

impl<S> Drop for Counted<S> {
    fn drop(&mut self) {
        // No outcome: the client went away before the end.
        let outcome = self.outcome.unwrap_or("cancelled");
        self.log.emit(self.rows, outcome);
    }
}

fn code_name(status: &Status) -> &'static str {
    match status.code() {
        tonic::Code::Unauthenticated => "unauthenticated",
        tonic::Code::InvalidArgument => "invalid_argument",
        tonic::Code::PermissionDenied => "permission_denied",
        tonic::Code::NotFound => "not_found",
        tonic::Code::AlreadyExists => "already_exists",
        tonic::Code::FailedPrecondition => "failed_precondition",
        tonic::Code::ResourceExhausted => "resource_exhausted",
        tonic::Code::DeadlineExceeded => "deadline_exceeded",
        tonic::Code::Unavailable => "unavailable",
        tonic::Code::Aborted => "aborted",
        _ => "error",
    }
}
