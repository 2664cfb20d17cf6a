//! Finding and moving conversations: search over the caller's messages,
//! the export of a session (JSON or Markdown), and the import of one.

use actix_web::http::header::{self, ContentDisposition, DispositionParam, DispositionType};
use actix_web::{web, HttpRequest, HttpResponse};
use colloquy_app::{ChatError, ChatService};

use super::sessions::{location, session_id};
use crate::archive::{attachment_name, read_import, transcript, ImportRequest};
use crate::body::{parse_limit, query, JsonBytes};
use crate::wire::{
    message_id, ExportBody, ExportQuery, PageBody, SearchHitBody, SearchQuery, SessionBody,
};
use crate::{ApiError, Caller};

/// Search the caller's messages.
///
/// Full-text, on every branch of every session of the caller's, newest
/// first: a message matches when it holds every word of `q`. The
/// `snippet` shows where, each word found between `«` and `»`. Messages of
/// deleted sessions are never found.
#[utoipa::path(
    get,
    path = "/api/v1/search",
    tag = "archive",
    operation_id = "search_messages",
    params(SearchQuery),
    responses(
        (status = 200, description = "A page of hits, newest first.", body = PageBody<SearchHitBody>),
        (status = 422, description = "`q` is missing, holds no word, or is too long (256 characters, \
            16 words); or `limit` is not from 1 to 100.", body = ApiError, content_type = "application/problem+json"),
    )
)]
pub async fn search(
    service: web::Data<ChatService>,
    caller: Caller,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query: SearchQuery = query(&request)?;
    let limit = parse_limit(query.limit.as_deref(), 20, 100)?;
    let after = query
        .after
        .as_deref()
        .map(|raw| message_id(raw, "after"))
        .transpose()?;
    let Some(words) = query.q else {
        return Err(
            ChatError::BadQuery("`q`, the words to search for, is required".to_owned()).into(),
        );
    };
    let page = service.search(&caller.0, &words, limit, after).await?;
    Ok(HttpResponse::Ok().json(PageBody {
        data: page.items.iter().map(SearchHitBody::from).collect(),
        has_more: page.has_more,
    }))
}

/// The formats of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Markdown,
}

impl Format {
    fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        match raw {
            None | Some("json") => Ok(Self::Json),
            Some("markdown") => Ok(Self::Markdown),
            Some(other) => Err(ApiError::invalid(format!(
                "`format` is `{other}`; an export is `json` or `markdown`"
            ))),
        }
    }
}

/// Export a session.
///
/// `format=json` (the default): `colloquy.v1`, the session and every
/// message of every branch, each with its `parent_id`, which
/// `POST /api/v1/sessions/import` reads back. `format=markdown`: the
/// active branch as a transcript to read. Either comes as an attachment
/// (`Content-Disposition`) named after the session's title.
#[utoipa::path(
    get,
    path = "/api/v1/sessions/{session_id}/export",
    tag = "archive",
    operation_id = "export_session",
    params(("session_id" = String, Path, format = "uuid", description = "The session's id."), ExportQuery),
    responses(
        (status = 200, description = "The export.",
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"…\"`.")),
            content(
                (ExportBody = "application/json"),
                (String = "text/markdown; charset=utf-8", example = "# Trip to Lisbon\n\n### You · 2026-11-23T10:15:31Z\n\nWhich tram?\n"),
            )),
        (status = 422, description = "`format` is neither `json` nor `markdown`.",
            body = ApiError, content_type = "application/problem+json"),
    )
)]
pub async fn export(
    service: web::Data<ChatService>,
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let query: ExportQuery = query(&request)?;
    let format = Format::parse(query.format.as_deref())?;
    let exported = service
        .export(&caller.0, id, format == Format::Json)
        .await?;
    let extension = match format {
        Format::Json => "json",
        Format::Markdown => "md",
    };
    let mut response = HttpResponse::Ok();
    response.insert_header(ContentDisposition {
        disposition: DispositionType::Attachment,
        parameters: vec![DispositionParam::Filename(attachment_name(
            &exported.session,
            extension,
        ))],
    });
    Ok(match format {
        Format::Json => response.json(ExportBody::from(&exported)),
        Format::Markdown => response
            .insert_header((header::CONTENT_TYPE, "text/markdown; charset=utf-8"))
            .body(transcript(&exported)),
    })
}

/// Import a conversation as a new session.
///
/// The body is a `colloquy.v1` export (`GET …/export`), or one conversation
/// of a ChatGPT data export (an element of its `conversations.json`); its
/// fields say which. The new session is the caller's, with new ids and the
/// same tree, roles, texts, names and times; its head is the export's
/// `head_message_id` (ChatGPT's `current_node`). From a ChatGPT
/// conversation, system and tool messages and those without text are left
/// out, and what followed them joins the nearest message kept above. The
/// body may hold up to 16 MiB (`MAX_IMPORT_BYTES`) and 10,000 messages.
/// Nothing is stored unless all of it is.
#[utoipa::path(
    post,
    path = "/api/v1/sessions/import",
    tag = "archive",
    operation_id = "import_session",
    request_body(content = ImportRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The new session.", body = SessionBody,
            headers(("Location" = String, description = "The session's URL."))),
        (status = 413, description = "The body is over 16 MiB.", body = ApiError,
            content_type = "application/problem+json"),
        (status = 422, description = "JSON that is not a conversation colloquy can import: neither \
            format, a message of another role, a parent or head that is not in the conversation, \
            messages in a circle, a bad time, too many messages or too long a text. `detail` says \
            what and where.", body = ApiError, content_type = "application/problem+json"),
    )
)]
pub async fn import(
    service: web::Data<ChatService>,
    caller: Caller,
    JsonBytes(body): JsonBytes,
) -> Result<HttpResponse, ApiError> {
    // Up to 16 MiB of JSON: read on the blocking pool, off the reactor.
    let imported = web::block(move || read_import(&body))
        .await
        .map_err(|error| ChatError::Unexpected(anyhow::anyhow!("reading an import: {error}")))??;
    let session = service.import_session(&caller.0, imported).await?;
    Ok(HttpResponse::Created()
        .insert_header(location(&session))
        .json(SessionBody::from(&session)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_is_json_unless_it_asks_for_markdown() {
        assert_eq!(Format::parse(None), Ok(Format::Json));
        assert_eq!(Format::parse(Some("json")), Ok(Format::Json));
        assert_eq!(Format::parse(Some("markdown")), Ok(Format::Markdown));
        for other in ["md", "JSON", "pdf", ""] {
            assert_eq!(
                Format::parse(Some(other)),
                Err(ApiError::invalid(format!(
                    "`format` is `{other}`; an export is `json` or `markdown`"
                )))
            );
        }
    }
}
