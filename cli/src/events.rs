//! `jammi events`: the event log as newline-delimited JSON, from an id on, and with
//! `--follow` as new events commit (SPEC §16), in the scope of `--tenant`.

use std::io::Write;
use std::time::Duration;

use jammi_catalog::{Event, EventKind, TenantId};

use crate::session::open_catalog;

/// How often a following run asks for new events (both backends poll).
const POLL: Duration = Duration::from_millis(100);

pub async fn print(
    db: &str,
    tenant: Option<TenantId>,
    since: i64,
    kinds: &[EventKind],
    follow: bool,
) -> Result<(), String> {
    let catalog = open_catalog(db).await?.with_scope(tenant);
    let mut feed = catalog.follow_events(since);
    let mut stdout = std::io::stdout().lock();
    loop {
        let events = feed.next_events().await.map_err(|e| e.to_string())?;
        let written = events
            .iter()
            .filter(|e| kinds.is_empty() || kinds.contains(&e.kind))
            .try_for_each(|event| writeln!(stdout, "{}", json(event)))
            // A reader downstream (`| head`, a pipeline) sees each event as it commits.
            .and_then(|()| stdout.flush());
        match written {
            Ok(()) => {}
            // The reader has stopped reading (`| head -1`): done, not an error.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(format!("cannot write: {e}")),
        }
        if events.is_empty() {
            if !follow {
                return Ok(());
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

fn json(event: &Event) -> serde_json::Value {
    serde_json::json!({
        "event_id": event.event_id,
        "event_time": event.event_time,
        "tenant_id": event.tenant_id.map(|t| t.to_string()),
        "kind": event.kind.to_string(),
        "entity": event.entity,
        "row_key": event.row_key,
        "model_id": event.model_id,
        "version": event.version,
        "state": event.state,
    })
}
