//! Region filters in the manner of `!address -f:`: usage names (`Heap`, `Stack`, `Image`, `Free`,
//! `TEB`, `PEB`, `Other`, `<unknown>` or `VAR`, with optional `32`/`64` suffixes), types
//! (`MEM_IMAGE`, `MEM_MAPPED`, `MEM_PRIVATE`), states (`MEM_COMMIT`, `MEM_RESERVE`, `MEM_FREE`) and
//! protections (`PAGE_READWRITE`, `PAGE_GUARD`, …). Names of one kind are alternatives (OR);
//! kinds combine (AND). Matching is case-insensitive.

use super::{
    Region, UsageKind, MEM_COMMIT, MEM_FREE, MEM_IMAGE, MEM_MAPPED, MEM_PRIVATE, MEM_RESERVE,
    PROTECTIONS, PROTECTION_MODIFIERS,
};

/// A parsed filter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegionFilter {
    usages: Vec<(UsageKind, Option<u32>)>,
    types: Vec<u32>,
    states: Vec<u32>,
    protects: Vec<u32>,
}

impl RegionFilter {
    /// Parse comma-separated names (several arguments may be given). An unknown name is an error
    /// naming it.
    pub fn parse<S: AsRef<str>>(specs: &[S]) -> Result<Self, String> {
        let mut f = RegionFilter::default();
        for spec in specs {
            if spec.as_ref().split(',').all(|t| t.trim().is_empty()) {
                return Err(format!(
                    "empty filter {:?}: name a usage, type, state or protection (e.g. -f Heap)",
                    spec.as_ref()
                ));
            }
            for token in spec
                .as_ref()
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
            {
                f.add(token)?;
            }
        }
        Ok(f)
    }

    fn add(&mut self, token: &str) -> Result<(), String> {
        let up = token.to_ascii_uppercase();
        let named = |table: &[(u32, &str)]| table.iter().find(|(_, n)| *n == up).map(|(v, _)| *v);
        match up.as_str() {
            "MEM_IMAGE" => self.types.push(MEM_IMAGE),
            "MEM_MAPPED" => self.types.push(MEM_MAPPED),
            "MEM_PRIVATE" => self.types.push(MEM_PRIVATE),
            "MEM_COMMIT" => self.states.push(MEM_COMMIT),
            "MEM_RESERVE" => self.states.push(MEM_RESERVE),
            "MEM_FREE" => self.states.push(MEM_FREE),
            _ => {
                if let Some(v) = named(PROTECTIONS).or_else(|| named(PROTECTION_MODIFIERS)) {
                    self.protects.push(v);
                    return Ok(());
                }
                let (stem, bits) = match up.strip_suffix("32") {
                    Some(s) => (s, Some(32)),
                    None => match up.strip_suffix("64") {
                        Some(s) => (s, Some(64)),
                        None => (up.as_str(), None),
                    },
                };
                let kind = match stem {
                    "FREE" => UsageKind::Free,
                    "IMAGE" => UsageKind::Image,
                    "HEAP" => UsageKind::Heap,
                    "PAGEHEAP" => UsageKind::PageHeap,
                    "STACK" => UsageKind::Stack,
                    "TEB" => UsageKind::Teb,
                    "PEB" => UsageKind::Peb,
                    "OTHER" => UsageKind::Other,
                    "<UNKNOWN>" | "UNKNOWN" | "VAR" => UsageKind::Unknown,
                    _ => {
                        return Err(format!(
                            "unknown filter '{token}': use usage names (Heap, Heap32, PageHeap, Stack, Image, Free, TEB, PEB, Other, VAR), \
                             MEM_IMAGE/MEM_MAPPED/MEM_PRIVATE, MEM_COMMIT/MEM_RESERVE/MEM_FREE or PAGE_* protections"
                        ))
                    }
                };
                if bits.is_some() && !kind.per_world() {
                    return Err(format!(
                        "unknown filter '{token}': only Heap, Stack, TEB and PEB take 32/64"
                    ));
                }
                self.usages.push((kind, bits));
            }
        }
        Ok(())
    }

    /// Whether the filter selects nothing in particular (everything matches).
    pub fn is_empty(&self) -> bool {
        self == &RegionFilter::default()
    }

    /// Whether `r` passes.
    pub fn matches(&self, r: &Region) -> bool {
        let usage_ok = self.usages.is_empty()
            || self
                .usages
                .iter()
                .any(|(k, b)| *k == r.usage.kind && (b.is_none() || *b == r.usage.bits));
        let type_ok = self.types.is_empty() || r.kind.is_some_and(|k| self.types.contains(&k));
        let state_ok = self.states.is_empty() || r.state.is_some_and(|s| self.states.contains(&s));
        let protect_ok = self.protects.is_empty()
            || r.protect.is_some_and(|p| {
                self.protects.iter().any(|&want| {
                    if want <= 0xff {
                        p & 0xff == want
                    } else {
                        p & want != 0
                    }
                })
            });
        usage_ok && type_ok && state_ok && protect_ok
    }
}

#[cfg(test)]
mod tests {
    use super::super::Usage;
    use super::*;

    fn r(kind: UsageKind, bits: Option<u32>, state: u32, protect: u32) -> Region {
        Region {
            base: 0x1000,
            size: 0x1000,
            allocation_base: Some(0x1000),
            allocation_protect: Some(4),
            state: Some(state),
            protect: Some(protect),
            kind: Some(MEM_PRIVATE),
            usage: Usage { kind, bits },
            detail: None,
        }
    }

    #[test]
    fn kinds_and_across_or_within() {
        let f = RegionFilter::parse(&["heap,stack", "MEM_COMMIT"]).unwrap();
        assert!(f.matches(&r(UsageKind::Heap, None, MEM_COMMIT, 4)));
        assert!(f.matches(&r(UsageKind::Stack, Some(32), MEM_COMMIT, 4)));
        assert!(!f.matches(&r(UsageKind::Heap, None, MEM_RESERVE, 0)));
        assert!(!f.matches(&r(UsageKind::Image, None, MEM_COMMIT, 4)));
        let f = RegionFilter::parse(&["Heap32"]).unwrap();
        assert!(f.matches(&r(UsageKind::Heap, Some(32), MEM_COMMIT, 4)));
        assert!(!f.matches(&r(UsageKind::Heap, Some(64), MEM_COMMIT, 4)));
        let f = RegionFilter::parse(&["PAGE_GUARD"]).unwrap();
        assert!(f.matches(&r(UsageKind::Stack, None, MEM_COMMIT, 0x104)));
        assert!(!f.matches(&r(UsageKind::Stack, None, MEM_COMMIT, 0x4)));
        let f = RegionFilter::parse(&["page_readwrite"]).unwrap();
        assert!(f.matches(&r(UsageKind::Stack, None, MEM_COMMIT, 0x104)));
        assert!(RegionFilter::parse(&["VAR"]).unwrap().matches(&r(
            UsageKind::Unknown,
            None,
            MEM_COMMIT,
            4
        )));
        assert!(RegionFilter::parse(&["Bogus"]).is_err());
        assert!(RegionFilter::parse(&["Image32"]).is_err());
        assert!(RegionFilter::parse::<&str>(&[]).unwrap().is_empty());
        assert!(RegionFilter::parse(&[""]).is_err());
        assert!(RegionFilter::parse(&[" , "]).is_err());
    }
}
