//! A fast hasher for integer keys (addresses, sizes), for the maps built over millions of blocks.
//! Not resistant to adversarial keys; the keys come from one dump and a map of them degrades to
//! slower, never to wrong.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Multiply-rotate hashing of the written words (the scheme of rustc's FxHasher).
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

const K: u64 = 0x517c_c1b7_2722_0a95;

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(K);
    }

    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }

    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` with [`FastHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;
/// A `HashSet` with [`FastHasher`].
pub type FastSet<K> = HashSet<K, BuildHasherDefault<FastHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_work_and_spread_keys() {
        let mut m: FastMap<(u32, u64), u64> = FastMap::default();
        for i in 0..1000u64 {
            *m.entry((64, i * 0x10)).or_default() += i;
        }
        assert_eq!(m.len(), 1000);
        assert_eq!(m[&(64, 0x20)], 2);
        let mut h1 = FastHasher::default();
        h1.write_u64(0x10);
        let mut h2 = FastHasher::default();
        h2.write_u64(0x20);
        assert_ne!(h1.finish(), h2.finish());
    }
}
