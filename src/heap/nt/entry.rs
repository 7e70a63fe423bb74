//! `_HEAP_ENTRY` decoding (reference §2.3–§2.6).
//!
//! The 8 meaningful header bytes are at the block start on x86 and at +8 on x64 (the first 8 bytes
//! of an x64 header belong to the previous block's data). When `_HEAP.EncodeFlagMask` is set they
//! are XOR-ed with `_HEAP.Encoding`; after decoding, `SmallTagIndex` is the XOR of the first three
//! bytes, which is how a header proves itself.

/// A decoded `_HEAP_ENTRY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// `Size` in heap units.
    pub size: u16,
    /// `Flags`.
    pub flags: u8,
    /// `SmallTagIndex` (the checksum on encoded heaps).
    pub small_tag: u8,
    /// `PreviousSize` in heap units.
    pub previous_size: u16,
    /// `SegmentOffset` / `LFHFlags`.
    pub segment_offset: u8,
    /// `UnusedBytes`.
    pub unused: u8,
}

impl Entry {
    /// Parse 8 decoded header bytes.
    pub fn parse(b: [u8; 8]) -> Entry {
        Entry {
            size: u16::from_le_bytes([b[0], b[1]]),
            flags: b[2],
            small_tag: b[3],
            previous_size: u16::from_le_bytes([b[4], b[5]]),
            segment_offset: b[6],
            unused: b[7],
        }
    }

    /// Whether the checksum holds: `SmallTagIndex == Size.lo ^ Size.hi ^ Flags`.
    pub fn checksum_ok(&self) -> bool {
        let [lo, hi] = self.size.to_le_bytes();
        lo ^ hi ^ self.flags == self.small_tag
    }
}

/// Decodes headers of one heap.
#[derive(Clone, Copy, Debug)]
pub struct Decoder {
    /// The XOR key (`_HEAP.Encoding`'s 8 meaningful bytes), `None` when the heap does not encode.
    pub key: Option<[u8; 8]>,
    /// Offset of the 8 meaningful bytes inside a header: 8 on x64, 0 on x86.
    pub offset: u64,
}

impl Decoder {
    /// Decode 8 raw header bytes.
    pub fn decode(&self, raw: [u8; 8]) -> Entry {
        let mut b = raw;
        if let Some(k) = self.key {
            for (x, y) in b.iter_mut().zip(k) {
                *x ^= y;
            }
        }
        Entry::parse(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_worked_example_decodes() {
        // Reference §2.4: x86 header bytes 87 73 f5 64 5d b9 00 18 decode (with that heap's
        // encoding) to a 0x118-byte block with 0x18 unused bytes. The key is not in the reference;
        // it is whatever turns Size into 0x23 units and UnusedBytes into 0x18, with a valid checksum.
        let raw = [0x87, 0x73, 0xf5, 0x64, 0x5d, 0xb9, 0x00, 0x18];
        let plain = [0x23, 0x00, 0x01, 0x22, 0x00, 0x00, 0x00, 0x18];
        let mut key = [0u8; 8];
        for i in 0..8 {
            key[i] = raw[i] ^ plain[i];
        }
        let d = Decoder {
            key: Some(key),
            offset: 0,
        };
        let e = d.decode(raw);
        assert_eq!((e.size, e.flags, e.unused), (0x23, 1, 0x18));
        assert!(e.checksum_ok());
        assert_eq!(u64::from(e.size) * 8 - u64::from(e.unused), 0x100);
    }

    #[test]
    fn checksum_rejects_a_flipped_bit() {
        let e = Entry::parse([0x23, 0x00, 0x01, 0x22, 0, 0, 0, 0x18]);
        assert!(e.checksum_ok());
        let e = Entry::parse([0x23, 0x00, 0x03, 0x22, 0, 0, 0, 0x18]);
        assert!(!e.checksum_ok());
    }
}
