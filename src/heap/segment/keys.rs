//! A segment heap's keys: `HeapKey` (page-segment signatures, VS chunk headers) and `LfhKey` (LFH
//! subsegment offsets), from `RtlpHpHeapGlobals` in ntdll's data (reference §6.4, §11.1–§11.3).
//!
//! `HeapKey` follows exactly from any page segment's signature under the build's scheme; the
//! scheme is the one whose key every segment agrees on and ntdll's data holds. That copy is
//! `RtlpHpHeapGlobals.HeapKey`, and `LfhKey` is the pointer after it (1709: before it). With
//! ntdll's PDB the globals' address is known and checked against the signatures.

use super::PageSegment;
use crate::dump::memory::AddressSpace;
use crate::layout::segment_heap::{SegmentHeapLayout, SegmentShape};

/// `0xA2E64EADA2E64EAD`, the page-segment signature constant (Windows 10 1709 – 11 23H2).
const SIGNATURE_KEY: u64 = 0xa2e6_4ead_a2e6_4ead;

/// How a page segment's signature encodes the heap key (reference §6.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// Windows 10 1709 – 11 23H2: `sig = seg ^ ctx ^ HeapKey ^ 0xA2E64EADA2E64EAD`.
    Classic,
    /// Windows 11 24H2 (26100+): `sig = seg ^ ctx ^ HeapKey`.
    NoConstant,
    /// Seen in one other build: `sig = ctx ^ HeapKey ^ (seg >> 20) ^ 0xA2E64EADA2E64EAD`.
    ShiftedSegment,
}

impl Scheme {
    const ALL: [Scheme; 3] = [Scheme::Classic, Scheme::NoConstant, Scheme::ShiftedSegment];

    /// The heap key a signature implies.
    pub fn key(self, sig: u64, ctx: u64, seg: u64) -> u64 {
        match self {
            Scheme::Classic => sig ^ ctx ^ seg ^ SIGNATURE_KEY,
            Scheme::NoConstant => sig ^ ctx ^ seg,
            Scheme::ShiftedSegment => sig ^ ctx ^ (seg >> 20) ^ SIGNATURE_KEY,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Scheme::Classic => "1709–23H2",
            Scheme::NoConstant => "24H2 (no constant)",
            Scheme::ShiftedSegment => "shifted-segment",
        }
    }
}

/// The keys of one heap.
#[derive(Clone, Copy, Debug)]
pub struct Keys {
    /// The signature scheme (24H2's also selects 24H2's LFH rules).
    pub scheme: Scheme,
    /// `HeapKey` (pointer-sized).
    pub heap: u64,
    /// `LfhKey`, when found.
    pub lfh: Option<u64>,
}

/// Where the keys may come from.
pub struct Sources {
    /// The world's ntdll `[base, end)`.
    pub ntdll: Option<(u64, u64)>,
    /// `RtlpHpHeapGlobals` from ntdll's PDB.
    pub globals: Option<u64>,
}

/// Recover the keys; notes say where they came from, an `Err` why there are none.
pub fn recover(
    mem: &AddressSpace<'_>,
    segments: &[PageSegment],
    l: &SegmentHeapLayout,
    o: &SegmentShape,
    src: &Sources,
    notes: &mut Vec<String>,
) -> Result<Keys, (u64, String)> {
    let signatures: Vec<(u64, u64, u64)> = segments
        .iter()
        .filter_map(|s| {
            mem.read_ptr(s.address.wrapping_add(o.signature), o.bits)
                .ok()
                .map(|sig| (sig, s.context, s.address))
        })
        .collect();
    let Some(&(_, _, seg0)) = signatures.first() else {
        return Err((
            0,
            "no page segment is captured, so the heap key cannot be recovered".into(),
        ));
    };
    let search = Search {
        mem,
        signatures: &signatures,
        o,
        lfh_key_after: l.lfh_key_after,
    };
    let found = src
        .globals
        .and_then(|g| search.pdb_keys(g, notes))
        .or_else(|| search.in_ntdll(src.ntdll?));
    let keys =
        match found.or_else(|| search.classic_without_lfh()) {
            Some(k) => k,
            None => return Err((
                seg0,
                "the page segments' signatures do not agree on a heap key under any known scheme"
                    .into(),
            )),
        };
    if keys.scheme != Scheme::Classic {
        notes.push(format!(
            "page segment signatures use the {} scheme",
            keys.scheme.name()
        ));
    }
    if keys.lfh.is_none() {
        notes.push(
            "RtlpHpHeapGlobals was not found in ntdll's captured data: LFH subsegments are not decoded"
                .into(),
        );
    }
    Ok(keys)
}

/// The page segments' signatures `(sig, context, segment)` and where `LfhKey` lies.
struct Search<'a, 'm> {
    mem: &'a AddressSpace<'m>,
    signatures: &'a [(u64, u64, u64)],
    o: &'a SegmentShape,
    lfh_key_after: bool,
}

impl Search<'_, '_> {
    /// The heap key every signature implies under scheme `s`, if they agree.
    fn agreed(&self, s: Scheme) -> Option<u64> {
        let mask = self.o.mask();
        let &(sig, ctx, seg) = self.signatures.first()?;
        let key = s.key(sig, ctx, seg) & mask;
        self.signatures
            .iter()
            .all(|&(sig, ctx, seg)| s.key(sig, ctx, seg) & mask == key)
            .then_some(key)
    }

    /// `LfhKey`, next to the `HeapKey` at `heap_key_at` (after it; 1709: before it).
    fn lfh_at(&self, heap_key_at: u64) -> Option<u64> {
        let p = u64::from(self.o.bits / 8);
        let at = if self.lfh_key_after {
            heap_key_at.wrapping_add(p)
        } else {
            heap_key_at.wrapping_sub(p)
        };
        self.mem.read_ptr(at, self.o.bits).ok()
    }

    /// The keys at `RtlpHpHeapGlobals` (`g`, from ntdll's PDB), when they match the signatures;
    /// which of its first two pointers is HeapKey the signatures tell (1709 keeps LfhKey first).
    fn pdb_keys(&self, g: u64, notes: &mut Vec<String>) -> Option<Keys> {
        let p = u64::from(self.o.bits / 8);
        let found = Scheme::ALL.into_iter().find_map(|s| {
            let key = self.agreed(s)?;
            [g, g.wrapping_add(p)]
                .into_iter()
                .find(|&at| self.mem.read_ptr(at, self.o.bits).ok() == Some(key))
                .map(|at| (s, key, at))
        });
        match found {
            Some((scheme, heap, at)) => {
                notes.push("heap keys read from RtlpHpHeapGlobals (ntdll's PDB)".into());
                Some(Keys {
                    scheme,
                    heap,
                    lfh: self.lfh_at(at),
                })
            }
            None => {
                notes.push(format!(
                    "RtlpHpHeapGlobals at {g:#x} (from ntdll's PDB) is not captured or does not match the page segments' signatures; searching ntdll's data instead"
                ));
                None
            }
        }
    }

    /// The scheme whose key ntdll's data `[base, end)` holds, and `LfhKey` beside it.
    fn in_ntdll(&self, ntdll: (u64, u64)) -> Option<Keys> {
        Scheme::ALL.iter().find_map(|&s| {
            let key = self.agreed(s)?;
            let at = find_key(self.mem, ntdll, key, self.o.bits)?;
            Some(Keys {
                scheme: s,
                heap: key,
                lfh: self.lfh_at(at),
            })
        })
    }

    /// Without ntdll's data: the classic scheme's key, and no `LfhKey`.
    fn classic_without_lfh(&self) -> Option<Keys> {
        self.agreed(Scheme::Classic).map(|heap| Keys {
            scheme: Scheme::Classic,
            heap,
            lfh: None,
        })
    }
}

/// The address of the first aligned copy of `key` in ntdll's captured memory `[base, end)`.
fn find_key(mem: &AddressSpace<'_>, (base, end): (u64, u64), key: u64, bits: u32) -> Option<u64> {
    // Windows draws the key at random; a zero "key" would match any zero word.
    if key == 0 {
        return None;
    }
    let w = (bits / 8) as usize;
    let needle = &key.to_le_bytes()[..w];
    for r in mem.ranges() {
        let (start, stop) = (r.base.max(base), r.end().min(end));
        if start >= stop {
            continue;
        }
        let bytes = mem.read(start, (stop - start) as usize).ok()?;
        let mut at = ((w as u64 - (start % w as u64)) % w as u64) as usize;
        while at + w <= bytes.len() {
            if &bytes[at..at + w] == needle {
                return Some(start + at as u64);
            }
            at += w;
        }
    }
    None
}
