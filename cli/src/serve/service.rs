//! The Flight SQL service: each call authenticates, and plans, binds and runs its statement
//! in a session of its own for the token's grant (SPEC §11); a call that only binds a
//! statement the plan cache holds analyzed needs no session.
//!
//! Where statements run: a query (and whatever else comes through the query path, e.g. an
//! `INSERT` sent by ADBC's `cursor.execute`) runs when its ticket is fetched (`DoGet`),
//! never while its `FlightInfo` is planned; updates run in `DoPut`. `GetFlightInfo` plans
//! the statement fully, so its schema is the schema `DoGet` streams.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementQuery, CommandStatementUpdate,
    DoPutPreparedStatementResult, ProstMessageExt, SqlInfo, SqlSupportedTransaction,
    TicketStatementQuery,
};
use arrow_flight::{
    FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage,
    SchemaAsIpc, Ticket,
};
use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::LogicalPlan;
use futures::{Stream, StreamExt, TryStreamExt};
use jammi_catalog::sql::plans::{BoundPlan, PlanCache, PreparedPlan};
use jammi_catalog::sql::session::SessionTemplate;
use jammi_catalog::{Catalog, Grant, Tokens};
use prost::Message;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use super::auth::{self, Authenticator};
use super::drain::Drain;
use super::error::status_of;
use super::handle::Handle;
use super::log::CallLog;
use super::statement::{self, CallSession, QueryLimits};

/// The server's limits (SPEC §11).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub query: QueryLimits,
    /// Statements running at once; more wait for a turn, at most `queue_wait`.
    pub concurrent: usize,
    pub queue_wait: Duration,
}

#[derive(Clone)]
pub struct CatalogService {
    inner: Arc<Inner>,
}

struct Inner {
    /// The unscoped catalog; each call narrows it to its token's scope and access level.
    catalog: Catalog,
    /// What every call's session starts from.
    sessions: SessionTemplate,
    /// What every call's runtime shares (`statement::shared_runtime`).
    runtime: Arc<RuntimeEnv>,
    /// The plans of recent statements, by grant and text.
    plans: PlanCache,
    auth: Authenticator,
    limits: Limits,
    turns: Arc<Semaphore>,
    drain: Arc<Drain>,
    sql_info: SqlInfoData,
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

impl CatalogService {
    pub fn new(
        catalog: Catalog,
        tokens: Tokens,
        limits: Limits,
        drain: Arc<Drain>,
    ) -> Result<Self, String> {
        let mut info = SqlInfoDataBuilder::new();
        info.append(SqlInfo::FlightSqlServerName, "jammi");
        info.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        info.append(SqlInfo::FlightSqlServerArrowVersion, "59");
        info.append(SqlInfo::FlightSqlServerReadOnly, false);
        info.append(SqlInfo::FlightSqlServerSql, true);
        info.append(SqlInfo::FlightSqlServerSubstrait, false);
        info.append(
            SqlInfo::FlightSqlServerTransaction,
            SqlSupportedTransaction::None as i32,
        );
        let sql_info = info
            .build()
            .map_err(|e| format!("cannot describe the server: {e}"))?;
        Ok(CatalogService {
            inner: Arc::new(Inner {
                turns: Arc::new(Semaphore::new(limits.concurrent.max(1))),
                catalog,
                sessions: statement::template(),
                runtime: statement::shared_runtime()?,
                plans: PlanCache::default(),
                auth: Authenticator::new(tokens),
                limits,
                drain,
                sql_info,
            }),
        })
    }

    /// Starts a call's log line, unless the server is shutting down.
    fn begin(&self, call: &'static str, kind: &'static str) -> Result<CallLog, Status> {
        Ok(CallLog::start(call, kind, self.inner.drain.enter()?))
    }

    /// Runs a call that answers at once (metadata, closing a handle) for its caller's
    /// grant, with its log line.
    async fn answer<R, T, F, Fut>(
        &self,
        call: &'static str,
        request: &Request<R>,
        f: F,
    ) -> Result<T, Status>
    where
        F: FnOnce(Grant) -> Fut,
        Fut: std::future::Future<Output = Result<T, Status>>,
    {
        let log = self.begin(call, "metadata")?;
        let result = async {
            let grant = self.inner.auth.grant_of(request).await?;
            log.caller(grant);
            f(grant).await
        }
        .await;
        log.finish(&result, 0);
        result
    }

    /// The `FlightInfo` of a metadata command: its fixed schema and a ticket that answers
    /// it.
    async fn metadata_info(
        &self,
        call: &'static str,
        request: Request<FlightDescriptor>,
        schema: &SchemaRef,
        ticket: Ticket,
    ) -> Result<Response<FlightInfo>, Status> {
        let descriptor = request.get_ref().clone();
        self.answer(call, &request, |_| async move {
            flight_info_of(schema, descriptor, ticket).map(Response::new)
        })
        .await
    }

    /// The caller's grant and a session of its own bound to it.
    async fn session<T>(&self, request: &Request<T>) -> Result<(Grant, CallSession), Status> {
        let grant = self.inner.auth.grant_of(request).await?;
        Ok((grant, self.session_for(grant)))
    }

    fn session_for(&self, grant: Grant) -> CallSession {
        CallSession::new(
            &self.inner.sessions,
            &self.inner.runtime,
            &self.inner.catalog,
            grant,
            self.inner.limits.query,
        )
    }

    /// A turn to run a statement of `session`, waiting at most the queue wait; the
    /// statement's clock starts when it gets it.
    async fn turn(&self, session: &mut CallSession) -> Result<OwnedSemaphorePermit, Status> {
        let wait = Arc::clone(&self.inner.turns).acquire_owned();
        match tokio::time::timeout(self.inner.limits.queue_wait, wait).await {
            Ok(Ok(permit)) => {
                session.start_clock();
                Ok(permit)
            }
            _ => Err(Status::resource_exhausted(format!(
                "the server is running {} statements; try again later",
                self.inner.limits.concurrent
            ))),
        }
    }

    /// The plan of `sql` for `grant`: planned once by this server, then taken from its
    /// cache (`sql::plans`). A statement this server has not seen (a handle made by another
    /// server, say), or one never cached, is planned here: in the call's `session`, or in
    /// one derived for it when the call has none (it only plans); a cached one needs none.
    async fn prepared(
        &self,
        session: Option<&CallSession>,
        grant: Grant,
        sql: &str,
    ) -> Result<Arc<PreparedPlan>, Status> {
        if let Some(prepared) = self.inner.plans.get(grant, sql) {
            return Ok(prepared);
        }
        let derived;
        let session = match session {
            Some(session) => session,
            None => {
                derived = self.session_for(grant);
                &derived
            }
        };
        let plan = statement::plan(&session.state, sql).await?;
        let prepared = PreparedPlan::new(&session.state, plan).map_err(|e| status_of(&e))?;
        Ok(self.inner.plans.insert(grant, sql, prepared))
    }

    /// `handle`'s statement for `grant`, with its bound parameters (one row at most). A
    /// statement that must be analyzed as it is bound is analyzed in `session`, or in one
    /// derived for it when the call has none (it only plans).
    async fn bound(
        &self,
        session: Option<&CallSession>,
        grant: Grant,
        handle: &Handle,
    ) -> Result<BoundPlan, Status> {
        let prepared = self.prepared(session, grant, &handle.sql).await?;
        let mut rows = statement::parameter_rows(&handle.parameters()?)?;
        if rows.len() > 1 {
            return Err(Status::invalid_argument(format!(
                "a query takes one row of parameters, not {}; send several rows as an update \
                 (executemany)",
                rows.len()
            )));
        }
        let values = rows.pop().unwrap_or_default();
        let derived =
            (session.is_none() && !prepared.binds_alone()).then(|| self.session_for(grant));
        prepared
            .bind(session.or(derived.as_ref()).map(|s| &s.state), values)
            .map_err(|e| status_of(&e))
    }

    /// The `FlightInfo` of the statement of the handle `encoded`: its schema, and a ticket
    /// that runs it. The schema is the bound statement's, which is what `DoGet` streams;
    /// nothing is planned physically, and a statement cached analyzed needs no session.
    async fn flight_info<T>(
        &self,
        request: &Request<T>,
        descriptor: FlightDescriptor,
        encoded: &[u8],
        ticket: Ticket,
    ) -> Result<Response<FlightInfo>, Status> {
        let log = self.begin("GetFlightInfo", "plan")?;
        let result = async {
            let grant = self.inner.auth.grant_of(request).await?;
            log.caller(grant);
            let handle = Handle::decode_from(encoded)?;
            let bound = self.bound(None, grant, &handle).await?;
            flight_info_of(&Arc::new(bound.schema()), descriptor, ticket)
        }
        .await;
        log.finish(&result, 0);
        result.map(Response::new)
    }

    /// Runs the statement of the handle `encoded` and streams its result, with the schema
    /// its `FlightInfo` gave.
    async fn run_query<T>(
        &self,
        call: &'static str,
        request: &Request<T>,
        encoded: &[u8],
    ) -> Result<Response<BoxStream<arrow_flight::FlightData>>, Status> {
        let log = self.begin(call, "query")?;
        let started = async {
            let (grant, mut session) = self.session(request).await?;
            log.caller(grant);
            let handle = Handle::decode_from(encoded)?;
            let turn = self.turn(&mut session).await?;
            let bound = self.bound(Some(&session), grant, &handle).await?;
            let physical = bound
                .physical(&session.state)
                .await
                .map_err(|e| status_of(&e))?;
            let schema = Arc::new(bound.schema());
            let batches = session.execute(physical)?;
            Ok::<_, Status>((schema, batches, turn))
        }
        .await;
        let (schema, batches, turn) = match started {
            Ok(started) => started,
            Err(e) => {
                log.finish::<()>(&Err(e.clone()), 0);
                return Err(e);
            }
        };
        let batches = run_until_deadline(batches, turn, self.inner.limits.query.timeout);
        let batches = with_schema(batches, Arc::clone(&schema));
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(log.counting(batches))
            .map_err(Status::from);
        Ok(Response::new(Box::pin(stream)))
    }

    /// Runs `plans` (see [`statement::for_rows`]) in order as updates; returns their count.
    async fn run_update(
        &self,
        session: &mut CallSession,
        plans: Vec<LogicalPlan>,
    ) -> Result<i64, Status> {
        let _turn = self.turn(session).await?;
        let session = &*session;
        let work = async {
            let mut total = 0i64;
            for plan in plans {
                let physical = statement::physical(&session.state, plan).await?;
                let schema = physical.schema();
                let batches: Vec<RecordBatch> = session
                    .execute(physical)?
                    .try_collect()
                    .await
                    .map_err(|e| status_of(&e))?;
                total = total.saturating_add(statement::update_count(&schema, &batches));
            }
            Ok(total)
        };
        match tokio::time::timeout(self.inner.limits.query.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(deadline_exceeded(self.inner.limits.query.timeout)),
        }
    }
}

/// A `FlightInfo` with one endpoint on this server (no location: the same connection).
fn flight_info_of(
    schema: &SchemaRef,
    descriptor: FlightDescriptor,
    ticket: Ticket,
) -> Result<FlightInfo, Status> {
    FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(format!("cannot encode the schema: {e}")))
        .map(|info| {
            info.with_descriptor(descriptor)
                .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
        })
}

fn deadline_exceeded(timeout: Duration) -> Status {
    Status::deadline_exceeded(format!(
        "the statement ran longer than the server's limit of {} s and was stopped",
        timeout.as_secs_f64()
    ))
}

/// Runs `batches` in a task of its own that feeds a small channel, and ends it at the
/// deadline whether or not the client reads: a client that stops reading (gRPC then stops
/// polling the response) must not keep the statement, its turn and its database
/// connections past `timeout`. The task holds the statement's `turn`. A statement stopped
/// at the deadline, or failing, ends the stream with its error once the client has read
/// what came before; a client that goes away ends the task at its next batch.
///
/// The answer keeps the deadline by itself too: were the task stuck inside one step of
/// its work when the deadline passes (a step the limits of `sql::limits` bound, but do not
/// interrupt), the client still hears `DEADLINE_EXCEEDED` on time, and the task is
/// aborted at its next await.
fn run_until_deadline(
    mut batches: SendableRecordBatchStream,
    turn: OwnedSemaphorePermit,
    timeout: Duration,
) -> impl Stream<Item = Result<RecordBatch, FlightError>> + Send + 'static {
    let deadline = tokio::time::Instant::now() + timeout;
    let (sender, receiver) = tokio::sync::mpsc::channel(2);
    let (outcome, ended) = tokio::sync::oneshot::channel::<Status>();
    let task = tokio::spawn(async move {
        let _turn = turn;
        let produce = async {
            while let Some(batch) = batches.next().await {
                match batch {
                    Ok(batch) => {
                        if sender.send(batch).await.is_err() {
                            return None; // The client went away.
                        }
                    }
                    Err(e) => return Some(status_of(&e)),
                }
            }
            None
        };
        let failed = match tokio::time::timeout(timeout, produce).await {
            Ok(failed) => failed,
            Err(_) => Some(deadline_exceeded(timeout)),
        };
        if let Some(status) = failed {
            let _ = outcome.send(status);
        }
        // `batches` (the plan, its scans and their connections) is dropped here.
    });
    let batches = tokio_stream_of(receiver).map(Ok);
    let end = futures::stream::once(async move {
        // The sender is gone: an error, if the statement ended with one.
        ended
            .await
            .ok()
            .map(|status| Err(FlightError::Tonic(Box::new(status))))
    })
    .filter_map(futures::future::ready);
    let mut answer = Box::pin(batches.chain(end));
    let (mut late, abort) = (
        Box::pin(tokio::time::sleep_until(deadline)),
        task.abort_handle(),
    );
    let mut over = false;
    futures::stream::poll_fn(move |cx| {
        if over {
            return Poll::Ready(None);
        }
        match answer.as_mut().poll_next(cx) {
            Poll::Pending if late.as_mut().poll(cx).is_ready() => {
                abort.abort();
                over = true;
                let status = deadline_exceeded(timeout);
                Poll::Ready(Some(Err(FlightError::Tonic(Box::new(status)))))
            }
            polled => {
                over = matches!(polled, Poll::Ready(None));
                polled
            }
        }
    })
}

/// `batches` under `schema`, the statement's schema as its `FlightInfo` gave it (the bound
/// logical plan's). The physical plan describes the same columns, of the same types, but
/// may differ in nullability or metadata; a column that breaks `schema` (a null where it
/// promises none) fails the stream instead of reaching the client.
fn with_schema(
    batches: impl Stream<Item = Result<RecordBatch, FlightError>> + Send + 'static,
    schema: SchemaRef,
) -> impl Stream<Item = Result<RecordBatch, FlightError>> + Send + 'static {
    batches.map(move |batch| {
        let batch = batch?;
        if Arc::ptr_eq(&batch.schema(), &schema) || *batch.schema() == *schema {
            return Ok(batch);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        RecordBatch::try_new_with_options(Arc::clone(&schema), batch.columns().to_vec(), &options)
            .map_err(FlightError::Arrow)
    })
}

/// The batches of `receiver`, as a stream.
fn tokio_stream_of(
    mut receiver: tokio::sync::mpsc::Receiver<RecordBatch>,
) -> impl Stream<Item = RecordBatch> + Send + 'static {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

/// One batch through the Flight encoder, with `schema` even when there are no rows.
fn metadata_stream(
    schema: SchemaRef,
    batch: Result<RecordBatch, FlightError>,
) -> BoxStream<arrow_flight::FlightData> {
    Box::pin(
        FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(futures::stream::once(async { batch }))
            .map_err(Status::from),
    )
}

fn ticket_of(message: &impl ProstMessageExt) -> Ticket {
    Ticket::new(message.as_any().encode_to_vec())
}

/// Every parameter row a `DoPut` carries (none for a message with only a descriptor), at
/// most [`statement::MAX_PARAMETER_ROWS`].
async fn parameter_batches(stream: PeekableFlightDataStream) -> Result<Vec<RecordBatch>, Status> {
    // A DoPut that only names its command (e.g. a plain update) has one message with no
    // IPC header: there is nothing to decode.
    let data = stream
        .try_filter(|message| futures::future::ready(!message.data_header.is_empty()))
        .map_err(FlightError::from);
    let mut batches = arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(data);
    let (mut all, mut rows) = (Vec::new(), 0);
    while let Some(batch) = batches
        .try_next()
        .await
        .map_err(|e| Status::invalid_argument(format!("cannot read the parameters: {e}")))?
    {
        rows += batch.num_rows();
        if rows > statement::MAX_PARAMETER_ROWS {
            return Err(Status::invalid_argument(format!(
                "more than {} parameter rows in one call",
                statement::MAX_PARAMETER_ROWS
            )));
        }
        all.push(batch);
    }
    Ok(all)
}

#[tonic::async_trait]
impl FlightSqlService for CatalogService {
    type FlightService = CatalogService;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<BoxStream<HandshakeResponse>>, Status> {
        let log = self.begin("Handshake", "auth")?;
        let result = async {
            let (token, grant) = self.inner.auth.basic(&request).await?;
            log.caller(grant);
            Ok::<_, Status>(token)
        }
        .await;
        log.finish(&result, 0);
        let token = result?;
        let bearer = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| auth::unauthenticated())?;
        let answer = HandshakeResponse {
            protocol_version: 0,
            payload: token.into_bytes().into(),
        };
        let mut response: Response<BoxStream<HandshakeResponse>> =
            Response::new(Box::pin(futures::stream::iter([Ok(answer)])));
        response.metadata_mut().insert("authorization", bearer);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let handle = Handle::new(query.query).encode();
        let ticket = ticket_of(&TicketStatementQuery {
            statement_handle: handle.clone(),
        });
        let descriptor = request.get_ref().clone();
        self.flight_info(&request, descriptor, &handle, ticket)
            .await
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.run_query("DoGet", &request, &ticket.statement_handle)
            .await
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let ticket = ticket_of(&query);
        let descriptor = request.get_ref().clone();
        self.flight_info(
            &request,
            descriptor,
            &query.prepared_statement_handle,
            ticket,
        )
        .await
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.run_query("DoGet", &request, &query.prepared_statement_handle)
            .await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let log = self.begin("CreatePreparedStatement", "plan")?;
        let result = async {
            let grant = self.inner.auth.grant_of(&request).await?;
            log.caller(grant);
            let prepared = self.prepared(None, grant, &query.query).await?;
            let parameters = prepared.parameter_schema();
            // Without parameters the statement is bound as it is, and its schema is the
            // one GetFlightInfo and DoGet give; with them, the types are the planner's best.
            let dataset = if parameters.fields().is_empty() {
                // Prepared without placeholders, it was analyzed then (or is an EXPLAIN), so
                // it binds without a session.
                prepared
                    .bind(None, Vec::new())
                    .map_err(|e| status_of(&e))?
                    .schema()
            } else {
                prepared.plan().schema().as_arrow().clone()
            };
            Ok::<_, Status>(ActionCreatePreparedStatementResult {
                prepared_statement_handle: Handle::new(query.query.clone()).encode(),
                dataset_schema: ipc_schema(&dataset)?,
                parameter_schema: ipc_schema(&parameters)?,
            })
        }
        .await;
        log.finish(&result, 0);
        result
    }

    async fn do_action_close_prepared_statement(
        &self,
        _query: ActionClosePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<(), Status> {
        // Handles hold no server state; closing one only needs a valid caller.
        self.answer("ClosePreparedStatement", &request, |_| async { Ok(()) })
            .await
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let log = self.begin("DoPut", "bind")?;
        let result = async {
            let grant = self.inner.auth.grant_of(&request).await?;
            log.caller(grant);
            let handle = Handle::decode_from(&query.prepared_statement_handle)?;
            let batches = parameter_batches(request.into_inner()).await?;
            Ok::<_, Status>(DoPutPreparedStatementResult {
                prepared_statement_handle: Some(handle.bound(&batches)?.encode()),
            })
        }
        .await;
        log.finish(&result, 0);
        result
    }

    async fn do_put_statement_update(
        &self,
        update: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let log = self.begin("DoPut", "update")?;
        let result = async {
            let (grant, mut session) = self.session(&request).await?;
            log.caller(grant);
            let plan = statement::plan(&session.state, &update.query).await?;
            self.run_update(&mut session, vec![plan]).await
        }
        .await;
        log.finish(&result, result.as_ref().map_or(0, |n| *n as u64));
        result
    }

    async fn do_put_prepared_statement_update(
        &self,
        update: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let log = self.begin("DoPut", "update")?;
        let result = async {
            let (grant, mut session) = self.session(&request).await?;
            log.caller(grant);
            let handle = Handle::decode_from(&update.prepared_statement_handle)?;
            let mut batches = parameter_batches(request.into_inner()).await?;
            if batches.iter().all(|b| b.num_rows() == 0) {
                // Bound earlier by a DoPut of the query (as arrow-flight's client does).
                batches = handle.parameters()?;
            }
            let plan = statement::plan(&session.state, &handle.sql).await?;
            let rows = statement::parameter_rows(&batches)?;
            self.run_update(&mut session, statement::for_rows(plan, rows)?)
                .await
        }
        .await;
        log.finish(&result, result.as_ref().map_or(0, |n| *n as u64));
        result
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.metadata_info("GetCatalogs", request, &schema, ticket_of(&query))
            .await
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.answer("DoGet", &request, |grant| async move {
            let catalogs = Arc::clone(self.session_for(grant).state.catalog_list());
            let mut builder = query.into_builder();
            for name in catalogs.catalog_names() {
                builder.append(name);
            }
            Ok(Response::new(metadata_stream(
                builder.schema(),
                builder.build(),
            )))
        })
        .await
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.metadata_info("GetDbSchemas", request, &schema, ticket_of(&query))
            .await
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.answer("DoGet", &request, |grant| async move {
            let catalogs = Arc::clone(self.session_for(grant).state.catalog_list());
            // Every schema of every catalog: the builder applies the request's filters.
            let mut builder = query.into_builder();
            for catalog_name in catalogs.catalog_names() {
                let Some(catalog) = catalogs.catalog(&catalog_name) else {
                    continue;
                };
                for schema_name in catalog.schema_names() {
                    builder.append(&catalog_name, schema_name);
                }
            }
            Ok(Response::new(metadata_stream(
                builder.schema(),
                builder.build(),
            )))
        })
        .await
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.metadata_info("GetTables", request, &schema, ticket_of(&query))
            .await
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.answer("DoGet", &request, |grant| async move {
            let catalogs = Arc::clone(self.session_for(grant).state.catalog_list());
            // Every table of every schema: the builder applies the request's filters.
            let mut builder = query.into_builder();
            for catalog_name in catalogs.catalog_names() {
                let Some(catalog) = catalogs.catalog(&catalog_name) else {
                    continue;
                };
                for schema_name in catalog.schema_names() {
                    let Some(schema) = catalog.schema(&schema_name) else {
                        continue;
                    };
                    for table_name in schema.table_names() {
                        let table = schema.table(&table_name).await.map_err(|e| status_of(&e))?;
                        let Some(table) = table else { continue };
                        builder
                            .append(
                                &catalog_name,
                                &schema_name,
                                &table_name,
                                table_type_name(table.table_type()),
                                &table.schema(),
                            )
                            .map_err(Status::from)?;
                    }
                }
            }
            Ok(Response::new(metadata_stream(
                builder.schema(),
                builder.build(),
            )))
        })
        .await
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.metadata_info("GetTableTypes", request, &schema, ticket_of(&query))
            .await
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.answer("DoGet", &request, |_| async move {
            let mut builder = query.into_builder();
            for table_type in ["BASE TABLE", "VIEW"] {
                builder.append(table_type);
            }
            Ok(Response::new(metadata_stream(
                builder.schema(),
                builder.build(),
            )))
        })
        .await
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&self.inner.sql_info).schema();
        self.metadata_info("GetSqlInfo", request, &schema, ticket_of(&query))
            .await
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.answer("DoGet", &request, |_| async move {
            let builder = query.into_builder(&self.inner.sql_info);
            Ok(Response::new(metadata_stream(
                builder.schema(),
                builder.build(),
            )))
        })
        .await
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

fn table_type_name(table_type: datafusion::datasource::TableType) -> &'static str {
    match table_type {
        datafusion::datasource::TableType::View => "VIEW",
        _ => "BASE TABLE",
    }
}

/// `schema` as the IPC message Flight SQL carries schemas in.
fn ipc_schema(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: datafusion::arrow::error::ArrowError| {
            Status::internal(format!("cannot encode the schema: {e}"))
        })?;
    Ok(bytes)
}
