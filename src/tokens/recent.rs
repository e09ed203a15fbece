//! A bounded memory of recently seen token ids, each remembered for a fixed time: the
//! verified tokens, the negative cache of unknown ids, and the record of when each token's
//! last use was written.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// At most `capacity` ids, each with a value, for `ttl` after it was inserted; the oldest
/// go first.
#[derive(Debug)]
pub(super) struct Recent<V> {
    capacity: usize,
    ttl: Duration,
    /// When each remembered id was inserted, and its value.
    since: HashMap<String, (Instant, V)>,
    /// Insertions in order; an entry whose time no longer matches `since` is stale.
    order: VecDeque<(String, Instant)>,
}

/// A set of recent ids.
pub(super) type RecentIds = Recent<()>;

impl<V> Recent<V> {
    pub(super) fn new(capacity: usize, ttl: Duration) -> Self {
        Recent {
            capacity: capacity.max(1),
            ttl,
            since: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The value of `id`, if it was inserted less than the ttl before `now`.
    pub(super) fn get(&self, id: &str, now: Instant) -> Option<&V> {
        self.since
            .get(id)
            .filter(|(at, _)| now.saturating_duration_since(*at) < self.ttl)
            .map(|(_, value)| value)
    }

    /// Whether `id` was inserted less than the ttl before `now`.
    pub(super) fn contains(&self, id: &str, now: Instant) -> bool {
        self.get(id, now).is_some()
    }

    /// Remembers `id` with `value` from `now` (an id remembered already keeps its time and
    /// value), forgetting expired ids and, when full, the oldest. `order` stays sorted by
    /// time, so expired entries are at its front and it never holds more than `capacity`
    /// live ones.
    pub(super) fn insert(&mut self, id: &str, now: Instant, value: V) {
        if self.contains(id, now) {
            return;
        }
        while let Some((oldest, at)) = self.order.front() {
            let expired = now.saturating_duration_since(*at) >= self.ttl;
            let stale = self.since.get(oldest).map(|(time, _)| time) != Some(at);
            if !(expired || stale || self.since.len() >= self.capacity) {
                break;
            }
            if !stale {
                self.since.remove(oldest);
            }
            self.order.pop_front();
        }
        self.since.insert(id.to_owned(), (now, value));
        self.order.push_back((id.to_owned(), now));
    }

    /// Forgets `id`.
    pub(super) fn remove(&mut self, id: &str) {
        // Its entry in `order` becomes stale and goes when it reaches the front.
        self.since.remove(id);
    }

    /// Forgets every id.
    pub(super) fn clear(&mut self) {
        self.since.clear();
        self.order.clear();
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
        ids.insert("a", start, ());
        assert!(ids.contains("a", start + Duration::from_secs(59)));
        assert!(!ids.contains("a", start + Duration::from_secs(60)));
        assert!(!ids.contains("b", start));
        ids.remove("a");
        assert!(!ids.contains("a", start));
    }

    #[test]
    fn an_expired_value_is_replaced_and_a_live_one_kept() {
        let start = Instant::now();
        let mut values = Recent::new(10, Duration::from_secs(1));
        values.insert("a", start, 1);
        values.insert("a", start + Duration::from_millis(500), 2);
        assert_eq!(
            values.get("a", start + Duration::from_millis(900)),
            Some(&1)
        );
        assert_eq!(values.get("a", start + Duration::from_secs(1)), None);
        let later = start + Duration::from_secs(2);
        values.insert("a", later, 3);
        assert_eq!(values.get("a", later), Some(&3));
        values.clear();
        assert_eq!(values.get("a", later), None);
        assert_eq!(values.len(), 0);
    }

    #[test]
    fn the_set_never_holds_more_than_its_capacity() {
        let start = Instant::now();
        let mut ids = RecentIds::new(3, Duration::from_secs(60));
        for (i, id) in ["a", "b", "c", "d", "a", "e"].iter().enumerate() {
            ids.insert(id, start + Duration::from_millis(i as u64), ());
            assert!(ids.len() <= 3);
        }
        let now = start + Duration::from_millis(10);
        // The oldest insertions went first; "a" went, then came back.
        assert!(!ids.contains("b", now) && !ids.contains("c", now));
        assert!(ids.contains("a", now) && ids.contains("d", now) && ids.contains("e", now));
        // Repeated insertions of a remembered id add nothing.
        for i in 0..1000u64 {
            ids.insert("x", now + Duration::from_millis(i), ());
        }
        assert!(ids.len() <= 3);
        assert!(ids.order.len() <= 3, "{}", ids.order.len());
        // Expired entries leave as new ones come.
        let later = now + Duration::from_secs(120);
        for id in ["p", "q"] {
            ids.insert(id, later, ());
        }
        assert_eq!(ids.len(), 2);
        assert_eq!(ids.order.len(), 2);
    }
}
