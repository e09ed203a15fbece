//! `jammi events`: the event log as newline-delimited JSON, from an id on, and with
//! `--follow` as new events commit (SPEC §16), in the scope of `--tenant`.

use std::io::Write;

use jammi_catalog::{EventKind, TenantId};

use crate::session::open_catalog;

pub async fn print(
    db: &str,
    tenant: Option<TenantId>,
    since: i64,
    kinds: &[EventKind],
    follow: bool,
) -> Result<(), String> {
    let catalog = open_catalog(db).await?.with_scope(tenant);
    let mut feed = catalog.follow_events(since);
    // Woken by commits on Postgres; SQLite polls.
    let mut signal = match follow {
        true => Some(catalog.event_signal().await.map_err(|e| e.to_string())?),
        false => None,
    };
    let mut stdout = std::io::stdout().lock();
    loop {
        let events = feed.next_events().await.map_err(|e| e.to_string())?;
        let written = events
            .iter()
            .filter(|e| kinds.is_empty() || kinds.contains(&e.kind))
            .try_for_each(|event| writeln!(stdout, "{}", event.to_json()))
            // A reader downstream (`| head`, a pipeline) sees each event as it commits.
            .and_then(|()| stdout.flush());
        match written {
            Ok(()) => {}
            // The reader has stopped reading (`| head -1`): done, not an error.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(format!("cannot write: {e}")),
        }
        if events.is_empty() {
            let Some(signal) = signal.as_mut() else {
                return Ok(());
            };
            signal.wait().await;
        }
    }
}
