//! Record material prepared before the clock starts, so that building a record
//! during the run is a few copies, never hashing: a pool of seed-style strings
//! (a SHA-512 hex digest of a random number, repeated to the string length)
//! and the field names. Every put still gets its own random doubles, its own
//! pick of strings and a fresh `collection_time`.

use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ringstore::{Record, Value};
use sha2::{Digest, Sha512};

/// Distinct strings in the pool: enough that two records rarely share their
/// string fields, small enough to prepare in milliseconds.
const POOL_STRINGS: usize = 1024;

/// String fields redrawn from the pool at every put (the others keep their
/// previous pick): enough to vary the content, cheap enough not to matter.
pub const STRINGS_PER_PUT: usize = 4;

/// SplitMix64: a tiny, fast, seedable generator; statistical quality is
/// plenty for picking keys and filling payloads.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `stream` of run seed `seed` (each thread its own).
    pub fn new(seed: u64, stream: u64) -> Rng {
        let mut rng = Rng(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
        rng.next_u64();
        rng
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0), without modulo bias worth measuring.
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The shape of every record.
#[derive(Debug, Clone, Copy)]
pub struct PayloadSpec {
    /// Float fields (`metricdbl1..`).
    pub doubles: usize,
    /// String fields (`metricstr1..`).
    pub strings: usize,
    /// Characters per string field.
    pub string_len: usize,
}

/// Prepared material for records of one shape.
#[derive(Debug)]
pub struct Payload {
    double_names: Vec<String>,
    string_names: Vec<String>,
    pool: Vec<String>,
    /// Time spent preparing the pool.
    pub prepare_time: Duration,
}

impl Payload {
    /// Prepares the string pool and field names for `spec`.
    pub fn prepare(spec: PayloadSpec, seed: u64) -> Payload {
        let started = Instant::now();
        let mut rng = Rng::new(seed, u64::MAX);
        let pool_len = if spec.strings == 0 { 0 } else { POOL_STRINGS };
        let pool = (0..pool_len)
            .map(|_| digest_string(rng.next_u64(), spec.string_len))
            .collect();
        Payload {
            double_names: (1..=spec.doubles)
                .map(|i| format!("metricdbl{i}"))
                .collect(),
            string_names: (1..=spec.strings)
                .map(|i| format!("metricstr{i}"))
                .collect(),
            pool,
            prepare_time: started.elapsed(),
        }
    }

    /// Strings in the pool.
    pub fn pool_len(&self) -> usize {
        self.pool.len()
    }

    /// Complete records to reuse, built before the clock starts: a writer
    /// keeps a few and refreshes one per put, so the run pays for a few
    /// copies instead of a hundred fresh fields.
    pub fn records(&self, rng: &mut Rng, count: usize) -> Vec<Record> {
        (0..count)
            .map(|_| {
                let mut record = Record::new();
                self.refresh(&mut record, "", rng, self.string_names.len());
                record
            })
            .collect()
    }

    /// Bytes of one record of this shape as serialized for a put (rkyv,
    /// as the store and the seed design write it), with a version and a
    /// key of the workload's form.
    pub fn serialized_bytes(&self, seed: u64) -> usize {
        let mut record = Record::new();
        self.refresh(
            &mut record,
            "sensor0",
            &mut Rng::new(seed, 0),
            self.string_names.len(),
        );
        record.insert("collection_time", Value::Int(0));
        rkyv::to_bytes::<rkyv::rancor::Error>(&record).map_or(0, |bytes| bytes.len())
    }

    /// Makes `record` a fresh record for `key`: new `id`, every double
    /// redrawn, and `strings` of the string fields (from a random start)
    /// redrawn from the pool. The caller sets `collection_time` right before
    /// the put.
    pub fn refresh(&self, record: &mut Record, key: &str, rng: &mut Rng, strings: usize) {
        record.insert("id", key);
        for name in &self.double_names {
            record.insert(name.as_str(), Value::Float(rng.next_f64() * 1000.0));
        }
        let fields = self.string_names.len();
        let first = rng.below(fields.max(1));
        for i in 0..strings.min(fields) {
            let Some(name) = self.string_names.get((first + i) % fields) else {
                continue;
            };
            let pick = self.pool.get(rng.below(self.pool.len().max(1)));
            record.insert(name.as_str(), Value::Str(pick.cloned().unwrap_or_default()));
        }
    }
}

/// The version of a record written now: nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The seed's string: the hex SHA-512 of `n`, repeated to `len` characters.
fn digest_string(n: u64, len: usize) -> String {
    let digest = Sha512::digest(n.to_string().as_bytes());
    let mut hex = String::with_capacity(128);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex.chars().cycle().take(len).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_repeated_digests_of_the_requested_length() {
        let s = digest_string(7, 2048);
        assert_eq!(s.len(), 2048);
        assert_eq!(&s[..128], &s[128..256]);
        assert!(s.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(digest_string(7, 5).len(), 5);
    }

    #[test]
    fn records_have_the_seed_shape() {
        let spec = PayloadSpec {
            doubles: 50,
            strings: 50,
            string_len: 2048,
        };
        let payload = Payload::prepare(spec, 1);
        let mut rng = Rng::new(1, 0);
        let mut records = payload.records(&mut rng, 2);
        let record = records.first_mut().unwrap();
        let before = record.clone();
        payload.refresh(record, "sensor3", &mut rng, STRINGS_PER_PUT);
        assert_eq!(record.len(), 101);
        assert_ne!(record.get("metricdbl1"), before.get("metricdbl1"));
        assert_eq!(record.get("id"), Some(&Value::Str("sensor3".into())));
        assert!(matches!(record.get("metricdbl50"), Some(Value::Float(_))));
        let Some(Value::Str(s)) = record.get("metricstr50") else {
            panic!("metricstr50 missing");
        };
        assert_eq!(s.len(), 2048);
    }

    #[test]
    fn below_stays_in_range_and_same_seed_replays() {
        let mut a = Rng::new(9, 3);
        let mut b = Rng::new(9, 3);
        for _ in 0..1000 {
            let x = a.below(200);
            assert!(x < 200);
            assert_eq!(x, b.below(200));
        }
    }
}
