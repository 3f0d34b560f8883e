//! The operator commands from outside: the real `shelfsync` binary against the real `serve`, over HTTP.

use blackbox::{World, WorldConfig};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_ask_a_running_serve_and_name_what_it_does_not_keep() {
    let world = World::start(WorldConfig::new(1)).await;
    let out = world
        .shelfsync(&["dlq", "list", "stock", "--serve", &world.url, "--json"])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(
        (listed["queue"].as_str(), listed["count"].as_u64()),
        (Some("stock"), Some(0))
    );

    let out = world
        .shelfsync(&[
            "dlq", "redrive", "stock", "--serve", &world.url, "--by", "alice",
        ])
        .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("moved 0 message(s)") && text.contains("alice"),
        "{text}"
    );

    let out = world
        .shelfsync(&["dlq", "list", "stock-push", "--serve", &world.url])
        .await;
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && error.contains("serve keeps no stock-push DLQ"),
        "{error}"
    );
}
