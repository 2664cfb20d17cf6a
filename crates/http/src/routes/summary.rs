//! `GET /api/v1/sessions/{id}/summary`: what a session holds, counted from
//! the store, and what it is about, in the model's words.

use actix_web::{web, HttpResponse};
use colloquy_app::{ChatService, MessageCounts, SessionSummary};
use serde::Serialize;
use utoipa::ToSchema;

use super::sessions::session_id;
use crate::wire::{rfc3339, UsageBody};
use crate::{ApiError, Caller};

/// How many messages of each role a session holds.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = MessageCounts)]
pub struct MessageCountsBody {
    pub user: u64,
    pub assistant: u64,
    pub total: u64,
}

impl From<MessageCounts> for MessageCountsBody {
    fn from(counts: MessageCounts) -> Self {
        Self {
            user: counts.user,
            assistant: counts.assistant,
            total: counts.total,
        }
    }
}

/// A session's summary: counts and usage from the store, the prose from the model.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Summary)]
pub struct SummaryBody {
    pub session_id: String,
    pub message_count: MessageCountsBody,
    /// Summed over every reply.
    pub usage: UsageBody,
    /// `null` while the session has no messages.
    pub first_message_at: Option<String>,
    pub last_message_at: Option<String>,
    pub summary: String,
    pub highlights: Vec<String>,
    pub topics: Vec<String>,
}

impl From<SessionSummary> for SummaryBody {
    fn from(summary: SessionSummary) -> Self {
        Self {
            session_id: summary.session_id.to_string(),
            message_count: summary.message_count.into(),
            usage: summary.usage.into(),
            first_message_at: summary.first_message_at.map(rfc3339),
            last_message_at: summary.last_message_at.map(rfc3339),
            summary: summary.summary,
            highlights: summary.highlights,
            topics: summary.topics,
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/sessions/{session_id}/summary",
    tag = "sessions",
    operation_id = "summarize_session",
    params(("session_id" = String, Path, description = "The session's id (a UUID).")),
    responses(
        (status = 200, description = "The session's summary; cached until the session changes.", body = SummaryBody),
        (status = 502, description = "The model failed or answered with something other than a summary.",
            body = ApiError, content_type = "application/problem+json"),
        (status = 503, description = "The model is rate limited or unreachable right now.",
            body = ApiError, content_type = "application/problem+json"),
    )
)]
pub async fn summary(
    service: web::Data<ChatService>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let summary = service.summarize(&caller.0, session_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(SummaryBody::from(summary)))
}
