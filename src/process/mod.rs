//! The process model: architecture, OS, WoW64, and per pointer-width "world" its TEBs, PEB and
//! heap list.
//!
//! A native process has one world. A WoW64 process (a 32-bit process dumped by a 64-bit dumper)
//! has two: the 64-bit world of the WoW64 layer (TEB64, PEB64, 64-bit heaps) and the 32-bit world
//! of the application (TEB32, PEB32, 32-bit heaps). Every structure is validated before it is
//! trusted; what cannot be read is recorded as a note, never guessed.

pub mod heaps;
pub mod images;

use crate::dump::memory::AddressSpace;
use crate::dump::streams::{Arch, Context, Module, X86_CONTEXT_SIZE};
use crate::dump::Dump;
use crate::layout::{self, PebLayout, TebLayout};
pub use heaps::{Heap, HeapKind, PageHeapLink, Range};

/// The OS version of the dump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OsVersion {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Build.
    pub build: u32,
}

/// A thread's TEB in one world.
#[derive(Clone, Debug)]
pub struct Teb {
    /// Thread id.
    pub thread_id: u32,
    /// TEB address.
    pub address: u64,
    /// `NtTib.StackBase` (one past the highest stack address), when captured.
    pub stack_base: Option<u64>,
    /// `NtTib.StackLimit`, when captured.
    pub stack_limit: Option<u64>,
    /// `DeallocationStack` (allocation base of the stack), when captured.
    pub deallocation_stack: Option<u64>,
    /// The thread's registers in this world: the thread list's context record for the native
    /// world, the `WOW64_CONTEXT` for the 32-bit world of a WoW64 thread; `None` when the dump
    /// does not hold them.
    pub context: Option<Context>,
}

/// The PEB of one world.
#[derive(Clone, Debug)]
pub struct Peb {
    /// PEB address.
    pub address: u64,
    /// `ImageBaseAddress`.
    pub image_base: u64,
    /// `NtGlobalFlag`.
    pub nt_global_flag: u32,
    /// `ProcessHeap`.
    pub process_heap: u64,
    /// `NumberOfHeaps`.
    pub number_of_heaps: u32,
    /// `MaximumNumberOfHeaps`.
    pub maximum_number_of_heaps: u32,
    /// `ProcessHeaps` array address.
    pub process_heaps: u64,
    /// OS-owned shared regions the PEB points to: (label, address).
    pub shared: Vec<(&'static str, u64)>,
}

/// One pointer-width world of the process.
#[derive(Clone, Debug)]
pub struct World {
    /// 32 or 64.
    pub bits: u32,
    /// TEBs of this world, one per thread whose TEB could be located.
    pub tebs: Vec<Teb>,
    /// The PEB, when it was found and captured.
    pub peb: Option<Peb>,
    /// The heaps listed in `PEB.ProcessHeaps`, in order.
    pub heaps: Vec<Heap>,
    /// Why something of this world could not be read, one sentence each.
    pub notes: Vec<String>,
}

/// The process behind a dump.
#[derive(Clone, Debug)]
pub struct Process {
    /// Architecture of the dump (SystemInfo), `None` without SystemInfo.
    pub arch: Option<Arch>,
    /// OS version, `None` without SystemInfo.
    pub os: Option<OsVersion>,
    /// Whether this is a WoW64 process (32-bit code in a 64-bit dump).
    pub wow64: bool,
    /// Worlds: the native one first; on WoW64 the 32-bit one second.
    pub worlds: Vec<World>,
}

/// Where a heap may start when no heap list says: the start of every committed private
/// allocation of the region table, or, without one, every 64 KiB-aligned captured range.
fn allocation_starts(dump: &Dump) -> Vec<u64> {
    const MEM_COMMIT: u32 = 0x1000;
    const MEM_PRIVATE: u32 = 0x2_0000;
    match &dump.memory_info {
        Some(info) => info
            .iter()
            .filter(|r| {
                r.base == r.allocation_base && r.state == MEM_COMMIT && r.kind == MEM_PRIVATE
            })
            .map(|r| r.base)
            .collect(),
        None => dump
            .memory()
            .ranges()
            .iter()
            .map(|r| r.base)
            .filter(|b| b % 0x1_0000 == 0)
            .collect(),
    }
}

impl Process {
    /// Build the process model from a dump.
    pub fn load(dump: &Dump) -> Process {
        let mem = dump.memory();
        let arch = dump.system.as_ref().map(|s| s.arch);
        let os = dump.system.as_ref().map(|s| OsVersion {
            major: s.major,
            minor: s.minor,
            build: s.build,
        });
        let native_bits = arch.and_then(Arch::bits).unwrap_or(64);
        let mut native = World::new(native_bits);
        let teb_layout = teb_layout(native_bits);
        for t in &dump.threads {
            let mut teb = read_teb(&mem, t.id, t.teb, teb_layout, native_bits);
            teb.context = t.context.clone();
            native.tebs.push(teb);
        }
        if dump.threads.is_empty() {
            native
                .notes
                .push("the dump has no thread list, so no TEB and no PEB can be found".into());
        }
        native.peb = find_peb(&mem, &native.tebs, native_bits, os, &mut native.notes);

        let wow64 = native_bits == 64
            && arch == Some(Arch::Amd64)
            && (dump.modules.iter().any(is_wow64_module)
                || native
                    .tebs
                    .iter()
                    .any(|t| teb32_of(&mem, t.address, os).is_some()));
        let mut worlds = vec![native];
        if wow64 {
            let w32 = wow64_world(&mem, &worlds[0], os);
            worlds.push(w32);
        }
        for w in &mut worlds {
            let ntdll = find_ntdll(&dump.modules, w.bits, wow64);
            let (heaps, notes) = match &w.peb {
                Some(peb) => heaps::list(&mem, peb, w.bits, ntdll, os),
                None => heaps::scan(&mem, &allocation_starts(dump), w.bits, ntdll, os),
            };
            w.heaps = heaps;
            w.notes.extend(notes);
        }
        Process {
            arch,
            os,
            wow64,
            worlds,
        }
    }

    /// The world the application's code runs in: the 32-bit one on WoW64, else the native one.
    pub fn app_world(&self) -> &World {
        self.worlds
            .last()
            .expect("a process has at least one world")
    }

    /// The main executable: the module at the application PEB's ImageBaseAddress, else the first
    /// module of the list (which Windows writes first).
    pub fn main_module<'m>(&self, modules: &'m [Module]) -> Option<&'m Module> {
        self.app_world()
            .peb
            .as_ref()
            .and_then(|p| modules.iter().find(|m| m.base == p.image_base))
            .or(modules.first())
    }
}

/// The 32-bit world of a WoW64 process: TEB32s from the TEB64s, the PEB32 from a TEB32 or, without
/// one, from the PEB64's position.
fn wow64_world(mem: &AddressSpace<'_>, native: &World, os: Option<OsVersion>) -> World {
    let mut w32 = World::new(32);
    for t in &native.tebs {
        match teb32_of(mem, t.address, os) {
            Some(a) => {
                let mut teb = read_teb(mem, t.thread_id, a, &layout::TEB32, 32);
                teb.context = wow64_context(mem, t.address);
                w32.tebs.push(teb);
            }
            None => w32.notes.push(format!(
                "thread {:#x}: its 32-bit TEB could not be located from TEB64 {:#x}",
                t.thread_id, t.address
            )),
        }
    }
    let mut notes = Vec::new();
    let mut peb32 = find_peb(mem, &w32.tebs, 32, os, &mut notes);
    if peb32.is_none() {
        // Without a TEB32, the PEB32 sits one page below (Vista/7) or above (8+) the PEB64.
        if let (Some(p64), Some(v)) = (&native.peb, os) {
            let guess = if (v.major, v.minor) < (6, 2) {
                p64.address.wrapping_sub(0x1000)
            } else {
                p64.address.wrapping_add(0x1000)
            };
            peb32 = read_peb(mem, guess, 32, os);
            if peb32.is_some() {
                notes.push(format!(
                    "PEB32 found at {guess:#x} from the PEB64's position (no TEB32 led to it)"
                ));
            }
        }
    }
    w32.notes.extend(notes);
    w32.peb = peb32;
    w32
}

impl World {
    fn new(bits: u32) -> Self {
        Self {
            bits,
            tebs: Vec::new(),
            peb: None,
            heaps: Vec::new(),
            notes: Vec::new(),
        }
    }
}

fn teb_layout(bits: u32) -> &'static TebLayout {
    if bits == 64 {
        &layout::TEB64
    } else {
        &layout::TEB32
    }
}

fn peb_layout(bits: u32) -> &'static PebLayout {
    if bits == 64 {
        &layout::PEB64
    } else {
        &layout::PEB32
    }
}

fn read_teb(mem: &AddressSpace<'_>, id: u32, address: u64, l: &TebLayout, bits: u32) -> Teb {
    let ptr = |off: u64| mem.read_ptr(address.wrapping_add(off), bits).ok();
    Teb {
        thread_id: id,
        address,
        stack_base: ptr(l.stack_base),
        stack_limit: ptr(l.stack_limit),
        deallocation_stack: ptr(l.deallocation_stack),
        context: None,
    }
}

/// The 32-bit registers of a WoW64 thread: `TEB64.TlsSlots[WOW64_TLS_CPURESERVED]` points to the
/// CPU simulator's reserved area, which holds a `WOW64_CONTEXT` at +4 (documented for Vista to
/// 8.1, the same on 10 and 11 for x86 code on x64).
fn wow64_context(mem: &AddressSpace<'_>, teb64: u64) -> Option<Context> {
    let slot = teb64.checked_add(layout::TEB64_TLS_SLOTS + 8 * layout::WOW64_TLS_CPURESERVED)?;
    let reserved = mem.read_u64(slot).ok()?;
    let record = mem
        .read(
            reserved.checked_add(layout::WOW64_CONTEXT_OFFSET)?,
            X86_CONTEXT_SIZE,
        )
        .ok()?;
    Context::from_x86_record(&record)
}

/// Whether a module's image is 32- or 64-bit: from its PE header's Machine when the header is in
/// the dump, else 64 for a module above 4 GB and 32 for one in SysWOW64; `None` when neither
/// tells.
pub fn module_bits(mem: &AddressSpace<'_>, m: &Module) -> Option<u32> {
    let machine = (|| {
        if mem.read(m.base, 2).ok()?.as_ref() != b"MZ" {
            return None;
        }
        let pe = m
            .base
            .checked_add(u64::from(mem.read_u32(m.base + 0x3c).ok()?))?;
        if mem.read(pe, 4).ok()?.as_ref() != b"PE\0\0" {
            return None;
        }
        mem.read_u16(pe + 4).ok()
    })();
    match machine {
        Some(0x14c) | Some(0x1c4) => Some(32),
        Some(0x8664) | Some(0xaa64) => Some(64),
        _ if m.base > u64::from(u32::MAX) => Some(64),
        _ if m.path.to_ascii_lowercase().contains("\\syswow64\\") => Some(32),
        _ => None,
    }
}

fn is_wow64_module(m: &Module) -> bool {
    let name = m.file_name().to_ascii_lowercase();
    name == "wow64.dll" || name == "wow64cpu.dll" || name == "wow64win.dll"
}

/// The 32-bit TEB of a WoW64 thread, from its TEB64: `WowTebOffset` (Windows 10+), the pointer in
/// `NtTib.ExceptionList` (Vista–8.1), or TEB64 + 0x2000; a candidate counts only when its
/// `NtTib.Self` points to itself.
fn teb32_of(mem: &AddressSpace<'_>, teb64: u64, os: Option<OsVersion>) -> Option<u64> {
    let by_offset = mem
        .read_u32(teb64.wrapping_add(layout::TEB64_WOW_TEB_OFFSET))
        .ok()
        .map(|o| teb64.wrapping_add_signed(i64::from(o as i32)));
    let by_pointer = mem.read_u64(teb64).ok();
    let modern = os.is_none_or(|v| v.major >= 10);
    let mut candidates = if modern {
        vec![by_offset, by_pointer]
    } else {
        vec![by_pointer, by_offset]
    };
    candidates.push(Some(teb64.wrapping_add(0x2000)));
    candidates
        .into_iter()
        .flatten()
        .filter(|&c| c != teb64 && c != 0 && c <= u64::from(u32::MAX))
        .find(|&c| mem.read_u32(c + layout::TEB32.self_ptr).ok() == Some(c as u32))
}

/// The PEB of a world: the first TEB whose `ProcessEnvironmentBlock` leads to a PEB that validates.
fn find_peb(
    mem: &AddressSpace<'_>,
    tebs: &[Teb],
    bits: u32,
    os: Option<OsVersion>,
    notes: &mut Vec<String>,
) -> Option<Peb> {
    let l = teb_layout(bits);
    let mut tried = Vec::new();
    for t in tebs {
        if let Ok(addr) = mem.read_ptr(t.address.wrapping_add(l.peb), bits) {
            if let Some(p) = read_peb(mem, addr, bits, os) {
                return Some(p);
            }
            tried.push(format!("{addr:#x}"));
        }
    }
    if !tebs.is_empty() {
        if tried.is_empty() {
            notes.push(format!(
                "no {bits}-bit TEB is captured in the dump, so the PEB cannot be found"
            ));
        } else {
            notes.push(format!(
                "the {bits}-bit PEB at {} is not captured or does not look like a PEB",
                tried.join(", ")
            ));
        }
    }
    None
}

/// Read and validate a PEB: its OSMajorVersion must match the dump's OS (when known).
fn read_peb(mem: &AddressSpace<'_>, address: u64, bits: u32, os: Option<OsVersion>) -> Option<Peb> {
    let l = peb_layout(bits);
    let at = |off: u64| address.checked_add(off);
    let major = mem.read_u32(at(l.os_major)?).ok()?;
    if let Some(v) = os {
        if v.major != major {
            return None;
        }
    }
    let ptr = |off: u64| at(off).and_then(|a| mem.read_ptr(a, bits).ok());
    let u32_at = |off: u64| at(off).and_then(|a| mem.read_u32(a).ok());
    Some(Peb {
        address,
        image_base: ptr(l.image_base)?,
        nt_global_flag: u32_at(l.nt_global_flag)?,
        process_heap: ptr(l.process_heap)?,
        number_of_heaps: u32_at(l.number_of_heaps)?,
        maximum_number_of_heaps: u32_at(l.maximum_number_of_heaps)?,
        process_heaps: ptr(l.process_heaps)?,
        shared: l
            .shared
            .iter()
            .filter_map(|(off, label)| Some((*label, ptr(*off)?)))
            .filter(|(_, a)| *a != 0)
            .collect(),
    })
}

/// The ntdll of a world: on WoW64 the 32-bit one lives in SysWOW64.
pub fn ntdll_of(modules: &[Module], bits: u32, wow64: bool) -> Option<&Module> {
    find_ntdll(modules, bits, wow64)
}

fn find_ntdll(modules: &[Module], bits: u32, wow64: bool) -> Option<&Module> {
    modules.iter().find(|m| {
        m.file_name().eq_ignore_ascii_case("ntdll.dll")
            && (!wow64 || m.path.to_ascii_lowercase().contains("syswow64") == (bits == 32))
    })
}
