//! Where a busy block's user data starts and how many bytes were requested: the plain cases, the
//! `UnusedBytes` overflow, and the +ust prefix (reference §2.6, §5.3, §11).
//!
//! A +ust block (flag 0x40 in `UnusedBytes`) has a prefix between its header and its user data:
//! the trace record pointer, a heap pointer, (x64) 8 bytes of padding, and an 8-byte pseudo header
//! whose last two bytes are `02 05` (EntryOffset 2, ExtendedBlockSignature 5) and whose bytes 4–5
//! hold the block's total unused byte count. The marker, not the global flag, decides.

use crate::dump::memory::AddressSpace;
use crate::layout::nt_heap::NtHeapLayout;

/// `UnusedBytes` bit: an extended (+ust) header follows.
const UNUSED_EXTRA: u8 = 0x40;
/// `UnusedBytes` low bits all set: the real count is stored at the end of the block.
const UNUSED_OVERFLOW: u8 = 0x3f;

/// The +ust prefix starting at `data` (right after a block's header): (user address, unused count,
/// trace pointer), when the pseudo header's marker is there.
fn prefix(mem: &AddressSpace<'_>, l: &NtHeapLayout, data: u64) -> Option<(u64, u64, u64)> {
    let pseudo = data.wrapping_add(l.ust_prefix() - 8);
    let b = mem.read(pseudo, 8).ok()?;
    if b[6] != 2 || b[7] != 5 {
        return None;
    }
    let unused = u64::from(u16::from_le_bytes([b[4], b[5]]));
    let trace = mem.read_ptr(data, l.bits).ok()?;
    Some((data + l.ust_prefix(), unused, trace))
}

/// User address, requested size and trace pointer of a busy back-end block or LFH chunk whose
/// header is at `header`, `size` bytes long (the chunk stride for LFH), with `unused` the header's
/// UnusedBytes byte.
pub fn user_data(
    mem: &AddressSpace<'_>,
    l: &NtHeapLayout,
    header: u64,
    size: u64,
    unused: u8,
) -> (u64, u64, u64) {
    let data = header + l.unit;
    if unused & UNUSED_EXTRA != 0 {
        if let Some((user, unused_len, trace)) = prefix(mem, l, data) {
            return (user, size.saturating_sub(unused_len), trace);
        }
    }
    let count = unused & UNUSED_OVERFLOW;
    let unused = if count == UNUSED_OVERFLOW {
        // The count is kept in the last pointer-sized word of the usable area: on x64 the first
        // 8 bytes of the next header, on x86 the 4 bytes before it.
        // If it cannot be read, the capacity is the best bound there is.
        let at = if l.bits == 64 {
            header + size
        } else {
            header + size - 4
        };
        mem.read_ptr(at, l.bits)
            .ok()
            .filter(|&v| v <= size)
            .unwrap_or(l.unit)
    } else {
        u64::from(count)
    };
    (data, size.saturating_sub(unused), 0)
}

/// User address, requested size and trace pointer of a VirtualAlloc'd block at `entry` with
/// `commit` bytes committed, `unused` the BusyBlock's unused count and `flag` its UnusedBytes byte;
/// `heap_traced` when the heap's `Interceptor` is set.
///
/// The real heap leaves `UnusedBytes` 0x04 (no 0x40 bit) in a traced large block's BusyBlock
/// although the prefix is there (reference §11, §11.1; seen on every large block of the real
/// Windows 7 and 10 19041 code): on a traced heap the pseudo header's marker decides.
pub fn large_user_data(
    mem: &AddressSpace<'_>,
    l: &NtHeapLayout,
    entry: u64,
    commit: u64,
    unused: u64,
    flag: u8,
    heap_traced: bool,
) -> (u64, u64, u64) {
    let data = entry + l.vae_size;
    let traced = if flag & UNUSED_EXTRA != 0 || heap_traced {
        prefix(mem, l, data).filter(|&(_, unused_len, _)| unused_len <= commit + l.ust_prefix())
    } else {
        None
    };
    if let Some((user, unused_len, trace)) = traced {
        return (
            user,
            (commit + l.ust_prefix()).saturating_sub(unused_len),
            trace,
        );
    }
    (data, commit.saturating_sub(unused), 0)
}
