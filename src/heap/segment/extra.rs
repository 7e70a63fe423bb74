//! The +ust stack of a segment-heap allocation (reference §6.9, observed on real Windows 10 19041
//! code for every front end, and on 1709 – Server 2022 per §11.3).
//!
//! When the stack-trace interceptor is on, the segment heap stores an `_SEGMENT_HEAP_EXTRA` right
//! after the requested bytes rounded up (to 16 bytes on x64, 8 on x86), followed by the
//! interceptor's data, the pointer to the allocation's trace record:
//!
//! ```text
//! +0 u16 AllocatorBackTraceIndex (0)   +2 InterceptorIndex (low nibble, 1)   +3 u8 ExtraSizeInUnits (1)
//! +8/+4 Settable (0)                   +0x10/+0x08 the trace record pointer
//! ```
//!
//! The allocation says so with its ExtraPresent bit (0x4000 in the last-u16 unused-bytes info of
//! VS and LFH blocks, bit 0 of a back-end range's descriptor byte +8, bit 0 of a large
//! allocation's page word). The requested size already excludes the extra (the unused count
//! includes it), so its place is exact; the stacks layer still checks that the pointer leads to a
//! record.

use crate::dump::memory::AddressSpace;
use crate::layout::segment_heap::SegmentShape;

/// The stack-trace interceptor's index.
const STACK_INTERCEPTOR: u8 = 1;

/// The trace record pointer of the allocation at `user` with `requested` bytes, whose
/// ExtraPresent bit is set; 0 when its extra is not there or not the stack interceptor's.
pub fn trace(mem: &AddressSpace<'_>, o: &SegmentShape, user: u64, requested: u64) -> u64 {
    let at = user.wrapping_add(requested.div_ceil(o.extra_align) * o.extra_align);
    match mem.read(at, o.extra as usize) {
        Ok(b) => parse(&b, (o.bits / 8) as usize),
        Err(_) => 0,
    }
}

/// The record pointer in an extra `b` (header of two pointers, then the pointer).
fn parse(b: &[u8], ptr: usize) -> u64 {
    let header = 2 * ptr;
    if b.len() < header + ptr
        || b[2] & 0x0f != STACK_INTERCEPTOR
        || b[3] == 0
        || b[4..header].iter().any(|&x| x != 0)
    {
        return 0;
    }
    let mut v = [0u8; 8];
    v[..ptr].copy_from_slice(&b[header..header + ptr]);
    let record = u64::from_le_bytes(v);
    if record % ptr as u64 == 0 {
        record
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    /// The bytes the real 19041 code wrote after a 1,200,000-byte x64 back-end block (§6.9).
    #[test]
    fn reads_the_record_after_the_header() {
        let mut b = vec![0u8, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        b.extend(0x01f5_a182_2370_u64.to_le_bytes());
        b.extend([0u8; 8]);
        assert_eq!(parse(&b, 8), 0x01f5_a182_2370);
        let mut x86 = vec![0u8, 0, 1, 1, 0, 0, 0, 0];
        x86.extend(0x00a2_2370u32.to_le_bytes());
        x86.extend([0u8; 4]);
        assert_eq!(parse(&x86, 4), 0x00a2_2370);
    }

    #[test]
    fn rejects_other_interceptors_settable_values_and_odd_pointers() {
        let extra = |record: u64| {
            let mut v = vec![0u8, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            v.extend(record.to_le_bytes());
            v
        };
        let mut t = extra(0x1000);
        t[2] = 2;
        assert_eq!(parse(&t, 8), 0);
        let mut t = extra(0x1000);
        t[9] = 1; // Settable set
        assert_eq!(parse(&t, 8), 0);
        assert_eq!(parse(&extra(0x1001), 8), 0);
        assert_eq!(parse(&extra(0), 8), 0);
        assert_eq!(parse(&extra(0x1000)[..20], 8), 0);
        assert_eq!(parse(&[], 8), 0);
    }
}
