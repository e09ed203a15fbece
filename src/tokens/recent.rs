//! A bounded set of recently seen token ids, each remembered for a fixed time: the
//! negative cache of unknown ids, and the record of when each token's last use was written.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// At most `capacity` ids, each for `ttl` after it was last inserted; the oldest go first.
#[derive(Debug)]
pub(super) struct RecentIds {
    capacity: usize,
    ttl: Duration,
    /// When each remembered id was inserted.
    since: HashMap<String, Instant>,
    /// Insertions in order; an entry whose time no longer matches `since` is stale.
    order: VecDeque<(String, Instant)>,
}

impl RecentIds {
    pub(super) fn new(capacity: usize, ttl: Duration) -> Self {
        RecentIds {
            capacity: capacity.max(1),
            ttl,
            since: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Whether `id` was inserted less than the ttl before `now`.
    pub(super) fn contains(&self, id: &str, now: Instant) -> bool {
        self.since
            .get(id)
            .is_some_and(|&at| now.saturating_duration_since(at) < self.ttl)
    }

    /// Remembers `id` from `now` (an id remembered already keeps its time), forgetting
    /// expired ids and, when full, the oldest. `order` stays sorted by time, so expired
    /// entries are at its front and it never holds more than `capacity` live ones.
    pub(super) fn insert(&mut self, id: &str, now: Instant) {
        if self.contains(id, now) {
            return;
        }
        while let Some((oldest, at)) = self.order.front() {
            let expired = now.saturating_duration_since(*at) >= self.ttl;
            let stale = self.since.get(oldest) != Some(at);
            if !(expired || stale || self.since.len() >= self.capacity) {
                break;
            }
            if !stale {
                self.since.remove(oldest);
            }
            self.order.pop_front();
        }
        self.since.insert(id.to_owned(), now);
        self.order.push_back((id.to_owned(), now));
    }

    /// Forgets `id`.
    pub(super) fn remove(&mut self, id: &str) {
        // Its entry in `order` becomes stale and goes when it reaches the front.
        self.since.remove(id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.since.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_remembered_for_the_ttl_only() {
        let start = Instant::now();
        let mut ids = RecentIds::new(10, Duration::from_secs(60));
        ids.insert("a", start);
        assert!(ids.contains("a", start + Duration::from_secs(59)));
        assert!(!ids.contains("a", start + Duration::from_secs(60)));
        assert!(!ids.contains("b", start));
        ids.remove("a");
        assert!(!ids.contains("a", start));
    }

    #[test]
    fn the_set_never_holds_more_than_its_capacity() {
        let start = Instant::now();
        let mut ids = RecentIds::new(3, Duration::from_secs(60));
        for (i, id) in ["a", "b", "c", "d", "a", "e"].iter().enumerate() {
            ids.insert(id, start + Duration::from_millis(i as u64));
            assert!(ids.len() <= 3);
        }
        let now = start + Duration::from_millis(10);
        // The oldest insertions went first; "a" went, then came back.
        assert!(!ids.contains("b", now) && !ids.contains("c", now));
        assert!(ids.contains("a", now) && ids.contains("d", now) && ids.contains("e", now));
        // Repeated insertions of a remembered id add nothing.
        for i in 0..1000u64 {
            ids.insert("x", now + Duration::from_millis(i));
        }
        assert!(ids.len() <= 3);
        assert!(ids.order.len() <= 3, "{}", ids.order.len());
        // Expired entries leave as new ones come.
        let later = now + Duration::from_secs(120);
        for id in ["p", "q"] {
            ids.insert(id, later);
        }
        assert_eq!(ids.len(), 2);
        assert_eq!(ids.order.len(), 2);
    }
}
