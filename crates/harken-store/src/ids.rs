//! Identifiers and hashes: prefixed, time-sortable ids (ULID layout) and SHA-256 hex.

use std::sync::Mutex;

use rand::RngCore;
use sha2::{Digest, Sha256};

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// `prefix_` + 26 Crockford base32 characters: 48 bits of Unix milliseconds then 80 random bits,
/// so ids sort by creation time and never collide in practice. Within one process ids are also
/// strictly increasing (ULID's monotonic mode: in the same millisecond the random part counts up),
/// so tasks created in a burst are claimed in the order they were created.
///
/// ```
/// let id = harken_store::new_id("task");
/// assert!(id.starts_with("task_") && id.len() == 5 + 26);
/// ```
pub fn new_id(prefix: &str) -> String {
    static LAST: Mutex<u128> = Mutex::new(0);
    let ms = crate::clock::Clock::now_ms(&crate::SystemClock) as u128 & ((1 << 48) - 1);
    let mut random = [0u8; 10];
    rand::thread_rng().fill_bytes(&mut random);
    let mut value: u128 = ms << 80;
    for (i, b) in random.iter().enumerate() {
        value |= (*b as u128) << (8 * (9 - i));
    }
    let value = {
        let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
        if value <= *last {
            value = *last + 1; // same millisecond (or the clock stepped back): count up
        }
        *last = value;
        value
    };
    let mut out = String::with_capacity(prefix.len() + 27);
    out.push_str(prefix);
    out.push('_');
    for i in (0..26).rev() {
        out.push(CROCKFORD[((value >> (5 * i)) & 31) as usize] as char);
    }
    out
}

/// A new API key secret: `hk_` + 32 random bytes in hex.
pub(crate) fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("hk_{}", hex(&bytes))
}

/// Lower-case hex SHA-256 of `s`.
pub fn sha256_hex(s: &str) -> String {
    hex(&Sha256::digest(s.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_differ() {
        let a = new_id("task");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id("task");
        assert!(a < b, "{a} sorts before {b}");
        let burst: Vec<String> = (0..1000).map(|_| new_id("task")).collect();
        assert!(burst.windows(2).all(|w| w[0] < w[1]), "strictly increasing within a millisecond");
        assert_ne!(new_id("x"), new_id("x"));
    }

    #[test]
    fn sha256_is_hex() {
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
