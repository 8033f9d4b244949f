//! The benchmark's input records: a seeded generator of page-view records,
//! each a JSON object of about 200 bytes that depends on its id alone (so
//! any record can be regenerated for checks). Shared by the Kafka bench
//! (`tests/bench/`, through [`crate::data`]) and the engine bench
//! (`benches/engine.rs`, which includes this file by path), so it needs
//! nothing but serde_json.
//!
//! `{"id": n, "user": "u<k>", "page": "/product/<m>", "status": 200 | 404,
//! "ts": ms, "price": 123.45, "ua": "<user agent, padded to ~200 bytes>"}`,
//! about 20% with status 404; key: the user; partition: `id % 8`; `ts`
//! advances 3 ms per id with up to 1 s of jitter.

use serde_json::json;

/// Partitions of the input topic (and of every output topic).
pub const PARTITIONS: i32 = 8;

/// Distinct pages of the input (`/product/0` … `/product/9999`).
pub const PAGES: u64 = 10_000;
/// `ts` of record 0 before its jitter, ms: 2026-01-01T00:00:00Z.
pub const BASE_TS_MS: u64 = 1_767_225_600_000;
/// `ts` advances this many ms per id (before the jitter of up to 1 s).
pub const TS_STEP_MS: u64 = 3;

const SEED: u64 = 0x7765_6972_6265_6e63; // "weirbenc"
const USER_AGENTS: [&str; 3] = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0 (padding to a realistic record size)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15 (padding to a realistic record size)",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 (padding to a realistic record size)",
];

/// SplitMix64: a tiny, good-enough seeded mixer.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One input record.
#[derive(Debug, Clone)]
pub struct Input {
    /// Input partition.
    pub partition: i32,
    /// Kafka key (the user).
    pub key: String,
    /// `status` is 200 (the filter of (2) and (4) keeps it).
    pub ok: bool,
    /// The JSON payload.
    pub payload: Vec<u8>,
}

/// Record `id`, always the same for the same id.
pub fn record(id: u64) -> Input {
    let r1 = mix(SEED ^ id);
    let r2 = mix(r1);
    let user = format!("u{}", r1 % 50_000);
    let ok = (r1 >> 20) % 100 >= 20;
    let v = json!({
        "id": id,
        "user": user,
        "page": format!("/product/{}", (r1 >> 32) % PAGES),
        "status": if ok { 200 } else { 404 },
        "ts": BASE_TS_MS + id * TS_STEP_MS + (r2 >> 54),
        "price": (r2 % 100_000) as f64 / 100.0,
    });
    let mut payload = serde_json::to_vec(&v).expect("JSON of a record");
    // `,"ua":"…"}` in place of the closing brace, to 190–210 bytes in all.
    let target = 190 + (r2 >> 40) as usize % 21;
    let ua = USER_AGENTS[(r2 >> 32) as usize % USER_AGENTS.len()];
    let room = target.saturating_sub(payload.len() + 8).min(ua.len());
    payload.pop();
    payload.extend_from_slice(b",\"ua\":\"");
    payload.extend_from_slice(&ua.as_bytes()[..room]);
    payload.extend_from_slice(b"\"}");
    Input {
        partition: (id % PARTITIONS as u64) as i32,
        key: user,
        ok,
        payload,
    }
}
