//! Errors that stop a command, each with the exit code the README documents.

use std::fmt;
use std::path::{Path, PathBuf};

/// What went wrong, which decides the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file could not be opened or mapped (missing, a directory, no permission). Exit code 3.
    Open,
    /// The file is not a minidump, or its header or stream directory is damaged. Exit code 4.
    NotMinidump,
}

/// A command-stopping error: the file it concerns and a one-line description.
#[derive(Clone, Debug)]
pub struct Error {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// The dump file.
    pub path: PathBuf,
    /// One line, no trailing period.
    pub message: String,
}

impl Error {
    /// Build an error about `path`.
    pub fn new(kind: ErrorKind, path: &Path, message: impl Into<String>) -> Self {
        Self {
            kind,
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    /// The process exit code for this error (see the README's table).
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            ErrorKind::Open => 3,
            ErrorKind::NotMinidump => 4,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for Error {}
