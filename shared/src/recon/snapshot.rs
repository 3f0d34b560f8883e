//! One store's ledger in compact form, for comparing it with Centra's stock pages.
//!
//! Memory bound: only one store is held at a time. `LedgerStore::list_store` returns the store's full rows
//! (transiently about 0.5 KB each with their pending/recent movement lists); they are folded at once into
//! [`SnapshotRow`]s of roughly 100–150 bytes with the SKU/EAN index, so 20,000 SKUs take about 3 MB and the
//! largest store decides the peak, not the catalogue.

use crate::core::ids::ItemRef;
use crate::stock::ledger::LedgerRow;
use base64::Engine;
use std::collections::HashMap;

/// How the job treats a ledger row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowStatus {
    /// Centra holds everything the ledger knows: compare.
    Comparable,
    /// Movements not yet in Centra (or a push holding the row): a difference is in flight, not drift.
    InFlight,
    /// Parked after Centra refused it; an exception record says why.
    Blocked,
    /// Deltas only, no count: the ledger knows changes, not a level.
    Unanchored,
    /// Last touched before the run's `since`.
    OutsideWindow,
}

/// The status of a row and, when comparable, the quantity Centra should hold.
///
/// Centra cannot hold negative physical stock (a count followed by more sales than counted is pushed as 0),
/// so a negative ledger level is compared as 0.
pub fn classify(row: &LedgerRow, since_ms: Option<i64>, now_ms: i64) -> (RowStatus, i64) {
    if since_ms.is_some_and(|since| row.updated_at_ms < since) {
        return (RowStatus::OutsideWindow, 0);
    }
    if row.blocked.is_some() {
        return (RowStatus::Blocked, 0);
    }
    if row.has_unpushed() || row.lease_active(now_ms) {
        return (RowStatus::InFlight, 0);
    }
    match row.store_quantity() {
        Some(q) => (RowStatus::Comparable, q.max(0)),
        None => (RowStatus::Unanchored, 0),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRow {
    pub item: ItemRef,
    /// The row's revision when loaded: a finding is re-read and kept only if it is unchanged.
    pub rev: u64,
    pub status: RowStatus,
    /// Comparable rows: what Centra should hold.
    pub believed: i64,
}

/// One store's ledger, sorted by item, indexed by SKU and by EAN (a ledger row is keyed by whichever the store
/// sent; Centra lists both).
#[derive(Debug, Default)]
pub struct StoreSnapshot {
    rows: Vec<SnapshotRow>,
    by_sku: HashMap<Box<str>, u32>,
    by_ean: HashMap<Box<str>, u32>,
    fingerprint: u64,
}

impl StoreSnapshot {
    pub fn build(rows: Vec<LedgerRow>, since_ms: Option<i64>, now_ms: i64) -> Self {
        let mut compact: Vec<SnapshotRow> = rows
            .into_iter()
            .map(|row| {
                let (status, believed) = classify(&row, since_ms, now_ms);
                SnapshotRow {
                    rev: row.rev,
                    status,
                    believed,
                    item: row.item,
                }
            })
            .collect();
        compact.sort_by(|a, b| a.item.cmp(&b.item));
        compact.shrink_to_fit();
        let mut by_sku = HashMap::new();
        let mut by_ean = HashMap::new();
        let mut fingerprint = Fnv::new();
        for (i, row) in compact.iter().enumerate() {
            fingerprint.write(row.item.key().as_bytes());
            let index = match &row.item {
                ItemRef::Sku(_) => &mut by_sku,
                ItemRef::Ean(_) => &mut by_ean,
            };
            index.insert(Box::from(row.item.value()), i as u32);
        }
        Self {
            rows: compact,
            by_sku,
            by_ean,
            fingerprint: fingerprint.finish(),
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn row(&self, index: u32) -> &SnapshotRow {
        &self.rows[index as usize]
    }

    pub fn rows(&self) -> impl Iterator<Item = (u32, &SnapshotRow)> {
        self.rows.iter().enumerate().map(|(i, r)| (i as u32, r))
    }

    /// The ledger row a Centra stock row stands for: by SKU, else by EAN.
    pub fn find(&self, sku: &str, ean: Option<&str>) -> Option<u32> {
        self.by_sku
            .get(sku)
            .or_else(|| ean.and_then(|e| self.by_ean.get(e)))
            .copied()
    }

    /// Changes when a row is added (rows are never removed): a resumed store whose ledger changed starts over,
    /// because [`SeenRows`] positions would no longer line up.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint ^ (self.rows.len() as u64).rotate_left(32)
    }
}

/// FNV-1a: stable across builds (the fingerprint is compared across invocations and deployments).
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes.iter().chain(std::iter::once(&0xff)) {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Which snapshot rows Centra listed so far: one bit per row (2.5 KB for 20,000 rows), kept in the checkpoint
/// so a resumed store neither counts a row twice (offset pages can repeat a row when Centra's list shifts)
/// nor forgets which rows are still unlisted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeenRows(Vec<u64>);

impl SeenRows {
    pub fn new(rows: usize) -> Self {
        SeenRows(vec![0; rows.div_ceil(64)])
    }

    /// Marks `index`; false if it was marked before.
    pub fn insert(&mut self, index: u32) -> bool {
        let (word, bit) = ((index / 64) as usize, index % 64);
        if word >= self.0.len() {
            self.0.resize(word + 1, 0);
        }
        let before = self.0[word];
        self.0[word] |= 1 << bit;
        before != self.0[word]
    }

    pub fn contains(&self, index: u32) -> bool {
        let (word, bit) = ((index / 64) as usize, index % 64);
        self.0.get(word).is_some_and(|w| w & (1 << bit) != 0)
    }

    pub fn encode(&self) -> String {
        let bytes: Vec<u8> = self.0.iter().flat_map(|w| w.to_le_bytes()).collect();
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
    }

    pub fn decode(text: &str) -> Option<Self> {
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(text)
            .ok()?;
        if bytes.len() % 8 != 0 {
            return None;
        }
        Some(SeenRows(
            bytes
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::{EventPosition, StoreCode};

    fn row(item: ItemRef, count: Option<i64>, delta: i64) -> LedgerRow {
        let mut r = LedgerRow::new(StoreCode::parse("LDN-01").unwrap(), item);
        r.rev = 3;
        r.count_qty = count;
        r.count_pushed = true;
        r.delta_applied = delta;
        r.delta_pushed = delta;
        r.last_count = count.map(|_| EventPosition {
            occurred_at_ms: 1,
            sequence: None,
        });
        r.updated_at_ms = 100;
        r
    }

    #[test]
    fn classifies_and_finds_by_sku_or_ean() {
        let mut unpushed = row(ItemRef::Sku("B".into()), Some(5), 0);
        unpushed.delta_applied = -1;
        let mut blocked = row(ItemRef::Sku("C".into()), Some(5), 0);
        blocked.blocked = Some("unknown SKU".into());
        let snap = StoreSnapshot::build(
            vec![
                row(ItemRef::Sku("A".into()), Some(5), -7),
                unpushed,
                blocked,
                row(ItemRef::Sku("D".into()), None, -2),
                row(ItemRef::Ean("7350000000012".into()), Some(4), 1),
            ],
            None,
            0,
        );
        let status = |sku: &str, ean: Option<&str>| {
            let r = snap.row(snap.find(sku, ean).unwrap());
            (r.status, r.believed)
        };
        assert_eq!(
            status("A", None),
            (RowStatus::Comparable, 0),
            "negative floored"
        );
        assert_eq!(status("B", None).0, RowStatus::InFlight);
        assert_eq!(status("C", None).0, RowStatus::Blocked);
        assert_eq!(status("D", None).0, RowStatus::Unanchored);
        assert_eq!(
            status("X-1", Some("7350000000012")),
            (RowStatus::Comparable, 5)
        );
        assert!(snap.find("X-2", Some("1")).is_none());

        let windowed = StoreSnapshot::build(
            vec![row(ItemRef::Sku("A".into()), Some(5), 0)],
            Some(101),
            0,
        );
        assert_eq!(windowed.row(0).status, RowStatus::OutsideWindow);
    }

    #[test]
    fn fingerprint_changes_when_a_row_is_added() {
        let a = StoreSnapshot::build(vec![row(ItemRef::Sku("A".into()), Some(1), 0)], None, 0);
        let same = StoreSnapshot::build(vec![row(ItemRef::Sku("A".into()), Some(9), 0)], None, 0);
        let more = StoreSnapshot::build(
            vec![
                row(ItemRef::Sku("A".into()), Some(1), 0),
                row(ItemRef::Sku("B".into()), Some(1), 0),
            ],
            None,
            0,
        );
        assert_eq!(a.fingerprint(), same.fingerprint());
        assert_ne!(a.fingerprint(), more.fingerprint());
    }

    #[test]
    fn seen_rows_round_trip() {
        let mut seen = SeenRows::new(130);
        assert!(seen.insert(0));
        assert!(seen.insert(129));
        assert!(!seen.insert(129));
        let back = SeenRows::decode(&seen.encode()).unwrap();
        assert!(back.contains(0) && back.contains(129) && !back.contains(64));
        assert_eq!(back, seen);
    }
}
