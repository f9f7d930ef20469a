//! The one check behind every "given twice" rule of the file: two nodes with one name,
//! one serial listed twice in `authorized`, two `[dns]` entries for one name. A rule feeds
//! each use of a key in file order; the first use is remembered, and every later use gets
//! the first one back so that its problem can name both lines.

use std::collections::HashMap;
use std::hash::Hash;

/// The first use of each key seen so far, with what a problem about a repeat needs to
/// know of it (a span, a label, the entry itself).
pub(super) struct FirstSeen<K, V> {
    first: HashMap<K, V>,
}

impl<K: Eq + Hash, V> FirstSeen<K, V> {
    pub(super) fn new() -> Self {
        FirstSeen {
            first: HashMap::new(),
        }
    }

    /// The first use of `key` when it was seen before (which stays the first); otherwise
    /// `None`, and `first` is remembered as its first use.
    pub(super) fn repeat(&mut self, key: K, first: V) -> Option<&V> {
        match self.first.entry(key) {
            std::collections::hash_map::Entry::Occupied(seen) => Some(seen.into_mut()),
            std::collections::hash_map::Entry::Vacant(unseen) => {
                unseen.insert(first);
                None
            }
        }
    }

    /// Remembers `first` as the use of `key` unless one is remembered already: for uses that
    /// later ones must not repeat but that are not checked themselves.
    pub(super) fn note(&mut self, key: K, first: V) {
        self.first.entry(key).or_insert(first);
    }

    /// Whether `key` was seen.
    pub(super) fn contains(&self, key: &K) -> bool {
        self.first.contains_key(key)
    }
}
