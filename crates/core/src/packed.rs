//! How a store keeps a record's JSON: as it is when short, deflated when that is shorter.
//!
//! DynamoDB bills a write one unit per KB of the item and a strongly consistent read one unit per
//! 4 KB, so the bytes of a body are what an alert costs. An alert written with the effects it owes
//! is about 4 KB of JSON and 1.2 KB deflated; an alert alone 1.5 KB and 0.8 KB (the field names
//! and the alert's words repeat). AWS's own advice for large attributes is to compress them
//! ("Best practices for storing large items and attributes"). A body shorter than [`PACK_FROM`]
//! (a dedup claim, a group member) is kept as text: it is one unit either way, and stays readable in
//! the console.
//!
//! A packed body is one format byte ([`DEFLATE`]: raw DEFLATE, RFC 1951) and the deflated JSON. The
//! store writes it as a binary attribute and reads either kind, so items written before packing read
//! as they did. `tocsin_local::Faults` measures what the DynamoDB store writes with
//! [`stored_len`], so the writes bench counts the same bytes.

/// The shortest JSON worth deflating.
pub const PACK_FROM: usize = 512;

/// The format byte of a raw-DEFLATE body.
pub const DEFLATE: u8 = 1;

/// The most a packed body may unpack to: more than DynamoDB's 400 KB item holds even deflated, so
/// a corrupt body cannot make a reader allocate without bound.
const MAX_UNPACKED: usize = 16 * 1024 * 1024;

/// Deflation level: miniz's default (6), within a few per cent of the best on bodies this small.
const LEVEL: u8 = 6;

/// `json` packed, when it is at least [`PACK_FROM`] bytes and packing makes it shorter.
pub fn pack(json: &str) -> Option<Vec<u8>> {
    if json.len() < PACK_FROM {
        return None;
    }
    let mut out = Vec::with_capacity(json.len() / 2);
    out.push(DEFLATE);
    out.extend(miniz_oxide::deflate::compress_to_vec(
        json.as_bytes(),
        LEVEL,
    ));
    (out.len() < json.len()).then_some(out)
}

/// The JSON of a packed body, or why it cannot be read (one line).
pub fn unpack(bytes: &[u8]) -> Result<String, String> {
    match bytes.split_first() {
        Some((&DEFLATE, deflated)) => {
            let raw = miniz_oxide::inflate::decompress_to_vec_with_limit(deflated, MAX_UNPACKED)
                .map_err(|e| format!("packed body does not inflate: {:?}", e.status))?;
            String::from_utf8(raw).map_err(|_| "packed body is not UTF-8".to_string())
        }
        Some((other, _)) => Err(format!("packed body has unknown format byte {other}")),
        None => Err("packed body is empty".to_string()),
    }
}

/// The bytes the store writes for `json`: packed or as it is.
pub fn stored_len(json: &str) -> usize {
    pack(json).map_or(json.len(), |p| p.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_body_stays_text_and_a_long_one_comes_back_whole() {
        assert_eq!(pack(r#"{"event_id":"e1","status":"completed"}"#), None);
        let long = serde_json::json!({
            "audit": (0..20).map(|i| serde_json::json!({
                "action": "notify", "reason": format!("alert opened; route critical {i}"),
                "channel": "oncall-sms", "target": "carol", "text": "<b>&amp; \u{2192} ✓"
            })).collect::<Vec<_>>()
        })
        .to_string();
        let packed = pack(&long).unwrap();
        assert_eq!(packed[0], DEFLATE);
        assert!(
            packed.len() * 3 < long.len(),
            "{} of {}",
            packed.len(),
            long.len()
        );
        assert_eq!(unpack(&packed).unwrap(), long);
        assert_eq!(stored_len(&long), packed.len());
    }

    #[test]
    fn a_body_that_does_not_shrink_stays_text() {
        // 600 bytes of hex: deflate cannot take a byte in three off it plus its own framing.
        let noise: String = (0..600u32)
            .map(|i| char::from_digit((i.wrapping_mul(2_654_435_761) >> 28) % 16, 16).unwrap())
            .collect();
        let json = serde_json::json!(noise).to_string();
        if let Some(p) = pack(&json) {
            assert!(p.len() < json.len());
        } else {
            assert_eq!(stored_len(&json), json.len());
        }
    }

    #[test]
    fn a_corrupt_or_unknown_body_is_a_one_line_reason_not_a_panic() {
        assert!(unpack(&[]).unwrap_err().contains("empty"));
        assert!(unpack(&[9, 1, 2]).unwrap_err().contains("format byte 9"));
        assert!(
            unpack(&[DEFLATE, 0xff, 0xff, 0xff])
                .unwrap_err()
                .contains("inflate")
        );
        let not_utf8 = {
            let mut v = vec![DEFLATE];
            v.extend(miniz_oxide::deflate::compress_to_vec(&[0xc3, 0x28], 6));
            v
        };
        assert!(unpack(&not_utf8).unwrap_err().contains("UTF-8"));
    }
}
