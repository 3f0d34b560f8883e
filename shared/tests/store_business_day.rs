//! A store's finance business day from its mapping: `timezone` (IANA), `closes_at` (local `HH:MM`) and
//! `finance_posting`, parsed strictly, and the business date / closing instant across DST changes.

use chrono::NaiveDate;
use shared::config::mappings::{FinancePosting, Mappings, StoreMapping};

fn store(extra: &str) -> Result<StoreMapping, String> {
    Mappings::from_toml(&format!(
        "[stores.LDN-01]\ncentra_warehouse_id = 12\ncloudshelf_location = \"gid://x/12\"\ncurrency = \"GBP\"\n{extra}\n"
    ))
    .map(|m| m.store("LDN-01").unwrap().clone())
    .map_err(|e| e.to_string())
}

fn ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

#[test]
fn defaults_are_utc_closing_at_22_and_realtime_posting() {
    let s = store("").unwrap();
    assert_eq!(s.timezone, chrono_tz::UTC);
    assert_eq!(s.closes_at.to_string(), "22:00:00");
    assert_eq!(s.finance_posting, FinancePosting::Realtime);
    assert_eq!(
        s.close_instant(date(2026, 11, 28)).to_rfc3339(),
        "2026-11-28T22:00:00+00:00"
    );
    let daily = store("finance_posting = \"daily\"").unwrap();
    assert_eq!(daily.finance_posting, FinancePosting::Daily);
}

#[test]
fn bad_values_name_the_field() {
    for (extra, field) in [
        ("timezone = \"Europe/Londn\"", "stores.LDN-01.timezone"),
        ("timezone = \"+01:00\"", "stores.LDN-01.timezone"),
        ("closes_at = \"9:00\"", "stores.LDN-01.closes_at"),
        ("closes_at = \"21:00:00\"", "stores.LDN-01.closes_at"),
        ("closes_at = \"24:00\"", "stores.LDN-01.closes_at"),
        ("closes_at = \"21:60\"", "stores.LDN-01.closes_at"),
        ("closes_at = \" 21:00\"", "stores.LDN-01.closes_at"),
        ("finance_posting = \"weekly\"", "finance_posting"),
    ] {
        let err = store(extra).expect_err(extra);
        assert!(err.contains(field), "{extra}: {err}");
    }
    assert_eq!(
        store("closes_at = \"00:00\"")
            .unwrap()
            .closes_at
            .to_string(),
        "00:00:00"
    );
}

#[test]
fn a_sale_after_closing_time_still_belongs_to_that_local_date() {
    let ldn = store("timezone = \"Europe/London\"\ncloses_at = \"21:00\"").unwrap();
    // 23:30 BST on 14 July is 22:30 UTC: after close, still the 14th.
    assert_eq!(
        ldn.business_date(ms("2026-07-14T22:30:00Z")),
        date(2026, 7, 14)
    );
    // 00:30 BST on the 15th is 23:30 UTC on the 14th: already the 15th locally.
    assert_eq!(
        ldn.business_date(ms("2026-07-14T23:30:00Z")),
        date(2026, 7, 15)
    );
    // East of UTC the local date starts the evening before in UTC.
    let syd = store("timezone = \"Australia/Sydney\"").unwrap();
    assert_eq!(
        syd.business_date(ms("2026-11-28T13:30:00Z")),
        date(2026, 11, 29)
    );
    let kol = store("timezone = \"Asia/Kolkata\"\ncloses_at = \"22:00\"").unwrap();
    assert_eq!(
        kol.close_instant(date(2026, 11, 28)).to_rfc3339(),
        "2026-11-28T16:30:00+00:00"
    );
}

#[test]
fn closing_instants_follow_the_dst_changes() {
    let ldn = store("timezone = \"Europe/London\"\ncloses_at = \"21:00\"").unwrap();
    // Clocks go forward on 29 March 2026: the day before closes at 21:00 GMT, that day at 21:00 BST.
    assert_eq!(
        ldn.close_instant(date(2026, 3, 28)).to_rfc3339(),
        "2026-03-28T21:00:00+00:00"
    );
    assert_eq!(
        ldn.close_instant(date(2026, 3, 29)).to_rfc3339(),
        "2026-03-29T20:00:00+00:00"
    );
    // The 23-hour day: 00:30 GMT and 23:30 BST are both on the 29th.
    assert_eq!(
        ldn.business_date(ms("2026-03-29T00:30:00Z")),
        date(2026, 3, 29)
    );
    assert_eq!(
        ldn.business_date(ms("2026-03-29T22:30:00Z")),
        date(2026, 3, 29)
    );
    assert_eq!(
        ldn.business_date(ms("2026-03-29T23:30:00Z")),
        date(2026, 3, 30)
    );
    // Clocks go back on 25 October 2026.
    assert_eq!(
        ldn.close_instant(date(2026, 10, 25)).to_rfc3339(),
        "2026-10-25T21:00:00+00:00"
    );

    // A night shop closing inside the change: 01:30 does not exist in London on 29 March (closes at the end of the
    // gap, 02:00 BST) and happens twice on 25 October (closes at the second one, when the day is over).
    let night = store("timezone = \"Europe/London\"\ncloses_at = \"01:30\"").unwrap();
    assert_eq!(
        night.close_instant(date(2026, 3, 29)).to_rfc3339(),
        "2026-03-29T01:00:00+00:00"
    );
    assert_eq!(
        night.close_instant(date(2026, 10, 25)).to_rfc3339(),
        "2026-10-25T01:30:00+00:00"
    );
    assert_eq!(
        night.close_instant(date(2026, 10, 24)).to_rfc3339(),
        "2026-10-24T00:30:00+00:00"
    );
}

#[test]
fn the_last_closed_day_turns_at_the_local_closing_time() {
    let ny = store("timezone = \"America/New_York\"\ncloses_at = \"21:00\"").unwrap();
    // 8 March 2026 (US clocks forward): close at 21:00 EDT = 01:00 UTC on the 9th.
    assert_eq!(
        ny.last_closed_date(ms("2026-03-09T00:59:00Z")),
        date(2026, 3, 7)
    );
    assert_eq!(
        ny.last_closed_date(ms("2026-03-09T01:00:00Z")),
        date(2026, 3, 8)
    );
}
