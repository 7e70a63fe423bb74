//! The dump file: mapped, its header and stream directory checked, its streams decoded once.
//!
//! Only a damaged header or directory stops here (an [`Error`]). A damaged stream is recorded in
//! [`Dump::problems`] and left out, so the layers above work with what is still trustworthy.

pub mod memory;
pub mod names;
pub mod streams;

use crate::error::{Error, Exit};
use memmap2::Mmap;
use memory::{AddressSpace, MemoryIndex};
use minidump::format::MINIDUMP_STREAM_TYPE as StreamType;
use std::fs::File;
use std::path::{Path, PathBuf};
use streams::{MemoryInfo, MiscInfo, Module, SystemInfo, Thread};

/// `MINIDUMP_HEADER` fields heapdiag reports.
#[derive(Clone, Debug)]
pub struct Header {
    /// Version (low 16 bits `0xA793`; the high 16 bits are the writer's).
    pub version: u32,
    /// Number of directory entries.
    pub stream_count: u32,
    /// TimeDateStamp (seconds since 1970).
    pub timestamp: u32,
    /// `MINIDUMP_TYPE` flags.
    pub flags: u64,
}

/// One stream directory entry.
#[derive(Clone, Debug)]
pub struct StreamEntry {
    /// Stream type number.
    pub kind: u32,
    /// Its name, or `None` when unknown.
    pub name: Option<&'static str>,
    /// DataSize.
    pub size: u32,
    /// Rva.
    pub rva: u32,
}

/// Where the captured memory came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemorySource {
    /// No memory stream.
    None,
    /// MemoryListStream (minidump).
    List,
    /// Memory64ListStream (full memory).
    List64,
}

/// The bytes of a dump: the mapped file, or (for tests that mutate dumps by the thousand) an owned
/// buffer.
enum Backing {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Backing {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Backing::Mapped(m) => m,
            Backing::Owned(v) => v,
        }
    }
}

/// An opened dump.
pub struct Dump {
    path: PathBuf,
    map: Backing,
    /// The header.
    pub header: Header,
    /// The stream directory, in file order.
    pub directory: Vec<StreamEntry>,
    /// SystemInfo, when present and readable.
    pub system: Option<SystemInfo>,
    /// MiscInfo, when present and readable.
    pub misc: Option<MiscInfo>,
    /// Loaded modules (empty without a ModuleList stream).
    pub modules: Vec<Module>,
    /// Unloaded modules, when the stream is present.
    pub unloaded_modules: Option<Vec<Module>>,
    /// Threads (empty without a ThreadList stream).
    pub threads: Vec<Thread>,
    /// The region table, when the MemoryInfoList stream is present.
    pub memory_info: Option<Vec<MemoryInfo>>,
    /// Damage found in the MemoryInfoList stream (also in [`Dump::problems`]).
    pub memory_info_problems: Vec<String>,
    /// Number of handles, when the HandleData stream is present.
    pub handle_count: Option<usize>,
    /// Which stream the captured memory came from.
    pub memory_source: MemorySource,
    memory: MemoryIndex,
    /// Damage found in streams, one sentence each.
    pub problems: Vec<String>,
}

const HEADER_SIZE: usize = 32;
const SIGNATURE: &[u8; 4] = b"MDMP";

impl Dump {
    /// Open and decode the dump at `path`.
    pub fn open(path: &Path) -> Result<Dump, Error> {
        let open_err = |m: String| Error::file(Exit::Open, path, m);
        let bad = |m: String| Error::file(Exit::NotMinidump, path, m);
        let meta = std::fs::metadata(path).map_err(|e| open_err(describe_io(&e)))?;
        if meta.is_dir() {
            return Err(open_err("is a directory, not a dump file".into()));
        }
        // Opening a FIFO would wait for a writer, and a device can be endless: dumps are regular
        // files (checked before opening, through symbolic links).
        if !meta.is_file() {
            return Err(open_err(
                "is not a regular file (a FIFO, socket or device); heapdiag reads dumps from files"
                    .into(),
            ));
        }
        let file = File::open(path).map_err(|e| open_err(describe_io(&e)))?;
        if meta.len() == 0 {
            return Err(bad("empty file (0 bytes), not a minidump".into()));
        }
        // SAFETY: the map is read-only and private to this process; heapdiag never writes the
        // file. If another process truncates the file while it is mapped, reads may fault, as with
        // any mmap-based reader; dumps are not expected to change under analysis.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| open_err(describe_io(&e)))?;
        Self::decode(path, Backing::Mapped(map))
    }

    /// Decode a dump held in memory; `name` stands for the file in messages. For tests and tools
    /// that make dumps on the fly; the command line always maps the file.
    pub fn from_bytes(name: &Path, bytes: Vec<u8>) -> Result<Dump, Error> {
        if bytes.is_empty() {
            return Err(Error::file(
                Exit::NotMinidump,
                name,
                "empty file (0 bytes), not a minidump",
            ));
        }
        Self::decode(name, Backing::Owned(bytes))
    }

    fn decode(path: &Path, map: Backing) -> Result<Dump, Error> {
        let bad = |m: String| Error::file(Exit::NotMinidump, path, m);
        let data: &[u8] = &map;
        let header = read_header(data).map_err(bad)?;
        let directory = read_directory(data, &header).map_err(bad)?;
        let mut problems = past_the_end(&directory, data.len());
        let md = minidump::Minidump::read(data)
            .map_err(|e| bad(format!("damaged minidump header or directory: {e}")))?;
        let body = |kind: StreamType| -> Option<&[u8]> {
            let e = directory.iter().find(|e| e.kind == kind as u32)?;
            data.get(e.rva as usize..(e.rva as usize).checked_add(e.size as usize)?)
        };
        let system = body(StreamType::SystemInfoStream).and_then(|b| streams::system_info(b, data));
        if body(StreamType::SystemInfoStream).is_some() && system.is_none() {
            problems.push("SystemInfoStream is too short; architecture unknown".into());
        }
        let misc = body(StreamType::MiscInfoStream).and_then(streams::misc_info);
        let (memory_source, raw_ranges) = if let Some(b) = body(StreamType::Memory64ListStream) {
            let ranges = streams::memory64_list(b, &mut problems);
            (MemorySource::List64, ranges)
        } else if let Some(b) = body(StreamType::MemoryListStream) {
            (MemorySource::List, streams::memory_list(b, &mut problems))
        } else {
            (MemorySource::None, Vec::new())
        };
        let mut memory = MemoryIndex::build(raw_ranges, data.len() as u64, &mut problems);
        // MiniDumpWithFullMemory in a Memory64List that the file holds whole.
        memory.set_complete(
            memory_source == MemorySource::List64
                && header.flags & 0x2 != 0
                && memory.truncated_bytes() == 0,
        );
        let mut take = StreamTaker {
            directory: &directory,
            problems: &mut problems,
        };
        let modules = take.ok(StreamType::ModuleListStream, streams::modules(&md));
        let unloaded_modules = take.ok(
            StreamType::UnloadedModuleListStream,
            streams::unloaded_modules(&md),
        );
        let threads = take.ok(StreamType::ThreadListStream, streams::threads(&md));
        let mut memory_info_problems = Vec::new();
        let memory_info = body(StreamType::MemoryInfoListStream)
            .map(|b| streams::memory_info(b, &mut memory_info_problems));
        take.problems.extend(memory_info_problems.iter().cloned());
        let handle_count = take.ok(StreamType::HandleDataStream, streams::handle_count(&md));
        drop(md);
        Ok(Dump {
            path: path.to_path_buf(),
            map,
            header,
            directory,
            system,
            misc,
            modules: modules.unwrap_or_default(),
            unloaded_modules,
            threads: threads.unwrap_or_default(),
            memory_info,
            memory_info_problems,
            handle_count,
            memory_source,
            memory,
            problems,
        })
    }

    /// The file this dump was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the dump file in bytes.
    pub fn file_len(&self) -> u64 {
        self.map.len() as u64
    }

    /// Bytes of captured memory the streams claim but the file lacks (a truncated dump).
    pub fn truncated_bytes(&self) -> u64 {
        self.memory.truncated_bytes()
    }

    /// The captured memory.
    pub fn memory(&self) -> AddressSpace<'_> {
        AddressSpace::new(&self.map, &self.memory)
    }
}

/// The header, when the file starts with one.
fn read_header(data: &[u8]) -> Result<Header, String> {
    if data.len() < HEADER_SIZE {
        return Err(format!(
            "file is {} bytes, shorter than a minidump header (32 bytes)",
            data.len()
        ));
    }
    if &data[..4] != SIGNATURE {
        return Err(format!(
            "not a minidump: signature is {:02x} {:02x} {:02x} {:02x}, expected \"MDMP\"",
            data[0], data[1], data[2], data[3]
        ));
    }
    Ok(Header {
        version: rd32(data, 4),
        stream_count: rd32(data, 8),
        timestamp: rd32(data, 20),
        flags: u64::from_le_bytes(data[24..32].try_into().expect("8 bytes")),
    })
}

/// A little-endian u32 at `o` (the caller checked the bounds).
fn rd32(data: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(data[o..o + 4].try_into().expect("4 bytes"))
}

/// The stream directory, when it lies inside the file.
fn read_directory(data: &[u8], header: &Header) -> Result<Vec<StreamEntry>, String> {
    let dir_rva = rd32(data, 12) as usize;
    let dir_len = (header.stream_count as usize).saturating_mul(12);
    if dir_rva
        .checked_add(dir_len)
        .is_none_or(|end| end > data.len())
    {
        return Err(format!(
            "stream directory ({} entries at offset {:#x}) lies past the end of the file ({} bytes): truncated or damaged header",
            header.stream_count, dir_rva, data.len()
        ));
    }
    Ok((0..header.stream_count as usize)
        .map(|i| {
            let at = dir_rva + 12 * i;
            let kind = rd32(data, at);
            StreamEntry {
                kind,
                name: names::stream_name(kind),
                size: rd32(data, at + 4),
                rva: rd32(data, at + 8),
            }
        })
        .collect())
}

/// A problem for each stream that runs past the end of a file of `len` bytes.
fn past_the_end(directory: &[StreamEntry], len: usize) -> Vec<String> {
    directory
        .iter()
        .filter(|e| u64::from(e.rva) + u64::from(e.size) > len as u64)
        .map(|e| {
            format!(
                "{} (type {:#x}: {} at file offset {:#x}) runs past the end of the file; it is ignored",
                e.name.unwrap_or("stream"),
                e.kind,
                crate::value::plural(u64::from(e.size), "byte"),
                e.rva
            )
        })
        .collect()
}

/// Keeps a stream's decoded value, or records why a stream that is present could not be read.
struct StreamTaker<'a> {
    directory: &'a [StreamEntry],
    problems: &'a mut Vec<String>,
}

impl StreamTaker<'_> {
    fn ok<V>(&mut self, kind: StreamType, r: Result<V, minidump::Error>) -> Option<V> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                if let Some(entry) = self.directory.iter().find(|d| d.kind == kind as u32) {
                    self.problems.push(format!(
                        "{} is unreadable ({e}); it is ignored",
                        entry.name.unwrap_or("stream")
                    ));
                }
                None
            }
        }
    }
}

fn describe_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => format!("cannot read: {e}"),
    }
}
