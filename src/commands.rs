//! The subcommands as functions from an opened dump to the text they print, so that the command
//! line, the tests and the mutation test all run exactly the same code.

use crate::capabilities;
use crate::dump::Dump;
use crate::process::Process;
use crate::regions::{self, filter::RegionFilter, summary};
use crate::report::{address, csv, info, json};

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Human-readable text.
    Text,
    /// JSON (docs/json.md).
    Json,
    /// CSV.
    Csv,
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("views serialize");
    s.push('\n');
    s
}

/// `heapdiag info`. CSV is not offered for this view; [`Format::Csv`] renders text.
pub fn info(dump: &Dump, format: Format, list_modules: bool) -> String {
    let process = Process::load(dump);
    let caps = capabilities::assess(dump, &process);
    match format {
        Format::Json => to_json(&json::InfoJson::new(dump, &process, &caps)),
        _ => info::info_text(dump, &process, &caps, list_modules),
    }
}

/// `heapdiag address`: the summary, or with `list` the regions that pass `filter`.
pub fn address(dump: &Dump, format: Format, list: bool, filter: &RegionFilter) -> String {
    let process = Process::load(dump);
    let map = regions::classify(dump, &process);
    let selected = || map.regions.iter().filter(|r| filter.matches(r));
    let summary = summary::summarize(&map);
    match (format, list) {
        (Format::Json, _) => {
            let listed = list.then(|| selected().map(json::RegionJson::new).collect());
            to_json(&json::AddressJson::new(
                &summary,
                listed,
                map.problems.clone(),
            ))
        }
        (Format::Csv, true) => csv::regions_csv(selected()),
        (Format::Csv, false) => csv::summary_csv(&summary),
        (Format::Text, true) => address::regions_text(selected(), map.bits),
        (Format::Text, false) => address::summary_text(&summary, map.bits, &map.problems),
    }
}
