//! [`GuidCache`]: a bounded, thread-safe cache keyed by message GUID, budgeted in
//! entries and bytes, evicting about the least recently used first (CLOCK), of what reading a message gives: [`SummaryCache`] (parsed
//! summaries) and [`HeaderCache`] (header bytes). A GUID names the message's content,
//! which never changes, so an entry can never be stale; it only ages out.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};

use super::MessageSummary;

/// What an entry costs the cache's byte budget.
pub trait Weigh {
    /// Bytes held, about.
    fn weight(&self) -> usize;
}

impl Weigh for MessageSummary {
    fn weight(&self) -> usize {
        MessageSummary::weight(self)
    }
}

impl Weigh for Vec<u8> {
    fn weight(&self) -> usize {
        self.capacity()
    }
}

/// Parsed summaries, so that FETCH ENVELOPE / BODYSTRUCTURE, SORT and THREAD over
/// many messages do not re-parse them.
pub type SummaryCache = GuidCache<MessageSummary>;

/// Messages' header bytes (up to the blank line), so that a header FETCH
/// (`BODY[HEADER.FIELDS (...)]`, which clients send for every message of a folder they
/// open) and SEARCH's header keys do not open and read each message file again.
pub type HeaderCache = GuidCache<Vec<u8>>;

/// What SEARCH's FROM, TO, CC, BCC and SUBJECT keys test of one message
/// ([`tern_message::search_field_texts`], in the order of
/// [`tern_message::SEARCH_FIELDS`]), folded to lower case as the keys compare.
#[derive(Debug)]
pub struct SearchTexts(pub [Vec<String>; 5]);

impl SearchTexts {
    /// The texts of the header `raw`.
    pub fn of(raw: &[u8]) -> SearchTexts {
        SearchTexts(
            tern_message::search_field_texts(raw)
                .map(|texts| texts.iter().map(|t| t.to_lowercase()).collect()),
        )
    }
}

impl Weigh for SearchTexts {
    fn weight(&self) -> usize {
        self.0
            .iter()
            .map(|texts| {
                texts.capacity() * std::mem::size_of::<String>()
                    + texts.iter().map(String::capacity).sum::<usize>()
            })
            .sum()
    }
}

/// Messages' [`SearchTexts`], so that a client searching the same folder again (a
/// quick filter, typed a letter at a time, sends `SEARCH FROM` for each) compares a
/// few short strings per message instead of parsing every header again.
pub type SearchTextCache = GuidCache<SearchTexts>;

/// The caches of what reading messages gives, shared by every session of a server.
#[derive(Debug, Default)]
pub struct MessageCaches {
    /// Parsed summaries.
    pub summaries: SummaryCache,
    /// Header bytes.
    pub headers: HeaderCache,
    /// What SEARCH's header keys test.
    pub search_texts: SearchTextCache,
}

struct CacheEntry<T> {
    value: Arc<T>,
    /// Used since the eviction hand last passed it (CLOCK's reference bit).
    referenced: bool,
    weight: usize,
}

/// The entries and the ring the eviction hand goes round (CLOCK, a close and cheap
/// stand-in for least recently used): a use only sets the entry's bit, so a
/// whole-mailbox read over a cache it fits in (SORT, FETCH 1:* ENVELOPE) writes a bit
/// per message instead of queueing each again; eviction takes the first entry of the
/// ring whose bit is clear, clearing the bits it passes.
struct CacheInner<T> {
    map: HashMap<[u8; 20], CacheEntry<T>>,
    /// Every key of `map`, once each, in the order the hand meets them.
    order: VecDeque<[u8; 20]>,
    bytes: usize,
    hits: u64,
    misses: u64,
}

impl<T> Default for CacheInner<T> {
    fn default() -> Self {
        CacheInner {
            map: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            hits: 0,
            misses: 0,
        }
    }
}

impl<T> CacheInner<T> {
    /// The value of `guid`, marked used, counted as a hit or a miss.
    fn lookup(&mut self, guid: &[u8; 20]) -> Option<Arc<T>> {
        match self.map.get_mut(guid) {
            Some(e) => {
                e.referenced = true;
                self.hits += 1;
                Some(e.value.clone())
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    fn evict(&mut self, max_entries: usize, max_bytes: usize) {
        while self.map.len() > max_entries || (self.bytes > max_bytes && !self.map.is_empty()) {
            let Some(k) = self.order.pop_front() else {
                break;
            };
            match self.map.get_mut(&k) {
                Some(e) if e.referenced => {
                    e.referenced = false;
                    self.order.push_back(k);
                }
                Some(_) => {
                    if let Some(e) = self.map.remove(&k) {
                        self.bytes -= e.weight;
                    }
                }
                None => {}
            }
        }
    }
}

/// A bounded, thread-safe cache keyed by message GUID; about the least recently used
/// go first (CLOCK, see `CacheInner`).
pub struct GuidCache<T> {
    inner: Mutex<CacheInner<T>>,
    max_entries: usize,
    max_bytes: usize,
}

impl Default for SummaryCache {
    /// 200,000 entries or 256 MiB, whichever is reached first.
    fn default() -> Self {
        GuidCache::new(200_000, 256 << 20)
    }
}

impl Default for HeaderCache {
    /// 100,000 headers or 32 MiB, whichever is reached first.
    fn default() -> Self {
        GuidCache::new(100_000, 32 << 20)
    }
}

impl Default for SearchTextCache {
    /// 200,000 messages or 32 MiB, whichever is reached first.
    fn default() -> Self {
        GuidCache::new(200_000, 32 << 20)
    }
}

impl<T> fmt::Debug for GuidCache<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("GuidCache")
            .field("len", &inner.map.len())
            .field("bytes", &inner.bytes)
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl<T: Weigh> GuidCache<T> {
    /// A cache holding at most `max_entries` values and about `max_bytes` bytes of
    /// them (see [`Weigh`]); least recently used go first.
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        GuidCache {
            inner: Mutex::new(CacheInner::default()),
            max_entries,
            max_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner<T>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached value of `guid`, marking it recently used.
    pub fn get(&self, guid: &[u8; 20]) -> Option<Arc<T>> {
        self.lock().lookup(guid)
    }

    /// [`get`](Self::get) of each of `guids`, in order, under one hold of the lock.
    pub fn get_many<'g>(&self, guids: impl Iterator<Item = &'g [u8; 20]>) -> Vec<Option<Arc<T>>> {
        let mut inner = self.lock();
        guids.map(|guid| inner.lookup(guid)).collect()
    }

    /// Stores a value (replacing any for the same GUID), evicting as needed.
    pub fn insert(&self, guid: [u8; 20], value: Arc<T>) {
        let weight = value.weight() + 64;
        let mut inner = self.lock();
        match inner.map.insert(
            guid,
            CacheEntry {
                value,
                referenced: false,
                weight,
            },
        ) {
            Some(old) => inner.bytes -= old.weight,
            None => inner.order.push_back(guid),
        }
        inner.bytes += weight;
        inner.evict(self.max_entries, self.max_bytes);
    }

    /// The cached value of `guid`, or `make()`'s, which is then cached. `make` runs
    /// without the lock held (two threads may both compute the same value).
    pub fn get_or_insert_with<F: FnOnce() -> T>(&self, guid: [u8; 20], make: F) -> Arc<T> {
        if let Some(s) = self.get(&guid) {
            return s;
        }
        let s = Arc::new(make());
        self.insert(guid, s.clone());
        s
    }

    /// Forgets `guid` (e.g. after expunge).
    pub fn remove(&self, guid: &[u8; 20]) {
        let mut inner = self.lock();
        if let Some(e) = inner.map.remove(guid) {
            inner.bytes -= e.weight;
            // Rare (nothing removes in normal serving): a walk of the ring keeps every
            // key in it once.
            inner.order.retain(|k| k != guid);
        }
    }

    /// Empties the cache.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.map.clear();
        inner.order.clear();
        inner.bytes = 0;
    }

    /// Number of cached values.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Approximate bytes held.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// (hits, misses) of [`get`](Self::get) and
    /// [`get_or_insert_with`](Self::get_or_insert_with) so far.
    pub fn stats(&self) -> (u64, u64) {
        let inner = self.lock();
        (inner.hits, inner.misses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mime::summarize;
    use tern_message::fixtures::*;

    #[test]
    fn cache_lru() {
        let cache = SummaryCache::new(2, usize::MAX);
        let g = |n: u8| [n; 20];
        let calls = std::cell::Cell::new(0);
        let make = || {
            calls.set(calls.get() + 1);
            summarize(SIMPLE)
        };
        let a = cache.get_or_insert_with(g(1), make);
        let a2 = cache.get_or_insert_with(g(1), make);
        assert!(Arc::ptr_eq(&a, &a2));
        assert_eq!(calls.get(), 1);
        cache.get_or_insert_with(g(2), make);
        assert!(cache.get(&g(1)).is_some()); // 1 is now the most recent
        cache.get_or_insert_with(g(3), make); // evicts 2
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&g(2)).is_none());
        assert!(cache.get(&g(1)).is_some() && cache.get(&g(3)).is_some());
        cache.remove(&g(1));
        assert_eq!(cache.len(), 1);
        for _ in 0..1000 {
            cache.get(&g(3));
        }
        assert!(cache.lock().order.len() <= 2 + 64);
        cache.clear();
        assert!(cache.is_empty() && cache.bytes() == 0);

        // Byte budget.
        let w = summarize(SIMPLE).weight() + 64;
        let cache = SummaryCache::new(1000, 3 * w);
        for n in 0..10 {
            cache.insert(g(n), Arc::new(summarize(SIMPLE)));
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.bytes(), 3 * w);
        assert!(cache.get(&g(9)).is_some() && cache.get(&g(6)).is_none());
    }

    /// An entry used between every two inserts survives any number of entries used
    /// once; passes over every entry queue nothing (the ring holds each key once).
    #[test]
    fn used_entries_stay_and_passes_queue_nothing() {
        let cache: GuidCache<Vec<u8>> = GuidCache::new(8, usize::MAX);
        let g = |n: u32| {
            let mut k = [0u8; 20];
            k[..4].copy_from_slice(&n.to_be_bytes());
            k
        };
        cache.insert(g(0), Arc::new(vec![0]));
        for n in 1..1000 {
            assert!(cache.get(&g(0)).is_some(), "evicted before insert {n}");
            cache.insert(g(n), Arc::new(vec![1]));
            assert!(cache.len() <= 8);
        }
        for _ in 0..100 {
            let keys: Vec<[u8; 20]> = cache.lock().map.keys().copied().collect();
            assert!(cache.get_many(keys.iter()).iter().all(Option::is_some));
        }
        let inner = cache.lock();
        assert_eq!(inner.order.len(), inner.map.len());
    }

    #[test]
    fn cache_holds_100k_envelopes() {
        let cache = SummaryCache::default();
        let template = summarize(MIXED);
        let parses = std::cell::Cell::new(0u32);
        let guid = |i: u32| {
            let mut g = [0u8; 20];
            g[..4].copy_from_slice(&i.to_be_bytes());
            g
        };
        for round in 0..2 {
            for i in 0..100_000u32 {
                let sum = cache.get_or_insert_with(guid(i), || {
                    parses.set(parses.get() + 1);
                    template.clone()
                });
                assert_eq!(sum.envelope.len(), template.envelope.len());
            }
            assert_eq!(parses.get(), 100_000, "round {round}");
        }
        assert_eq!(cache.len(), 100_000);
    }

    #[test]
    fn cache_threads() {
        let cache = SummaryCache::new(50, usize::MAX);
        let parsed = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for t in 0..4u8 {
                let (cache, parsed) = (&cache, &parsed);
                scope.spawn(move || {
                    for i in 0..2000u32 {
                        let n = ((i * 7 + t as u32) % 40) as u8;
                        let sum = cache.get_or_insert_with([n; 20], || {
                            parsed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            summarize(MIXED)
                        });
                        assert_eq!(sum.keys.from_mailbox.as_deref(), Some("joerg"));
                    }
                });
            }
        });
        assert_eq!(cache.len(), 40);
        // Each of the 40 keys is parsed once, give or take concurrent first misses.
        assert!(parsed.load(std::sync::atomic::Ordering::Relaxed) <= 40 * 4);
        let (hits, misses) = cache.stats();
        assert_eq!(hits + misses, 8000);
    }
}
