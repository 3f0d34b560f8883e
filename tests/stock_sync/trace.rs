//! `shelfsync trace` from outside: a signed sale into the real `serve`, then the real `shelfsync trace` binary
//! asking that serve, checked against what the Centra simulator process itself recorded.

use crate::{event, line};
use blackbox::{at, World, WorldConfig};
use serde_json::Value;

fn seconds(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("{rfc3339}: {e}"))
        .timestamp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_event_names_the_push_and_the_centra_change_that_carried_a_sale() {
    let world = World::start(WorldConfig::new(2)).await;
    let size = world.sizes[0].clone();
    // Named by EAN: the trace must show the size intake resolved it to.
    let sale = event(
        "stock.sale",
        "LDN-01",
        &at(1, 0),
        vec![line(&size, 1, 2, true)],
    );
    assert_eq!(world.send("bb-trace-1", &sale).await.status, 202);
    // Polls /ops/status until everything accepted is in Centra.
    world.settle().await;

    let out = world
        .shelfsync(&[
            "trace",
            "event",
            "bb-trace-1",
            "--serve",
            &world.url,
            "--json",
        ])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trace: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(trace["trace"], "event");
    assert_eq!(trace["accepted"]["store"], "LDN-01");
    let first = &trace["lines"][0];
    assert_eq!(first["stage"], "in_centra", "{first}");
    assert_eq!(first["ean"], size.ean.as_str());
    assert_eq!(first["resolved_to"], format!("sku:{}", size.sku).as_str());
    let push = &first["push"];
    let push_id = push["push_id"].as_str().expect("push id");
    let change_id = push["centra_change_id"].as_str().expect("change id");

    let changes = world.centra.stock_changes().await.expect("sim changes");
    let change = changes
        .iter()
        .find(|c| c.comment.contains(&format!("push {push_id}/")))
        .expect("the simulator holds a change from that push");
    assert_eq!(change_id, change.id.to_string());
    assert_eq!(push["warehouse_id"], world.warehouse("LDN-01"));
    assert!(change
        .lines
        .iter()
        .any(|l| l.sku == size.sku && l.delivered_quantity == 2));
    assert_eq!(
        seconds(push["centra_change_at"].as_str().expect("Centra's time")),
        change.created_at.timestamp()
    );

    // The same trace for a person names the same push and change.
    let text = world
        .shelfsync(&["trace", "event", "bb-trace-1", "--serve", &world.url])
        .await;
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(push_id), "{text}");
    assert!(
        text.contains(&format!("Centra stock change {change_id}")),
        "{text}"
    );
}
