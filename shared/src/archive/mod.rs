//! The event archive: every request intake accepted, byte for byte, and every movement the applier applied,
//! as gzip JSON lines under `events/store=<code>/date=<yyyy-mm-dd>/` — the layout the Glue table
//! `event_archive` (template.yaml) projects for Athena.
//!
//! Intake keeps the accepted request on its idempotency record (no extra call on the 2xx path); the table's
//! stream brings completed records and applied-movement markers to the archiver, which writes one object per
//! (store, date) of a stream batch, named after the batch's first stream record. Lambda retries a failed batch
//! from the same record, so a retry replaces the objects of the first try instead of adding to them.

use crate::core::errors::BackendError;
use crate::core::gzip::gzip;
use crate::core::ids::StoreCode;
use crate::core::objects::ReportSink;
use crate::stock::ports::{AcceptedRequest, AppliedMarker, CENTRA_PARTITION};
use crate::telemetry::metrics::{names, Metrics};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What the idempotency table's stream says happened, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchivedChange {
    /// A request intake accepted (its record turned COMPLETED). `key`: the record key
    /// (`store-event#<webhook id>` or `centra-event#<dedupe key>`).
    Accepted {
        key: String,
        request: AcceptedRequest,
    },
    /// The applier applied one movement (`<event id>#<line>`, or a merge's id) to a ledger row.
    Applied {
        movement_id: String,
        marker: AppliedMarker,
    },
    /// A stream record that should be archived but cannot be read: kept as such, never dropped silently.
    Unreadable {
        key: String,
        at_ms: i64,
        reason: String,
    },
}

/// What Lambda sends to a stream event source's on-failure destination (AWS Lambda developer guide,
/// "Retaining records of discarded batches" — field names as documented there).
#[derive(Debug, serde::Deserialize)]
struct ArchiveGapRecord {
    #[serde(rename = "requestContext", default)]
    request_context: serde_json::Value,
    #[serde(rename = "DDBStreamBatchInfo")]
    batch: StreamBatchInfo,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct StreamBatchInfo {
    shard_id: String,
    start_sequence_number: String,
    end_sequence_number: String,
    approximate_arrival_of_first_record: String,
    approximate_arrival_of_last_record: String,
    batch_size: u64,
}

/// A window of the stream the archive lacks: `shelfsync archive backfill --from <first> --to <last>` writes it
/// from the idempotency table (which keeps records 15 days; the stream only 24 hours). Read from the gap
/// queue by `shelfsync dlq list archive` and by the stalled-orders reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchiveGap {
    pub first_record_at: String,
    pub last_record_at: String,
    pub records: u64,
    pub shard_id: String,
    pub sequence_numbers: (String, String),
    /// Why Lambda gave up (`RetryAttemptsExhausted`, `MaximumRecordAgeExceeded`, …).
    pub condition: Option<String>,
}

impl ArchiveGap {
    /// The operator's command that fills this gap.
    pub fn backfill_command(&self) -> String {
        format!(
            "shelfsync archive backfill --from {} --to {}",
            self.first_record_at, self.last_record_at
        )
    }
}

impl From<ArchiveGapRecord> for ArchiveGap {
    fn from(r: ArchiveGapRecord) -> Self {
        ArchiveGap {
            first_record_at: r.batch.approximate_arrival_of_first_record,
            last_record_at: r.batch.approximate_arrival_of_last_record,
            records: r.batch.batch_size,
            shard_id: r.batch.shard_id,
            sequence_numbers: (r.batch.start_sequence_number, r.batch.end_sequence_number),
            condition: r.request_context["condition"].as_str().map(str::to_string),
        }
    }
}

/// An on-failure record of the gap queue, read; the error says what is wrong with one that is not.
pub fn parse_gap(body: &str) -> Result<ArchiveGap, String> {
    serde_json::from_str::<ArchiveGapRecord>(body)
        .map(ArchiveGap::from)
        .map_err(|e| e.to_string())
}

/// The archive's gap queue, as reconciliation reads it: how many gaps wait, and up to `max` of them (each read
/// or why not), left where they are.
#[async_trait::async_trait]
pub trait ArchiveGapSource: Send + Sync {
    async fn peek(
        &self,
        max: usize,
    ) -> Result<(u64, Vec<Result<ArchiveGap, String>>), BackendError>;
}

/// One line of an archive object (one row of the Glue table). Absent fields are left out of the JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ArchiveLine {
    /// `accepted`, `applied` or `unreadable`.
    pub kind: String,
    /// The store event's `webhook-id` (accepted, applied), or Centra's dedupe key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// UTC, RFC 3339 with milliseconds: when intake received the accepted request, or when the movement was
    /// applied.
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_timestamp: Option<String>,
    /// The request body exactly as received: text when it is UTF-8 (every store event is), else base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// `utf8` or `base64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_encoding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub movement_id: Option<String>,
    /// The event's line index (`lines[i]`) a movement came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// The ledger row's item (`sku:<SKU>`): what the movement moved after resolution to a Centra size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An object to write: its key and gzip body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveObject {
    pub key: String,
    /// The lines in it (for logs and metrics).
    pub lines: usize,
    pub gzip: Vec<u8>,
}

/// The partition a line belongs to: an unreadable record whose store is unknown goes to `_unknown`.
const UNKNOWN_PARTITION: &str = "_unknown";

fn timestamp(ms: i64) -> (String, String) {
    let at = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
    (
        at.to_rfc3339_opts(SecondsFormat::Millis, true),
        at.format("%Y-%m-%d").to_string(),
    )
}

/// A store code as a partition value: the mappings' codes are `[A-Za-z0-9_-]`; anything else (a record
/// not written by us) is not trusted into an S3 key.
fn partition_of(store: &str) -> &str {
    if store == CENTRA_PARTITION || StoreCode::parse(store).is_ok() {
        store
    } else {
        UNKNOWN_PARTITION
    }
}

/// The line of one change and the (store, date) partition it belongs to.
pub fn line_of(change: &ArchivedChange) -> (String, String, ArchiveLine) {
    match change {
        ArchivedChange::Accepted { key, request } => {
            let (at, date) = timestamp(request.received_at_ms);
            let event_id = key.split_once('#').map_or(key.as_str(), |(_, id)| id);
            let (body, encoding) = match std::str::from_utf8(&request.body) {
                Ok(text) => (text.to_string(), "utf8"),
                Err(_) => {
                    use base64::Engine;
                    (
                        base64::engine::general_purpose::STANDARD.encode(&request.body),
                        "base64",
                    )
                }
            };
            let line = ArchiveLine {
                kind: "accepted".into(),
                event_id: Some(event_id.to_string()),
                event_type: Some(request.event_type.clone()),
                at,
                webhook_timestamp: request.webhook_timestamp.clone(),
                body: Some(body),
                body_encoding: Some(encoding.into()),
                ..ArchiveLine::default()
            };
            (partition_of(&request.store).to_string(), date, line)
        }
        ArchivedChange::Applied {
            movement_id,
            marker,
        } => {
            let (at, date) = timestamp(marker.applied_at_ms);
            // `<event id>#<line>`; the event id itself may hold '#', the line index never does.
            let (event_id, line) = match movement_id.rsplit_once('#') {
                Some((event, line)) => (Some(event.to_string()), line.parse().ok()),
                None => (None, None),
            };
            let line = ArchiveLine {
                kind: "applied".into(),
                event_id,
                at,
                movement_id: Some(movement_id.clone()),
                line,
                item: Some(marker.item.clone()),
                version: Some(marker.version),
                ..ArchiveLine::default()
            };
            (partition_of(&marker.store).to_string(), date, line)
        }
        ArchivedChange::Unreadable { key, at_ms, reason } => {
            let (at, date) = timestamp(*at_ms);
            let line = ArchiveLine {
                kind: "unreadable".into(),
                event_id: Some(key.clone()),
                at,
                reason: Some(reason.clone()),
                ..ArchiveLine::default()
            };
            (UNKNOWN_PARTITION.to_string(), date, line)
        }
    }
}

/// The objects of one stream batch: one per (store, date), lines in stream order, named
/// `events/store=<store>/date=<date>/<batch id>.json.gz`. The batch id must be the same when the same batch
/// is retried (the id of its first stream record).
pub fn archive_objects(batch_id: &str, changes: &[ArchivedChange]) -> Vec<ArchiveObject> {
    // (store, date) → (JSON lines, how many).
    let mut partitions: BTreeMap<(String, String), (Vec<u8>, usize)> = BTreeMap::new();
    for change in changes {
        let (store, date, line) = line_of(change);
        let (buffer, lines) = partitions.entry((store, date)).or_default();
        serde_json::to_writer(&mut *buffer, &line).expect("an archive line serialises");
        buffer.push(b'\n');
        *lines += 1;
    }
    let batch = sanitize_batch_id(batch_id);
    partitions
        .into_iter()
        .map(|((store, date), (text, lines))| ArchiveObject {
            key: format!("events/store={store}/date={date}/{batch}.json.gz"),
            lines,
            gzip: gzip(&text),
        })
        .collect()
}

/// Stream record ids are hex, but nothing outside `[A-Za-z0-9_-]` goes into a key.
fn sanitize_batch_id(id: &str) -> String {
    let clean: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(96)
        .collect();
    if clean.is_empty() {
        "batch".into()
    } else {
        clean
    }
}

/// The archiver: writes each stream batch's objects to the archive bucket.
pub struct EventArchiver {
    pub sink: Arc<dyn ReportSink>,
    pub metrics: Arc<Metrics>,
}

impl EventArchiver {
    /// Writes a batch's objects; any failure fails the batch (Lambda retries it from its first record, which
    /// rewrites the same keys).
    pub async fn write_batch(
        &self,
        batch_id: &str,
        changes: &[ArchivedChange],
    ) -> Result<Vec<ArchiveObject>, BackendError> {
        let objects = archive_objects(batch_id, changes);
        let writes = objects
            .iter()
            .map(|o| self.sink.put(&o.key, "application/gzip", o.gzip.clone()));
        let failed = futures::future::join_all(writes)
            .await
            .into_iter()
            .find_map(Result::err);
        if let Some(e) = failed {
            self.metrics.count(names::ARCHIVE_WRITE_FAILURES, 1);
            tracing::error!(batch = batch_id, error = %e, "archive batch not written; Lambda retries it");
            return Err(e);
        }
        let unreadable = changes
            .iter()
            .filter(|c| matches!(c, ArchivedChange::Unreadable { .. }))
            .count();
        self.metrics
            .count(names::ARCHIVED_LINES, changes.len() as u64);
        if unreadable > 0 {
            self.metrics
                .count(names::ARCHIVE_UNREADABLE, unreadable as u64);
            tracing::warn!(
                batch = batch_id,
                unreadable,
                "stream records archived as unreadable"
            );
        }
        tracing::info!(
            batch = batch_id,
            lines = changes.len(),
            objects = objects.len(),
            "archive batch written"
        );
        Ok(objects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::gzip::gunzip;

    fn accepted(id: &str, store: &str, at_ms: i64, body: &[u8]) -> ArchivedChange {
        ArchivedChange::Accepted {
            key: format!("store-event#{id}"),
            request: AcceptedRequest {
                store: store.into(),
                event_type: "sale".into(),
                received_at_ms: at_ms,
                webhook_timestamp: Some("1765000000".into()),
                body: body.to_vec(),
            },
        }
    }

    fn lines(object: &ArchiveObject) -> Vec<ArchiveLine> {
        let text = gunzip(&object.gzip, 1 << 20).unwrap();
        text.split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    }

    const DAY1: i64 = 1_765_065_600_000; // 2025-12-07T00:00:00Z

    #[test]
    fn one_object_per_store_and_day_with_the_body_byte_for_byte() {
        let body = br#"{"type":"sale", "store":"LDN-01","lines":[{"sku":"A","quantity":-1}]}"#;
        let changes = vec![
            accepted("ev-1", "LDN-01", DAY1 + 5, body),
            accepted("ev-2", "MAN-02", DAY1 + 6, b"{}"),
            accepted("ev-3", "LDN-01", DAY1 - 1, b"{}"),
            ArchivedChange::Applied {
                movement_id: "ev-1#0".into(),
                marker: AppliedMarker {
                    store: "LDN-01".into(),
                    item: "sku:A".into(),
                    version: 7,
                    applied_at_ms: DAY1 + 40,
                },
            },
        ];
        let objects = archive_objects("shard/0001", &changes);
        let keys: Vec<_> = objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "events/store=LDN-01/date=2025-12-06/shard_0001.json.gz",
                "events/store=LDN-01/date=2025-12-07/shard_0001.json.gz",
                "events/store=MAN-02/date=2025-12-07/shard_0001.json.gz",
            ]
        );
        let day = lines(&objects[1]);
        assert_eq!(day.len(), 2);
        assert_eq!(day[0].body.as_deref().map(str::as_bytes), Some(&body[..]));
        assert_eq!(day[0].at, "2025-12-07T00:00:00.005Z");
        assert_eq!(day[0].event_id.as_deref(), Some("ev-1"));
        assert_eq!(
            (
                day[1].kind.as_str(),
                day[1].event_id.as_deref(),
                day[1].line
            ),
            ("applied", Some("ev-1"), Some(0))
        );
        assert_eq!(objects[1].lines, 2);
    }

    /// Objects by key; refuses keys containing `refuse` (S3 failing part of a batch).
    #[derive(Default)]
    struct Bucket {
        objects: std::sync::Mutex<BTreeMap<String, Vec<u8>>>,
        refuse: Option<&'static str>,
    }

    #[async_trait::async_trait]
    impl ReportSink for Bucket {
        async fn put(&self, key: &str, _: &str, body: Vec<u8>) -> Result<(), BackendError> {
            if self.refuse.is_some_and(|r| key.contains(r)) {
                return Err(BackendError::new("s3", "SlowDown"));
            }
            self.objects.lock().unwrap().insert(key.to_string(), body);
            Ok(())
        }
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
            Ok(self.objects.lock().unwrap().get(key).cloned())
        }
    }

    #[tokio::test]
    async fn a_failed_write_fails_the_whole_batch_and_its_retry_rewrites_the_same_keys() {
        let changes = vec![
            accepted("ev-1", "LDN-01", DAY1, b"{}"),
            accepted("ev-2", "MAN-02", DAY1, b"{}"),
        ];
        let metrics = Arc::new(Metrics::new());
        let failing = EventArchiver {
            sink: Arc::new(Bucket {
                refuse: Some("MAN-02"),
                ..Bucket::default()
            }),
            metrics: metrics.clone(),
        };
        assert!(failing.write_batch("b1", &changes).await.is_err());
        assert_eq!(metrics.total(names::ARCHIVE_WRITE_FAILURES), 1.0);
        assert_eq!(metrics.total(names::ARCHIVED_LINES), 0.0);

        let sink = Arc::new(Bucket::default());
        let archiver = EventArchiver {
            sink: sink.clone(),
            metrics: metrics.clone(),
        };
        let first = archiver.write_batch("b1", &changes).await.unwrap();
        let again = archiver.write_batch("b1", &changes).await.unwrap();
        assert_eq!(first, again);
        assert_eq!(
            sink.objects.lock().unwrap().len(),
            2,
            "the retry replaced, not added"
        );
    }

    #[test]
    fn the_same_batch_gives_the_same_objects() {
        let changes = vec![accepted("ev-1", "LDN-01", DAY1, b"{}")];
        assert_eq!(
            archive_objects("id-1", &changes),
            archive_objects("id-1", &changes)
        );
    }

    #[test]
    fn a_binary_body_is_base64_and_an_odd_store_is_not_a_path() {
        let changes = vec![
            accepted("ev-1", "../x", DAY1, &[0xff, 0x00, 0x41]),
            ArchivedChange::Unreadable {
                key: "store-event#ev-9".into(),
                at_ms: DAY1,
                reason: "body_gz is not gzip".into(),
            },
        ];
        let objects = archive_objects("b", &changes);
        assert_eq!(objects.len(), 1);
        assert_eq!(
            objects[0].key,
            "events/store=_unknown/date=2025-12-07/b.json.gz"
        );
        let lines = lines(&objects[0]);
        assert_eq!(
            (lines[0].body.as_deref(), lines[0].body_encoding.as_deref()),
            (Some("/wBB"), Some("base64"))
        );
        assert_eq!(lines[1].kind, "unreadable");
    }
}
