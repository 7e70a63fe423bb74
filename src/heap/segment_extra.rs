//! The +ust stack of a segment-heap allocation (reference §6.9).
//!
//! When the stack-trace interceptor is on, the segment heap asks it for room and stores an
//! `_SEGMENT_HEAP_EXTRA` in the allocation's unused tail, followed by the interceptor's data: the
//! pointer to the allocation's `RtlpHeapStackTraceLog` record. The allocation says so with its
//! ExtraPresent bit (0x4000 in the last-u16 unused-bytes info of VS and LFH blocks, bit 0 of
//! `ExtraPresent` in a back-end range's first descriptor or a large allocation's node).
//!
//! `_SEGMENT_HEAP_EXTRA` (x64 0x10 bytes, x86 8): AllocationTag u16 +0, InterceptorIndex (low 4
//! bits) +2, ExtraSizeInUnits u8 +3, Settable (pointer) +8 / +4. The stack interceptor is index 1
//! (the same index the NT heap's +ust prefix names, §5.2) and its data is one unit. Where in the tail
//! the extra sits is not documented, so the tail is searched for it, as the one public reader does:
//! InterceptorIndex 1, ExtraSizeInUnits ≥ 1, the rest of the header zero, and a non-null,
//! pointer-aligned pointer right after it. The stacks layer still checks that the pointer leads to
//! a record.

use crate::dump::memory::AddressSpace;

/// The stack-trace interceptor's index.
const STACK_INTERCEPTOR: u8 = 1;

/// The trace record pointer stored in the tail `[start, end)` of an allocation of a `bits`-bit
/// segment heap that has ExtraPresent set; 0 when none is found.
pub fn tail_trace(mem: &AddressSpace<'_>, start: u64, end: u64, bits: u32) -> u64 {
    let ptr = (bits / 8) as usize;
    let header = 2 * ptr;
    let Some(len) = end.checked_sub(start) else {
        return 0;
    };
    // A tail never exceeds one large allocation's unused count (16 bits).
    if len < (header + ptr) as u64 || len > 0x1_0000 {
        return 0;
    }
    let Ok(tail) = mem.read(start, len as usize) else {
        return 0;
    };
    find(&tail, ptr)
}

/// The first pointer after an `_SEGMENT_HEAP_EXTRA` of the stack interceptor in `tail`.
fn find(tail: &[u8], ptr: usize) -> u64 {
    let header = 2 * ptr;
    let Some(last) = tail.len().checked_sub(header + ptr) else {
        return 0;
    };
    for at in 0..=last {
        let h = &tail[at..at + header];
        if h[2] & 0x0f != STACK_INTERCEPTOR || h[3] == 0 || h[4..].iter().any(|&b| b != 0) {
            continue;
        }
        let mut v = [0u8; 8];
        v[..ptr].copy_from_slice(&tail[at + header..at + header + ptr]);
        let record = u64::from_le_bytes(v);
        if record != 0 && record % ptr as u64 == 0 {
            return record;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::find;

    fn extra(ptr: usize, record: u64) -> Vec<u8> {
        let mut v = vec![0u8; 2 * ptr];
        v[0] = 0x34; // an allocation tag: not part of the test
        v[2] = 1;
        v[3] = 1;
        v.extend_from_slice(&record.to_le_bytes()[..ptr]);
        v
    }

    #[test]
    fn finds_the_pointer_after_the_extra_anywhere_in_the_tail() {
        for ptr in [4usize, 8] {
            for lead in [0usize, 3, 8, 13] {
                let mut tail = vec![0xaau8; lead];
                tail.extend(extra(ptr, 0x1234_5670));
                tail.extend([0u8; 6]);
                assert_eq!(find(&tail, ptr), 0x1234_5670, "ptr {ptr} lead {lead}");
            }
        }
    }

    #[test]
    fn rejects_other_interceptors_settable_values_and_odd_pointers() {
        let mut t = extra(8, 0x1000);
        t[2] = 2;
        assert_eq!(find(&t, 8), 0);
        let mut t = extra(8, 0x1000);
        t[9] = 1; // Settable set
        assert_eq!(find(&t, 8), 0);
        assert_eq!(find(&extra(8, 0x1001), 8), 0);
        assert_eq!(find(&extra(8, 0), 8), 0);
        assert_eq!(find(&extra(8, 0x1000)[..20], 8), 0);
        assert_eq!(find(&[], 8), 0);
    }
}
