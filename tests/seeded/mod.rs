//! A seeded pseudo-random generator for the property tests (PCG-style LCG;
//! the same seed gives the same cases on every machine).

/// Linear congruential generator (Knuth's MMIX constants), high bits out.
pub struct Rng(pub u64);

impl Rng {
    /// The next 31 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// One element of `v`.
    #[allow(dead_code)]
    pub fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len() as u64) as usize]
    }
}

/// Decodes a JSON `payload` as the record at `offset` of partition 0 of
/// topic `in`, the way the runtime does.
#[allow(dead_code)]
pub fn decode(plan: &weir::plan::Plan, payload: &str, offset: i64) -> weir::record::Record {
    plan.decoder
        .decode(
            weir::codec::RawMessage {
                key: None,
                payload: Some(payload.as_bytes()),
                timestamp: 0,
            },
            weir::record::Origin {
                topic: std::sync::Arc::from("in"),
                partition: 0,
                offset,
            },
        )
        .expect("generated records decode")
}

/// The base seed of a property test: the environment variable `var` when
/// set to a number, else `default`.
#[allow(dead_code)]
pub fn base_seed(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
