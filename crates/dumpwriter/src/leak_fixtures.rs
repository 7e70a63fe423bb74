//! The reachability fixtures (`leaks-*.dmp`): object graphs ([`crate::graph`]) whose reachable
//! objects, roots of garbage and retained bytes are stated here, by construction, beside the
//! graph that makes them so.

use crate::graph::{GraphHeap, Pointer, Slot, Target};
use crate::minidump::MinidumpBuilder;
use crate::process::{Facts, Kind, ProcessBuilder, Windows};

/// What a graph fixture's reachability must come out as.
pub struct Answer {
    /// The unreachable objects (indices into `Facts::objects`).
    pub unreachable: &'static [usize],
    /// The roots of garbage: their objects (a cycle has several) and the requested bytes they
    /// alone keep alive, their own included.
    pub roots: &'static [(&'static [usize], u64)],
    /// Unreachable objects that several roots of garbage keep (retained by none).
    pub shared: &'static [usize],
}

/// Pointer of `width` bytes at `at` to object `to` plus `off`.
const fn p(at: Slot, to: usize, off: u64, width: u32) -> Pointer {
    Pointer {
        at,
        to: Target::Into(to, off),
        width,
    }
}

/// `leaks-win10-x64.dmp`: the objects (requested size, +ust stack: 0 for kept objects, 1 for
/// leaked ones) and what each is.
const X64_OBJECTS: &[(u64, usize)] = &[
    (0x40, 0),  // 0 A0: on thread 0's live stack
    (0x40, 0),  // 1 A1: A0+0x8 points to it
    (0x30, 0),  // 2 A2: A1+0x10 points 0x20 into it (interior); holds M's address misaligned
    (0x20, 0),  // 3 G0: the exe's .data points to it
    (0x50, 0),  // 4 G1: G0 points 0x48 into it
    (0x18, 0),  // 5 R0: register rbx of thread 1
    (0x40, 1),  // 6 S0: only in the dead part of thread 0's stack
    (0x60, 1),  // 7 U0: nothing points to it
    (0x40, 1),  // 8 U1: points to U2
    (0x80, 1),  // 9 U2: only U1 points to it
    (0x20, 1),  // 10 C0: C0 <-> C1, a cycle
    (0x20, 1),  // 11 C1: also points to C2
    (0x100, 1), // 12 C2
    (0x30, 1),  // 13 U3: points to X
    (0x30, 1),  // 14 U4: points to X
    (0x70, 1),  // 15 X: kept by two roots of garbage
    (0x28, 1),  // 16 D0: points to the cycle E0 <-> E1
    (0x20, 1),  // 17 E0
    (0x20, 1),  // 18 E1
    (0x40, 1),  // 19 F: only a free block points to it
    (0x40, 1),  // 20 H: the live stack holds its header's address
    (0x40, 1),  // 21 P: the live stack holds the address one past its end
    (0x40, 1),  // 22 M: A2 holds its address at a 4-byte-aligned offset only
    (0x20, 0),  // 23 K: a TLS slot of thread 0's TEB points to it
    (0x30, 1),  // 24 V: only other private memory points to it (reachable with --roots more)
];

/// The pointers of `leaks-win10-x64.dmp`.
const X64_POINTERS: &[Pointer] = &[
    p(Slot::LiveStack(0, 0x28), 0, 0, 8),
    p(Slot::Object(0, 0x8), 1, 0, 8),
    p(Slot::Object(1, 0x10), 2, 0x20, 8),
    p(Slot::ImageData(0x10), 3, 0, 8),
    p(Slot::Object(3, 0), 4, 0x48, 8),
    p(Slot::Register(1, "rbx"), 5, 0, 8),
    p(Slot::DeadStack(0, 0x40), 6, 0, 8),
    p(Slot::Object(8, 0), 9, 0, 8),
    p(Slot::Object(10, 0x8), 11, 0, 8),
    p(Slot::Object(11, 0), 10, 0x10, 8),
    p(Slot::Object(11, 0x18), 12, 0, 8),
    p(Slot::Object(13, 0), 15, 0, 8),
    p(Slot::Object(14, 0x10), 15, 0x8, 8),
    p(Slot::Object(16, 0), 17, 0, 8),
    p(Slot::Object(17, 0), 18, 0, 8),
    p(Slot::Object(18, 0), 17, 0, 8),
    p(Slot::FreeBlock(0x20), 19, 0, 8),
    Pointer {
        at: Slot::LiveStack(0, 0x30),
        to: Target::Header(20),
        width: 8,
    },
    Pointer {
        at: Slot::LiveStack(0, 0x38),
        to: Target::End(21),
        width: 8,
    },
    p(Slot::Object(2, 0x4), 22, 0, 8),
    p(Slot::Teb(0, 0x1480 + 5 * 8), 23, 0, 8),
    p(Slot::Private(0x100), 24, 0, 8),
    // Pointers from garbage into reachable objects change nothing.
    p(Slot::Object(7, 0x8), 0, 0, 8),
];

/// What `leaks-win10-x64.dmp` must give (standard roots).
pub const X64_ANSWER: Answer = Answer {
    unreachable: &[
        6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 24,
    ],
    roots: &[
        (&[6], 0x40),
        (&[7], 0x60),
        (&[8], 0x40 + 0x80),
        (&[10, 11], 0x20 + 0x20 + 0x100),
        (&[13], 0x30),
        (&[14], 0x30),
        (&[16], 0x28 + 0x20 + 0x20),
        (&[19], 0x40),
        (&[20], 0x40),
        (&[21], 0x40),
        (&[22], 0x40),
        (&[24], 0x30),
    ],
    shared: &[15],
};

/// `leaks-win10-x64.dmp`: Windows 10 x64 with +ust, two threads, one NT heap holding the graph of
/// [`X64_OBJECTS`].
pub fn leaks_win10_x64() -> (MinidumpBuilder, Facts) {
    let mut b = ProcessBuilder::new(Windows::Win10, Kind::Native64, r"C:\app\leaky.exe");
    b.set_nt_global_flag(0x1000);
    b.add_thread();
    b.add_thread();
    let (exe, ntdll) = (b.dump.modules[0].base, b.dump.modules[1].base);
    let stacks = vec![
        vec![ntdll + 0x1010, exe + 0x1100, exe + 0x1200],
        vec![ntdll + 0x1010, exe + 0x1700, exe + 0x1200],
    ];
    let heap = GraphHeap {
        bits: 64,
        objects: X64_OBJECTS.iter().map(|&(s, t)| (s, Some(t))).collect(),
    };
    let objects = b.add_object_graph(&[heap], &stacks, X64_POINTERS);
    b.set_objects(objects);
    b.finish()
}

/// `leaks-wow64-win10.dmp`: the 32-bit heap's objects (0–6), then the 64-bit heap's (7–10).
const WOW64_OBJECTS_32: &[u64] = &[
    0x20, // 0 a0: on the 32-bit live stack, at an offset that is 4- but not 8-aligned
    0x20, // 1 a1: a0+0x4 points to it (a 4-byte pointer at a 4-aligned offset)
    0x20, // 2 a2: the 32-bit exe's .data points to it
    0x10, // 3 r0: register esi of the WOW64_CONTEXT
    0x20, // 4 d0: only in the dead part of the 32-bit stack
    0x20, // 5 x0: only a 64-bit block (b0) points to it
    0x20, // 6 u0: nothing points to it
];
const WOW64_OBJECTS_64: &[u64] = &[
    0x40, // 7 b0: on the 64-bit live stack; points to x0; holds b2's address at +0x14 (4 bytes)
    0x40, // 8 b1: a1 holds its address at +0xc, a 4-byte pointer in 32-bit memory
    0x40, // 9 b2: only a 4-byte value at a 4-aligned, not 8-aligned, place in 64-bit memory
    0x40, // 10 u1: nothing points to it
];

/// The pointers of `leaks-wow64-win10.dmp` (thread side 0 is the 64-bit one, 1 the 32-bit one).
const WOW64_POINTERS: &[Pointer] = &[
    p(Slot::LiveStack(1, 0x14), 0, 0, 4),
    p(Slot::Object(0, 0x4), 1, 0, 4),
    p(Slot::ImageData(0x14), 2, 0, 4),
    p(Slot::Register(1, "esi"), 3, 0, 4),
    p(Slot::DeadStack(1, 0x20), 4, 0, 4),
    p(Slot::LiveStack(0, 0x40), 7, 0, 8),
    p(Slot::Object(7, 0x8), 5, 0, 8),
    p(Slot::Object(1, 0xc), 8, 0, 4),
    p(Slot::Object(7, 0x14), 9, 0, 4),
];

/// What `leaks-wow64-win10.dmp` must give.
pub const WOW64_ANSWER: Answer = Answer {
    unreachable: &[4, 6, 9, 10],
    roots: &[(&[4], 0x20), (&[6], 0x20), (&[9], 0x40), (&[10], 0x40)],
    shared: &[],
};

/// `leaks-wow64-win10.dmp`: a WoW64 process on Windows 10 with a 32-bit and a 64-bit NT heap and
/// pointers of both widths between them, on both stacks, in the WOW64_CONTEXT and in the 32-bit
/// exe's data.
pub fn leaks_wow64_win10() -> (MinidumpBuilder, Facts) {
    let mut b = ProcessBuilder::new(Windows::Win10, Kind::Wow64, r"C:\app\leaky32.exe");
    b.add_thread();
    let heaps = [
        GraphHeap {
            bits: 32,
            objects: WOW64_OBJECTS_32.iter().map(|&s| (s, None)).collect(),
        },
        GraphHeap {
            bits: 64,
            objects: WOW64_OBJECTS_64.iter().map(|&s| (s, None)).collect(),
        },
    ];
    let objects = b.add_object_graph(&heaps, &[], WOW64_POINTERS);
    b.set_objects(objects);
    b.finish()
}

/// Vtables of `testdata/pdb/types-x64.dll` and `types-x86.dll` (built by
/// `scripts/make-types-pdb.sh`; RVAs from `llvm-pdbutil dump -publics`): the class each belongs
/// to as heapdiag names it, and its RVA in each build. `Derived`'s is the one for its `Base1`
/// part (the object's first word); `NoRtti` has no RTTI: only the PDB names it.
pub const TYPES_VTABLES: &[(&str, u64, u64)] = &[
    ("Widget", 0x2018, 0x2008),
    ("app::Gadget", 0x2088, 0x2060),
    ("app::Box<int>", 0x20e8, 0x20c0),
    ("Derived", 0x2148, 0x2120),
    ("Base1", 0x2280, 0x2248),
    ("NoRtti", 0x22d8, 0x2284),
];

/// What an object of the type fixtures holds.
#[derive(Clone, Copy, Debug)]
enum Holds {
    /// The vtable `TYPES_VTABLES[.0]` first, then zeros.
    Vtable(usize),
    /// A NUL-terminated UTF-16 string.
    Utf16(&'static str),
    /// A NUL-terminated ASCII string.
    Ascii(&'static str),
    /// A BSTR: its byte length (u32), the UTF-16 text, a NUL.
    Bstr(&'static str),
    /// First the address of the DLL's `.data` (writable: no vtable is there).
    DataPointer,
    /// First an address in the DLL's `.rdata` that is no vtable.
    NotVtable,
    /// Zeros.
    Nothing,
}

/// The objects of the type fixtures, and how many of each.
const TYPES_OBJECTS: &[(Holds, usize)] = &[
    (Holds::Vtable(0), 5),
    (Holds::Vtable(1), 3),
    (Holds::Vtable(2), 2),
    (Holds::Vtable(3), 2),
    (Holds::Vtable(4), 1),
    (Holds::Vtable(5), 2),
    (Holds::Utf16("hello, world"), 3),
    (Holds::Ascii("GET /index.html HTTP/1.1"), 2),
    (Holds::Bstr("session-42"), 1),
    (Holds::DataPointer, 1),
    (Holds::NotVtable, 1),
    (Holds::Nothing, 2),
];

/// What `top --by type` must count on the type fixtures without the DLL's PDB (RTTI names the
/// classes but NoRtti) and with it.
pub const TYPES_COUNTS: &[(&str, u64)] = &[
    ("(unknown)", 6),
    ("Widget", 5),
    ("UTF-16 string", 3),
    ("app::Gadget", 3),
    ("ASCII string", 2),
    ("Derived", 2),
    ("app::Box<int>", 2),
    ("BSTR", 1),
    ("Base1", 1),
];
/// The same with the PDB.
pub const TYPES_COUNTS_PDB: &[(&str, u64)] = &[
    ("(unknown)", 4),
    ("Widget", 5),
    ("UTF-16 string", 3),
    ("app::Gadget", 3),
    ("ASCII string", 2),
    ("Derived", 2),
    ("NoRtti", 2),
    ("app::Box<int>", 2),
    ("BSTR", 1),
    ("Base1", 1),
];

/// `types-win10-x64.dmp` / `types-win10-x86.dmp`: `types-x64.dll` / `types-x86.dll` mapped at
/// its preferred base, and an NT heap of [`TYPES_OBJECTS`].
pub fn types_fixture(bits: u32) -> (MinidumpBuilder, Facts) {
    let (kind, dll): (Kind, &[u8]) = if bits == 64 {
        (
            Kind::Native64,
            include_bytes!("../../../testdata/pdb/types-x64.dll"),
        )
    } else {
        (
            Kind::Native32,
            include_bytes!("../../../testdata/pdb/types-x86.dll"),
        )
    };
    let mut b = ProcessBuilder::new(Windows::Win10, kind, r"C:\app\shapes.exe");
    b.add_thread();
    let base = b.add_pe_image(r"C:\app\types.dll", dll);
    let ptr = u64::from(bits / 8);
    let text = |s: &str| s.encode_utf16().count() as u64 * 2;
    let sizes: Vec<u64> = TYPES_OBJECTS
        .iter()
        .flat_map(|&(holds, n)| {
            let size = match holds {
                Holds::Vtable(3) => 2 * ptr + 8,
                Holds::Utf16(s) => text(s) + 2,
                Holds::Ascii(s) => s.len() as u64 + 1,
                Holds::Bstr(s) => 4 + text(s) + 2,
                _ => ptr + 8,
            };
            std::iter::repeat_n(size, n)
        })
        .collect();
    let heap = GraphHeap {
        bits,
        objects: sizes.iter().map(|&s| (s, None)).collect(),
    };
    let objects = b.add_object_graph(&[heap], &[], &[]);
    let holds = TYPES_OBJECTS
        .iter()
        .flat_map(|&(h, n)| std::iter::repeat_n(h, n));
    let m = &mut b.dump.memory;
    for (&at, h) in objects.iter().zip(holds) {
        let utf16 = |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(u16::to_le_bytes).collect() };
        match h {
            Holds::Vtable(k) => {
                let rva = if bits == 64 {
                    TYPES_VTABLES[k].1
                } else {
                    TYPES_VTABLES[k].2
                };
                m.write_ptr(bits, at, base + rva);
            }
            Holds::Utf16(s) => m.write(at, &utf16(s)),
            Holds::Ascii(s) => m.write(at, s.as_bytes()),
            Holds::Bstr(s) => {
                m.write_u32(at, text(s) as u32);
                m.write(at + 4, &utf16(s));
            }
            Holds::DataPointer => m.write_ptr(bits, at, base + 0x3000),
            Holds::NotVtable => m.write_ptr(bits, at, base + 0x2004),
            Holds::Nothing => {}
        }
    }
    b.set_objects(objects);
    b.finish()
}
