//! gzip in and out: archive objects, and bodies too large to keep as text on an idempotency record.

use std::io::{Read, Write};

/// Compresses `bytes` as one gzip member. Level 6: archive objects are written once and read by Athena
/// many times; intake only compresses bodies over [`INLINE_BODY_LIMIT`].
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 3 + 64),
        flate2::Compression::default(),
    );
    encoder
        .write_all(bytes)
        .expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

/// Decompresses gzip (every member), refusing output beyond `limit` bytes: a stored body is at most the
/// intake's 256 KiB, so anything larger is not ours.
pub fn gunzip(bytes: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("not gzip: {e}"))?;
    if out.len() > limit {
        return Err(format!("gzip expands beyond {limit} bytes"));
    }
    Ok(out)
}

/// Bodies up to this size are stored as text: compressing a small body costs intake more CPU than the
/// bytes it saves (a 2-line event is ~400 bytes, one DynamoDB write unit either way).
pub const INLINE_BODY_LIMIT: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_limit() {
        let body = br#"{"lines":[{"sku":"A","quantity":1}]}"#.repeat(200);
        let packed = gzip(&body);
        assert!(packed.len() < body.len() / 10);
        assert_eq!(gunzip(&packed, body.len()).unwrap(), body);
        assert!(gunzip(&packed, body.len() - 1)
            .unwrap_err()
            .contains("beyond"));
        assert!(gunzip(b"plain", 100).unwrap_err().starts_with("not gzip"));
    }
}
