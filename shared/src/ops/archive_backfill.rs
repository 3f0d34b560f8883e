//! `shelfsync archive backfill --from … --to …`: fills a gap of the event archive from the idempotency table.
//!
//! The stream keeps records 24 hours, the table 15 days: a batch the archiver could not write (its position is
//! in the gap queue, `shelfsync dlq list archive`) is rebuilt from the completed intake records received and the
//! movements applied in the window. The objects are named after the window, so running the same backfill twice
//! writes the same objects once. Lines of the window that the archive already holds (another shard's batches)
//! appear twice in the archive; the Athena queries of the operating manual count each event id once.

use crate::adapters::aws::archive_stream::change_of_item;
use crate::adapters::aws::attrs::{n, s, scan_all};
use crate::archive::{archive_objects, ArchiveObject, ArchivedChange};
use crate::core::errors::BackendError;
use crate::recon::ports::ReportSink;
use aws_sdk_dynamodb::Client;

/// What a backfill found in the window (and wrote, unless a dry run).
#[derive(Debug, Default, serde::Serialize)]
pub struct BackfillReport {
    pub accepted: usize,
    pub applied: usize,
    pub unreadable: usize,
    pub objects: Vec<String>,
    pub dry_run: bool,
}

/// Every archivable record of the window: completed intake records by `received_at_ms`, markers by
/// `applied_at_ms` (a filtered Scan: the table has no index by time, and a backfill is rare).
pub async fn changes_in_window(
    client: &Client,
    table: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<ArchivedChange>, BackendError> {
    let items = scan_all(
        client
            .scan()
            .table_name(table)
            .filter_expression(
                "(#status = :completed AND #received BETWEEN :from AND :to) \
                 OR (begins_with(#id, :applied) AND #applied_at BETWEEN :from AND :to)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#received", "received_at_ms")
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#applied_at", "applied_at_ms")
            .expression_attribute_values(":completed", s("COMPLETED"))
            .expression_attribute_values(":applied", s("applied#"))
            .expression_attribute_values(":from", n(from_ms))
            .expression_attribute_values(":to", n(to_ms)),
    )
    .await?;
    let mut changes: Vec<ArchivedChange> = items
        .iter()
        .filter_map(|item| change_of_item(item, from_ms))
        .collect();
    // Stream order is time order: received / applied time, then key, so a rerun writes identical objects.
    changes.sort_by_key(|c| match c {
        ArchivedChange::Accepted { key, request } => (request.received_at_ms, key.clone()),
        ArchivedChange::Applied {
            movement_id,
            marker,
        } => (marker.applied_at_ms, movement_id.clone()),
        ArchivedChange::Unreadable { key, at_ms, .. } => (*at_ms, key.clone()),
    });
    Ok(changes)
}

/// Rebuilds the window's archive objects (`backfill-<from>-<to>` in each store and day) and writes them unless
/// `dry_run`.
pub async fn backfill(
    client: &Client,
    table: &str,
    sink: &dyn ReportSink,
    from_ms: i64,
    to_ms: i64,
    dry_run: bool,
) -> Result<BackfillReport, BackendError> {
    let changes = changes_in_window(client, table, from_ms, to_ms).await?;
    let mut report = BackfillReport {
        dry_run,
        ..Default::default()
    };
    for c in &changes {
        match c {
            ArchivedChange::Accepted { .. } => report.accepted += 1,
            ArchivedChange::Applied { .. } => report.applied += 1,
            ArchivedChange::Unreadable { .. } => report.unreadable += 1,
        }
    }
    let objects: Vec<ArchiveObject> =
        archive_objects(&format!("backfill-{from_ms}-{to_ms}"), &changes);
    for object in &objects {
        if !dry_run {
            sink.put(&object.key, "application/gzip", object.gzip.clone())
                .await?;
        }
        report.objects.push(object.key.clone());
    }
    Ok(report)
}
