//! `colloquy keys`: make, list and revoke the API keys of `COLLOQUY_AUTH=keys`,
//! in the database `DATABASE_URL` names, as the server opens it.
//!
//! Every replica looks a key up on each request, so a key made or revoked
//! here counts on all of them from their next request on.

use std::io::Write;
use std::time::SystemTime;

use anyhow::{bail, Context as _};
use clap::Subcommand;
use colloquy_auth::ApiKeys;
use colloquy_domain::{ApiKeyId, Principal, Timestamp};
use colloquy_ports::ApiKeyRecord;
use serde_json::{json, Value};

use crate::application::open_store;

/// Longest label a key may carry, in characters.
const MAX_LABEL_CHARS: usize = 200;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make an API key for a principal and print it, once, on the last line
    /// (only its hash is stored).
    Create {
        /// Whom requests carrying the key act for.
        #[arg(long)]
        principal: String,
        /// What the key is for (`ci`, `laptop`…), shown by `keys list`.
        #[arg(long)]
        label: Option<String>,
    },
    /// List every key, revoked ones included, oldest first.
    List {
        /// Print a JSON array of objects with `id`, `principal`, `label`,
        /// `created_at`, `last_used_at` and `revoked_at` instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: every request carrying it is refused from then on.
    Revoke {
        /// The key's id, as `keys create` and `keys list` show it.
        id: String,
    },
}

/// Runs `command` against the database at `database_url`, writing what it
/// shows to `out`.
///
/// # Errors
/// Bad arguments (checked before the database is opened), a database that
/// cannot be opened, a failing store, or revoking an id no key has.
pub async fn run(
    database_url: &str,
    command: KeysCommand,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create { principal, label } => {
            let principal = Principal::parse(&principal).context("--principal")?;
            let label = parse_label(label)?;
            let store = open_store(database_url).await?;
            let issued = ApiKeys::issue(&*store, principal.clone(), label).await?;
            writeln!(
                out,
                "created API key {} for principal {principal}; it is shown only this once:",
                issued.id
            )?;
            writeln!(out, "{}", issued.key)?;
        }
        KeysCommand::List { json } => {
            let keys = open_store(database_url)
                .await?
                .list_api_keys()
                .await
                .context("listing the API keys")?;
            if json {
                let keys: Vec<Value> = keys.iter().map(as_json).collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&keys)?)?;
            } else {
                write_table(out, &keys)?;
            }
        }
        KeysCommand::Revoke { id } => {
            let id = ApiKeyId::parse(&id)?;
            let store = open_store(database_url).await?;
            let revoked = store
                .revoke_api_key(id, Timestamp::now())
                .await
                .context("revoking the API key")?;
            if revoked {
                writeln!(out, "revoked API key {id}")?;
            } else {
                // False is "unknown" or "revoked already": say which.
                let keys = store
                    .list_api_keys()
                    .await
                    .context("listing the API keys")?;
                match keys
                    .iter()
                    .find(|key| key.id == id)
                    .and_then(|key| key.revoked_at)
                {
                    Some(at) => writeln!(
                        out,
                        "API key {id} was already revoked at {}",
                        rfc3339_seconds(at)
                    )?,
                    None => bail!("there is no API key {id} (`colloquy keys list` shows them)"),
                }
            }
        }
    }
    Ok(())
}

/// An empty label is no label; one that would break the table's lines is refused.
fn parse_label(label: Option<String>) -> anyhow::Result<Option<String>> {
    let Some(label) = label.filter(|label| !label.trim().is_empty()) else {
        return Ok(None);
    };
    if label.chars().any(char::is_control) {
        bail!("--label must be one line without control characters");
    }
    let chars = label.chars().count();
    if chars > MAX_LABEL_CHARS {
        bail!("--label is {chars} characters long; at most {MAX_LABEL_CHARS} are allowed");
    }
    Ok(Some(label))
}

/// One key as `keys list --json` prints it: the fields the contract names, no others.
fn as_json(key: &ApiKeyRecord) -> Value {
    json!({
        "id": key.id.to_string(),
        "principal": key.principal.as_str(),
        "label": key.label,
        "created_at": rfc3339(key.created_at),
        "last_used_at": key.last_used_at.map(rfc3339),
        "revoked_at": key.revoked_at.map(rfc3339),
    })
}

fn write_table(out: &mut impl Write, keys: &[ApiKeyRecord]) -> std::io::Result<()> {
    if keys.is_empty() {
        return writeln!(
            out,
            "no API keys yet: `colloquy keys create --principal NAME` makes one"
        );
    }
    let never = || "-".to_owned();
    let mut rows = vec![[
        "ID".to_owned(),
        "PRINCIPAL".to_owned(),
        "LABEL".to_owned(),
        "CREATED".to_owned(),
        "LAST USED".to_owned(),
        "REVOKED".to_owned(),
    ]];
    rows.extend(keys.iter().map(|key| {
        [
            key.id.to_string(),
            key.principal.to_string(),
            key.label.clone().unwrap_or_else(never),
            rfc3339_seconds(key.created_at),
            key.last_used_at.map_or_else(never, rfc3339_seconds),
            key.revoked_at.map_or_else(never, rfc3339_seconds),
        ]
    }));
    let mut widths = [0; 6];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in &rows {
        let mut line = String::new();
        for (index, (cell, width)) in row.iter().zip(widths).enumerate() {
            if index + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// As the HTTP API writes times: RFC 3339, UTC, microseconds.
fn rfc3339(at: Timestamp) -> String {
    humantime::format_rfc3339_micros(system_time(at)).to_string()
}

/// RFC 3339 to the second, for people reading the table.
fn rfc3339_seconds(at: Timestamp) -> String {
    humantime::format_rfc3339_seconds(system_time(at)).to_string()
}

/// humantime cannot write a time before 1970; no key is that old.
fn system_time(at: Timestamp) -> SystemTime {
    at.to_system_time().max(SystemTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_one_line_and_not_too_long() {
        assert_eq!(parse_label(None).unwrap(), None);
        assert_eq!(parse_label(Some("  ".to_owned())).unwrap(), None);
        assert_eq!(
            parse_label(Some("ci runner".to_owned()))
                .unwrap()
                .as_deref(),
            Some("ci runner")
        );
        assert!(parse_label(Some("two\nlines".to_owned())).is_err());
        assert!(parse_label(Some("x".repeat(MAX_LABEL_CHARS + 1))).is_err());
    }
}
