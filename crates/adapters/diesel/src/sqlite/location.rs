//! Where the database lives, from the forms a user may write it in.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

/// A parsed database location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// A database file, created when missing.
    File(PathBuf),
    /// A private in-memory database, gone when its only connection closes.
    Memory,
}

impl Location {
    /// Accepts a plain path, `sqlite://PATH`, `sqlite:PATH`, and `:memory:`
    /// (also as `sqlite::memory:` or `sqlite://:memory:`).
    ///
    /// `sqlite:///var/lib/colloquy.db` names an absolute path and
    /// `sqlite://colloquy.db` a relative one, as in sqlx and Diesel's CLI.
    pub(crate) fn parse(input: &str) -> anyhow::Result<Self> {
        let path = input
            .strip_prefix("sqlite://")
            .or_else(|| input.strip_prefix("sqlite:"));
        if let Some(path) = path {
            // sqlx-style options (`?mode=rwc`) would otherwise silently become
            // part of the file name; colloquy sets its own pragmas instead.
            if path.contains('?') {
                bail!("`{input}`: query parameters are not supported in a SQLite URL; give just the path");
            }
        }
        let path = path.unwrap_or(input);
        if path.is_empty() {
            bail!("`{input}`: the SQLite database path is empty");
        }
        if path == ":memory:" {
            return Ok(Self::Memory);
        }
        Ok(Self::File(PathBuf::from(path)))
    }

    /// Creates the parent directory of a database file, so that a fresh
    /// deployment can point at `data/colloquy.db` without a setup step.
    /// SQLite creates the file itself.
    pub(crate) fn prepare(&self) -> anyhow::Result<()> {
        if let Self::File(path) = self {
            if let Some(parent) = path
                .parent()
                .filter(|parent| !parent.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create the directory {}", parent.display()))?;
            }
        }
        Ok(())
    }

    /// What SQLite is given to open: a `file:` URI for files, so that no
    /// character of the path (`?`, `#`, `%`, a leading `file:`) is read as
    /// URI syntax. Diesel opens with `SQLITE_OPEN_URI`.
    pub(crate) fn to_sqlite_uri(&self) -> anyhow::Result<String> {
        match self {
            Self::Memory => Ok(":memory:".to_owned()),
            Self::File(path) => file_uri(path),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str(":memory:"),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}

fn file_uri(path: &Path) -> anyhow::Result<String> {
    let Some(text) = path.to_str() else {
        bail!(
            "the SQLite database path {} is not valid UTF-8",
            path.display()
        );
    };
    // An absolute path gets an empty authority (`file:///tmp/x`): without it a
    // path starting with `//` would be read as a host name.
    let mut uri = String::from(if text.starts_with('/') {
        "file://"
    } else {
        "file:"
    });
    for character in text.chars() {
        match character {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3F"),
            '#' => uri.push_str("%23"),
            other => uri.push(other),
        }
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_paths_urls_and_memory() {
        let file = |path: &str| Location::File(PathBuf::from(path));
        assert_eq!(
            Location::parse("data/colloquy.db").unwrap(),
            file("data/colloquy.db")
        );
        assert_eq!(
            Location::parse("sqlite:///var/lib/c.db").unwrap(),
            file("/var/lib/c.db")
        );
        assert_eq!(Location::parse("sqlite://c.db").unwrap(), file("c.db"));
        assert_eq!(Location::parse("sqlite:c.db").unwrap(), file("c.db"));
        for memory in [":memory:", "sqlite::memory:", "sqlite://:memory:"] {
            assert_eq!(
                Location::parse(memory).unwrap(),
                Location::Memory,
                "{memory}"
            );
        }
    }

    #[test]
    fn refuses_empty_paths_and_url_options() {
        for input in ["", "sqlite://", "sqlite:", "sqlite://c.db?mode=rwc"] {
            assert!(
                Location::parse(input).is_err(),
                "{input:?} should be refused"
            );
        }
    }

    #[test]
    fn uri_escapes_what_sqlite_would_read_as_syntax() {
        let uri = |path: &str| Location::File(PathBuf::from(path)).to_sqlite_uri().unwrap();
        assert_eq!(uri("/tmp/a b/c.db"), "file:///tmp/a b/c.db");
        assert_eq!(uri("rel/c.db"), "file:rel/c.db");
        assert_eq!(uri("/tmp/100%?#.db"), "file:///tmp/100%25%3F%23.db");
        assert_eq!(uri("/tmp/café.db"), "file:///tmp/café.db");
        assert_eq!(Location::Memory.to_sqlite_uri().unwrap(), ":memory:");
    }
}
