//! API keys: `sl_live_` + 43 random base62 characters (256 bits) + a 6-character base62
//! CRC-32 checksum.
//!
//! The checksum lets a mistyped or truncated key be refused before any lookup, and lets
//! secret scanners recognise real keys. Keys are stored only as their SHA-256 hash: they carry
//! full entropy, so a slow password hash would add cost without adding safety.

use sha2::{Digest, Sha256};

pub const PREFIX: &str = "sl_live_";
const RANDOM_CHARS: usize = 43;
const CHECKSUM_CHARS: usize = 6;
/// How many characters of a key are shown in lists to tell keys apart.
const DISPLAY_CHARS: usize = PREFIX.len() + 8;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A freshly generated key. The secret leaves the server once, in the creation answer.
#[derive(Debug)]
pub struct GeneratedKey {
    pub secret: String,
    pub display_prefix: String,
    pub hash: String,
}

/// Generates a new key.
pub fn generate() -> Result<GeneratedKey, getrandom::Error> {
    let mut secret = String::with_capacity(PREFIX.len() + RANDOM_CHARS + CHECKSUM_CHARS);
    secret.push_str(PREFIX);
    let mut buffer = [0u8; 64];
    while secret.len() < PREFIX.len() + RANDOM_CHARS {
        getrandom::fill(&mut buffer)?;
        for byte in buffer {
            // 248 = 4 × 62: rejecting larger bytes keeps every character equally likely.
            if byte < 248 && secret.len() < PREFIX.len() + RANDOM_CHARS {
                secret.push(char::from(BASE62[usize::from(byte % 62)]));
            }
        }
    }
    secret.push_str(&checksum(&secret));
    Ok(GeneratedKey {
        display_prefix: secret[..DISPLAY_CHARS].to_owned(),
        hash: hash(&secret),
        secret,
    })
}

/// Whether `candidate` has the shape of a key and a checksum that matches. Cheap: no lookup.
pub fn is_well_formed(candidate: &str) -> bool {
    let expected_len = PREFIX.len() + RANDOM_CHARS + CHECKSUM_CHARS;
    if candidate.len() != expected_len
        || !candidate.starts_with(PREFIX)
        || !candidate[PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
    {
        return false;
    }
    let (body, sum) = candidate.split_at(expected_len - CHECKSUM_CHARS);
    checksum(body) == sum
}

/// The stored form of a key: hex SHA-256.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn checksum(body: &str) -> String {
    let mut value = crc32fast::hash(body.as_bytes());
    let mut out = [b'0'; CHECKSUM_CHARS];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_well_formed_and_distinct() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.secret.len(), 8 + 43 + 6);
        assert!(is_well_formed(&a.secret));
        assert!(a.secret.starts_with(&a.display_prefix));
        assert_eq!(a.hash, hash(&a.secret));
        assert_eq!(a.hash.len(), 64);
    }

    #[test]
    fn one_changed_character_breaks_the_checksum() {
        let key = generate().unwrap().secret;
        for position in PREFIX.len()..key.len() {
            let mut bytes = key.clone().into_bytes();
            bytes[position] = if bytes[position] == b'x' { b'y' } else { b'x' };
            let changed = String::from_utf8(bytes).unwrap();
            assert!(!is_well_formed(&changed), "changed at {position}");
        }
        assert!(!is_well_formed(&key[..key.len() - 1]));
        assert!(!is_well_formed("sl_live_"));
    }
}
