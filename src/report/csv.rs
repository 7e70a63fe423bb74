//! CSV views: one header line, RFC 4180 quoting, addresses as `0x…`.

use super::format::addr;
use crate::analysis::heaps::{HeapSummary, SizeRow};
use crate::heap::Block;
use crate::regions::summary::AddressSummary;
use crate::regions::{protect_name, state_name, type_name, Region, MEM_COMMIT};
use std::fmt::Write;

fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn line(out: &mut String, fields: &[String]) {
    let joined: Vec<String> = fields.iter().map(|f| field(f)).collect();
    let _ = writeln!(out, "{}", joined.join(","));
}

/// The summary tables as rows `table,name,regions,bytes,pct_busy,pct_total,base`; `base` is set
/// only on `largest` rows (the largest region of each usage).
pub fn summary_csv(s: &AddressSummary) -> String {
    let mut out = String::new();
    line(
        &mut out,
        &[
            "table",
            "name",
            "regions",
            "bytes",
            "pct_busy",
            "pct_total",
            "base",
        ]
        .map(String::from),
    );
    for (table, rows) in [
        ("usage", &s.usage),
        ("type", &s.types),
        ("state", &s.states),
        ("protect", &s.protects),
    ] {
        for r in rows {
            line(
                &mut out,
                &[
                    table.to_string(),
                    r.name.clone(),
                    r.regions.to_string(),
                    r.bytes.to_string(),
                    r.pct_busy.map(|p| format!("{p:.4}")).unwrap_or_default(),
                    format!("{:.4}", r.pct_total),
                    String::new(),
                ],
            );
        }
    }
    for l in &s.largest {
        line(
            &mut out,
            &[
                "largest".into(),
                l.usage.clone(),
                "1".into(),
                l.size.to_string(),
                String::new(),
                String::new(),
                addr(l.base),
            ],
        );
    }
    out
}

/// Regions as rows `base,end,size,usage,state,type,protect,allocation_base,detail`.
pub fn regions_csv<'a>(regions: impl Iterator<Item = &'a Region>) -> String {
    let mut out = String::new();
    line(
        &mut out,
        &[
            "base",
            "end",
            "size",
            "usage",
            "state",
            "type",
            "protect",
            "allocation_base",
            "detail",
        ]
        .map(String::from),
    );
    for r in regions {
        line(
            &mut out,
            &[
                addr(r.base),
                addr(r.end()),
                r.size.to_string(),
                r.usage.name(),
                r.state.map(state_name).unwrap_or_default(),
                r.kind
                    .filter(|_| r.is_busy())
                    .map(type_name)
                    .unwrap_or_default(),
                r.protect
                    .filter(|_| r.state == Some(MEM_COMMIT))
                    .map(protect_name)
                    .unwrap_or_default(),
                r.allocation_base
                    .filter(|_| r.is_busy())
                    .map(addr)
                    .unwrap_or_default(),
                r.detail.clone().unwrap_or_default(),
            ],
        );
    }
    out
}

/// Heaps as rows of their `!heap -s` figures.
pub fn heaps_csv(heaps: &[HeapSummary]) -> String {
    let mut out = String::new();
    line(
        &mut out,
        &[
            "address",
            "type",
            "bits",
            "flags",
            "reserved",
            "committed",
            "virtual_bytes",
            "large_blocks",
            "ucr",
            "busy_blocks",
            "busy_bytes",
            "free_blocks",
            "free_bytes",
            "external_fragmentation",
            "lfh",
            "lfh_busy_blocks",
            "lfh_busy_bytes",
            "internal_blocks",
            "internal_bytes",
            "corruptions",
        ]
        .map(String::from),
    );
    for h in heaps {
        line(
            &mut out,
            &[
                addr(h.address),
                h.kind.name().to_string(),
                h.bits.to_string(),
                h.flags.map(|f| format!("{f:#x}")).unwrap_or_default(),
                h.reserved.to_string(),
                h.committed.to_string(),
                h.virtual_bytes.to_string(),
                h.large_blocks.to_string(),
                h.ucr.to_string(),
                h.busy_blocks.to_string(),
                h.busy_bytes.to_string(),
                h.free_blocks.to_string(),
                h.free_bytes.to_string(),
                format!("{:.2}", h.external_fragmentation()),
                h.lfh.to_string(),
                h.lfh_busy_blocks.to_string(),
                h.lfh_busy_bytes.to_string(),
                h.internal_blocks.to_string(),
                h.internal_bytes.to_string(),
                h.corruptions.len().to_string(),
            ],
        );
    }
    out
}

/// The size histogram as rows `size,count,total,percent`.
pub fn stat_csv(rows: &[SizeRow], limit: usize) -> String {
    let mut out = String::new();
    line(
        &mut out,
        &["size", "count", "total", "percent"].map(String::from),
    );
    for r in rows.iter().take(limit) {
        line(
            &mut out,
            &[
                r.size.to_string(),
                r.count.to_string(),
                r.total.to_string(),
                format!("{:.4}", r.percent),
            ],
        );
    }
    out
}

/// Blocks as rows `heap,entry,address,size,block_size,state,front_end,flags,internal,trace`,
/// streamed.
pub fn blocks_csv<'a>(
    out: &mut dyn std::io::Write,
    blocks: impl Iterator<Item = (u64, &'a Block)>,
) -> std::io::Result<()> {
    writeln!(
        out,
        "heap,entry,address,size,block_size,state,front_end,flags,internal,trace"
    )?;
    for (heap, b) in blocks {
        writeln!(
            out,
            "{},{},{},{},{},{},{},{:#04x},{},{}",
            addr(heap),
            addr(b.entry),
            addr(b.address),
            b.size,
            b.block_size,
            b.state.name(),
            b.front_end.name(),
            b.flags,
            b.internal,
            if b.trace != 0 {
                addr(b.trace)
            } else {
                String::new()
            }
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("<unknown>"), "<unknown>");
    }
}
