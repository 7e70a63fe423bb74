//! How a run ends: [`Exit`], with the exit codes the README documents, and [`Error`], a run that
//! stops with a one-line message.

use std::fmt;
use std::path::Path;

/// How a run ends, each with its exit code (the README's table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Success (problems inside the dump are reported in the output). Exit code 0.
    Success,
    /// `diff --fail-over`: the growth is over the limit; the report is still printed. Exit code 1.
    Gate,
    /// A bad command line. Exit code 2.
    Usage,
    /// The file cannot be opened: missing, a directory, no permission. Exit code 3.
    Open,
    /// Not a minidump, or its header or stream directory is damaged. Exit code 4.
    NotMinidump,
    /// The dump does not hold what was asked (`block ADDR` outside every block). Exit code 5.
    NotAnswerable,
    /// `diff`: the two dumps cannot be compared. Exit code 6.
    Incomparable,
}

impl Exit {
    /// Every way a run ends, by exit code.
    pub const ALL: [Exit; 7] = [
        Exit::Success,
        Exit::Gate,
        Exit::Usage,
        Exit::Open,
        Exit::NotMinidump,
        Exit::NotAnswerable,
        Exit::Incomparable,
    ];

    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Gate => 1,
            Exit::Usage => 2,
            Exit::Open => 3,
            Exit::NotMinidump => 4,
            Exit::NotAnswerable => 5,
            Exit::Incomparable => 6,
        }
    }
}

/// A run that stops: how it ends and one line saying why.
#[derive(Clone, Debug)]
pub struct Error {
    /// How the run ends.
    pub exit: Exit,
    /// One line, no trailing period.
    pub message: String,
}

impl Error {
    /// An error about the file `path`: `path: message`.
    pub fn file(exit: Exit, path: &Path, message: impl fmt::Display) -> Self {
        Error {
            exit,
            message: format!("{}: {message}", path.display()),
        }
    }

    /// An error that is not about one file.
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Error {
            exit,
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's exit-code table: (code, meaning).
    fn readme_table() -> Vec<(u8, String)> {
        let readme = include_str!("../README.md");
        let section = readme
            .split("## Exit codes")
            .nth(1)
            .expect("the README has an exit-code section");
        section
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .filter_map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                Some((cells.get(1)?.parse().ok()?, cells.get(2)?.to_string()))
            })
            .collect()
    }

    #[test]
    fn exit_codes_are_the_readmes() {
        let table = readme_table();
        let codes: Vec<u8> = table.iter().map(|(c, _)| *c).collect();
        let ours: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        assert_eq!(codes, ours, "the README documents exactly these codes");
        let meaning = |e: Exit| &table.iter().find(|(c, _)| *c == e.code()).unwrap().1;
        for (e, words) in [
            (Exit::Success, "success"),
            (Exit::Gate, "--fail-over"),
            (Exit::Usage, "bad command line"),
            (Exit::Open, "cannot be opened"),
            (Exit::NotMinidump, "not a minidump"),
            (Exit::NotAnswerable, "does not hold what was asked"),
            (Exit::Incomparable, "cannot be compared"),
        ] {
            assert!(meaning(e).contains(words), "{e:?}: {}", meaning(e));
        }
    }
}
