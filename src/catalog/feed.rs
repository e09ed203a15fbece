//! Following the event log (SPEC §16): the events a scope may see after a cursor, in id
//! order, none skipped, even where ids commit out of order.
//!
//! On SQLite a writer holds the file's write lock from `BEGIN IMMEDIATE` to its commit and
//! takes its ids under it, so once an id is visible every smaller one has committed or
//! never will: the feed reads what is there.
//!
//! On Postgres two transactions take ids in one order and may commit in the other (§13),
//! so a reader that moved its cursor past a visible id could skip a smaller one that
//! commits later. The feed reads the ids of every owner (ids only) and returns events only
//! up to the first gap. A gap is an id taken by a transaction that has not committed, or
//! that rolled back. Its holder took the id before the larger visible one was taken and
//! committed, so it was running when the snapshot that saw the gap was taken: once every
//! transaction of that snapshot has ended (a later snapshot's `xmin` has reached its
//! `xmax`), the id has either committed or will never appear, and the feed moves past it.
//! That relies on the holder having its transaction id before it took the event id: the
//! catalog appends events after writing the changed row, in the same transaction.

use crate::catalog::Catalog;
use crate::catalog::events::{Event, event_from_row};
use crate::error::Result;
use crate::store::{Backend, Isolation, TxOptions, args};
use crate::tenant::owner_of;

/// Events read per call at most.
const PAGE: i64 = 1_000;

/// A reader of the event log from a cursor; see the module documentation.
#[derive(Debug)]
pub struct EventFeed {
    catalog: Catalog,
    cursor: i64,
    gap: Option<Gap>,
}

/// An id the feed waits on (Postgres): it is settled once a snapshot's `xmin` reaches
/// `settled_at`, the `xmax` of the snapshot that first saw it missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Gap {
    id: i64,
    settled_at: i64,
}

const SNAPSHOT: &str = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin, \
     pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xmax";

/// The ids after the cursor, of every owner: only to find the gaps.
const IDS_AFTER: &str =
    "SELECT event_id FROM events WHERE event_id > $1 ORDER BY event_id LIMIT $2";

const VISIBLE_AFTER: &str = "SELECT event_id, owner, event_time, kind, entity, row_key, \
     model_id, version, state FROM events \
     WHERE owner IN ($1, '') AND event_id > $2 AND event_id <= $3 ORDER BY event_id LIMIT $4";

impl Catalog {
    /// A feed of the events this catalog's scope sees, after event id `since` (0: from
    /// the start).
    pub fn follow_events(&self, since: i64) -> EventFeed {
        EventFeed {
            catalog: self.clone(),
            cursor: since.max(0),
            gap: None,
        }
    }
}

impl EventFeed {
    /// The id of the last event the feed has moved past: every visible event up to it was
    /// returned. Resume from it with [`Catalog::follow_events`].
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    /// The next events after the cursor that have settled (at most a page), oldest first,
    /// and the cursor moved past them. Empty when the scope has nothing new that has
    /// settled: nothing new committed, or (Postgres) an earlier id may still commit.
    ///
    /// # Errors
    /// Database errors.
    pub async fn next_events(&mut self) -> Result<Vec<Event>> {
        // A page can hold only other owners' ids: read on while the cursor moves.
        loop {
            let before = self.cursor;
            let events = self.next_page().await?;
            if !events.is_empty() || self.cursor == before {
                return Ok(events);
            }
        }
    }

    async fn next_page(&mut self) -> Result<Vec<Event>> {
        let owner = owner_of(self.catalog.scope());
        let options = TxOptions {
            isolation: Isolation::RepeatableRead,
            ..TxOptions::read_only()
        };
        let (cursor, gap) = (self.cursor, self.gap);
        let (events, cursor, gap) = self
            .catalog
            .transaction(options, |tx| {
                let owner = owner.clone();
                Box::pin(async move {
                    let (horizon, gap) = match tx.backend() {
                        Backend::Sqlite => (i64::MAX, None),
                        Backend::Postgres => {
                            let snapshot = tx.fetch_one(SNAPSHOT, &[]).await?;
                            let (xmin, xmax) = (snapshot.int("xmin")?, snapshot.int("xmax")?);
                            let ids = tx.fetch_all(IDS_AFTER, &args![cursor, PAGE]).await?;
                            let ids = ids
                                .iter()
                                .map(|row| row.int("event_id"))
                                .collect::<Result<Vec<_>>>()?;
                            settled(cursor, &ids, gap, xmin, xmax)
                        }
                    };
                    let rows = tx
                        .fetch_all(VISIBLE_AFTER, &args![owner, cursor, horizon, PAGE])
                        .await?;
                    let events = rows
                        .iter()
                        .map(event_from_row)
                        .collect::<Result<Vec<_>>>()?;
                    // SQLite: up to the last event read. Postgres: up to the horizon, the
                    // other owners' ids included (a full page ends at its last event).
                    let moved = match (tx.backend(), events.last()) {
                        (Backend::Sqlite, last) => last.map_or(cursor, |e| e.event_id),
                        (Backend::Postgres, Some(last)) if events.len() as i64 == PAGE => {
                            last.event_id
                        }
                        (Backend::Postgres, _) => horizon,
                    };
                    Ok((events, moved, gap))
                })
            })
            .await?;
        self.cursor = cursor;
        self.gap = gap;
        Ok(events)
    }
}

/// The largest id up to which every id after `cursor` is settled, given the ids visible
/// now (ascending, after `cursor`) and the snapshot's horizon; and the gap waited on.
fn settled(cursor: i64, ids: &[i64], gap: Option<Gap>, xmin: i64, xmax: i64) -> (i64, Option<Gap>) {
    let mut horizon = cursor;
    for &id in ids {
        let missing = horizon + 1;
        if id > missing {
            match gap {
                // Every transaction that could hold `missing` has ended: it never commits.
                Some(g) if g.id == missing && xmin >= g.settled_at => {}
                Some(g) if g.id == missing => return (horizon, Some(g)),
                _ => {
                    let wait = Gap {
                        id: missing,
                        settled_at: xmax,
                    };
                    return (horizon, Some(wait));
                }
            }
        }
        horizon = id;
    }
    (horizon, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_holds_the_horizon_until_its_snapshot_has_ended() {
        // Contiguous: everything settles.
        assert_eq!(settled(3, &[4, 5, 6], None, 10, 12).0, 6);
        // 5 missing: stop at 4, wait for the transactions below xmax 12.
        let (h, gap) = settled(3, &[4, 6, 7], None, 10, 12);
        assert_eq!(h, 4);
        let gap = gap.unwrap();
        assert_eq!((gap.id, gap.settled_at), (5, 12));
        // Still running (xmin 11 < 12): still waiting.
        let (h, again) = settled(4, &[6, 7], Some(gap), 11, 13);
        assert_eq!(h, 4);
        assert_eq!(again.unwrap().settled_at, 12);
        // They ended: 5 never committed, move past it.
        assert_eq!(settled(4, &[6, 7], Some(gap), 12, 14), (7, None));
        // It committed late: contiguous again.
        assert_eq!(settled(4, &[5, 6, 7], Some(gap), 11, 13).0, 7);
    }
}
