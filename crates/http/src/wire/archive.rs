//! The JSON of search and export. What an import reads is in `archive/`,
//! beside the code that reads it.

use colloquy_app::Exported;
use colloquy_ports::SearchHit;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{rfc3339, role_schema, MessageBody, SessionBody};

/// The `format` of colloquy's JSON export, which its import reads back.
pub const EXPORT_FORMAT: &str = "colloquy.v1";

/// `GET /api/v1/search?q=&limit=&after=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// The words to find, separated by spaces; every one must be in a
    /// message for it to match (whole words, case and accents ignored).
    /// No operators or quotes: they are searched for as text.
    #[param(value_type = String, required = true, max_length = 256, example = "lisbon tram")]
    pub q: Option<String>,
    /// How many hits to return, newest first.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<String>,
    /// The `message_id` of the last hit of the previous page.
    #[param(value_type = Option<String>, format = "uuid")]
    pub after: Option<String>,
}

/// A message of the caller's that holds every word searched for.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SearchHit)]
pub struct SearchHitBody {
    #[schema(format = "uuid")]
    pub session_id: String,
    #[schema(required = true, example = "Trip to Lisbon")]
    pub session_title: Option<String>,
    /// Open the conversation at it with `GET …/messages?leaf={message_id}`.
    #[schema(format = "uuid")]
    pub message_id: String,
    #[schema(schema_with = role_schema)]
    pub role: &'static str,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The matching part of the text, each word found between `«` and `»`.
    #[schema(example = "…the «tram» 28 crosses «Lisbon» from…")]
    pub snippet: String,
}

impl From<&SearchHit> for SearchHitBody {
    fn from(hit: &SearchHit) -> Self {
        Self {
            session_id: hit.session_id.to_string(),
            session_title: hit.session_title.as_ref().map(|t| t.as_str().to_owned()),
            message_id: hit.message_id.to_string(),
            role: hit.role.as_str(),
            created_at: rfc3339(hit.created_at),
            snippet: hit.snippet.clone(),
        }
    }
}

/// `GET /api/v1/sessions/{id}/export?format=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `json`: `colloquy.v1`, every branch, which `POST /api/v1/sessions/import`
    /// reads back; `markdown`: the active branch as a transcript to read.
    #[param(value_type = Option<String>, pattern = "^(json|markdown)$", default = "json")]
    pub format: Option<String>,
}

/// A session with every message of every branch: what an import reads back.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Export)]
pub struct ExportBody {
    #[schema(pattern = "^colloquy\\.v1$", example = "colloquy.v1")]
    pub format: &'static str,
    pub session: SessionBody,
    /// Every message of every branch, parents before their children.
    pub messages: Vec<MessageBody>,
}

impl From<&Exported> for ExportBody {
    fn from(exported: &Exported) -> Self {
        Self {
            format: EXPORT_FORMAT,
            session: SessionBody::from(&exported.session),
            messages: exported.messages.iter().map(MessageBody::from).collect(),
        }
    }
}
