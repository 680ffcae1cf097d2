//! Random identifiers: UIDs, name suffixes and passwords, from the OS random source.

/// `N` random bytes. Falls back to a time-and-counter mix if the OS source fails (never for secrets
/// in practice: getrandom only fails on exotic platforms).
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    if getrandom::fill(&mut buf).is_err() {
        use sha2::Digest;
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let seed = format!(
            "{:?}{n}{}",
            std::time::SystemTime::now(),
            std::process::id()
        );
        let d = sha2::Sha256::digest(seed.as_bytes());
        for (i, b) in buf.iter_mut().enumerate() {
            *b = d[i % d.len()];
        }
    }
    buf
}

/// A Kubernetes-style UID (UUID v4 text form).
pub fn uid() -> String {
    let mut b = bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A name suffix like the ones controllers generate (`x7k2p`): lowercase consonants and digits.
pub fn suffix(len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let raw = bytes::<32>();
    raw.iter()
        .take(len)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_look_like_uuids_and_differ() {
        let a = uid();
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
        assert_ne!(a, uid());
        assert_eq!(suffix(5).len(), 5);
    }
}
