//! `GET /openapi.json` (generated from the routes' annotations) and Swagger
//! UI at `/docs`, its files compiled into the binary so it works offline.

use std::sync::{Arc, OnceLock};

use actix_web::{web, HttpResponse};
use utoipa::openapi::path::{HttpMethod, Operation, ParameterIn};
use utoipa::openapi::response::Response;
use utoipa::openapi::schema::{
    AllOfBuilder, AnyOfBuilder, ObjectBuilder, OneOfBuilder, Ref, Schema, SchemaFormat, SchemaType,
    Type,
};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Content, Header, OpenApi as Document, RefOr, Required};
use utoipa::{Modify, OpenApi, PartialSchema};

use super::{
    account, archive, assistants, branches, compat, health, messages, sessions, socket, summary,
};
use crate::problem::PROBLEM_JSON;
use crate::{sse, telemetry, ApiError};

/// The security scheme of `Authorization: Bearer`: an API key or a JWT.
const BEARER: &str = "bearer";
/// The security scheme of `?token=` on event streams.
const STREAM_TOKEN: &str = "stream_token";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "colloquy",
        description = "A chat backend: sessions, messages, and replies streamed from a language model \
            as Server-Sent Events. Every error is `application/problem+json` (RFC 9457); every response \
            carries an `X-Request-Id`.",
    ),
    paths(
        sessions::create, sessions::list, sessions::get, sessions::update, sessions::delete,
        messages::send, messages::replies, messages::list, messages::events, socket::open, messages::cancel, messages::stream_token, summary::summary,
        branches::regenerate, branches::edit,
        archive::search, archive::export, archive::import,
        assistants::create, assistants::list, assistants::get, assistants::update, assistants::delete,
        account::me, account::models,
        compat::create_session,
        health::live, health::ready, health::metrics, openapi_json, swagger_ui,
    ),
    components(schemas(ApiError, sse::DeltaBody, sse::ToolCallEventBody, sse::ResetBody, sse::ResyncBody)),
    tags(
        (name = "sessions", description = "Chats and their settings."),
        (name = "messages", description = "Sending, discussions between assistants, history, live events (SSE or WebSocket), cancelling."),
        (name = "branches", description = "Reworking a conversation: a regenerated reply or an edited question becomes a new branch beside the old one (switch with `PATCH …/sessions/{id}` `{\"head_message_id\"}`)."),
        (name = "archive", description = "Full-text search over the caller's messages; a session's export (JSON with every branch, or Markdown) and the import of one, or of a ChatGPT conversation."),
        (name = "assistants", description = "Named voices with their own instructions, model and tools, several of which may answer in one turn."),
        (name = "account", description = "Who is asking: the principal, its limits and usage, the models offered."),
        (name = "compatibility", description = "The original assignment's routes; each shares its handler with an `/api/v1` route."),
        (name = "operations", description = "Health, readiness, metrics and these docs."),
    ),
    modifiers(&Conventions),
)]
struct ApiDoc;

/// What holds for every route and is written once here rather than on each:
/// the `X-Request-Id` header, the problem responses the contract's error
/// table implies, who must present credentials, the compatibility aliases,
/// and the shape of an event.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, document: &mut Document) {
        for (path, item) in &mut document.paths.paths {
            for operation in operations(item) {
                if path.starts_with("/api/") {
                    add_problems(path, operation);
                }
                operation.security = security(path, operation);
                tighten_parameters(operation);
                if OPTIONAL_BODIES.contains(&operation.operation_id.as_deref().unwrap_or_default())
                {
                    if let Some(RefOr::T(body)) = &mut operation.request_body {
                        body.required = Some(Required::False);
                    }
                }
                for response in operation.responses.responses.values_mut() {
                    if let RefOr::T(response) = response {
                        response.headers.insert(
                            telemetry::REQUEST_ID.as_str().to_owned(),
                            request_id_header(),
                        );
                    }
                }
            }
        }
        add_aliases(document);
        add_web_page(document);
        let components = document.components.get_or_insert_with(Default::default);
        add_security_schemes(components);
        components
            .schemas
            .insert("ServerSentEvent".to_owned(), RefOr::T(server_sent_event()));
        // The text is required, under either name: a derive cannot say so.
        if let Some(send) = components.schemas.remove("SendMessageRequest") {
            let either = AnyOfBuilder::new()
                .item(ObjectBuilder::new().required("content"))
                .item(ObjectBuilder::new().required("message"));
            components.schemas.insert(
                "SendMessageRequest".to_owned(),
                AllOfBuilder::new().item(send).item(either).into(),
            );
        }
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.post,
        &mut item.patch,
        &mut item.delete,
        &mut item.put,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

fn request_id_header() -> RefOr<Header> {
    let mut header = Header::new(String::schema());
    header.description =
        Some("The request's id: the client's own if it sent one, else a new UUID.".to_owned());
    RefOr::T(header)
}

/// Operations whose body may be left out entirely.
const OPTIONAL_BODIES: [&str; 3] = [
    "create_session",
    "compat_create_session",
    "regenerate_message",
];

/// A path or query parameter or a header is text: an `Option` makes it
/// optional, never JSON `null`. Every `session_id`, `assistant_id` and
/// `message_id` is a UUID, whoever annotated the route.
fn tighten_parameters(operation: &mut Operation) {
    for parameter in operation.parameters.iter_mut().flatten() {
        let RefOr::T(parameter) = parameter else {
            continue;
        };
        let Some(RefOr::T(Schema::Object(schema))) = &mut parameter.schema else {
            continue;
        };
        if let SchemaType::Array(types) = &schema.schema_type {
            if let [only] = types
                .iter()
                .filter(|kind| **kind != Type::Null)
                .collect::<Vec<_>>()[..]
            {
                schema.schema_type = SchemaType::Type(only.clone());
            }
        }
        if ID_PARAMETERS.contains(&parameter.name.as_str())
            && parameter.parameter_in == ParameterIn::Path
        {
            schema.format = Some(SchemaFormat::Custom("uuid".to_owned()));
        }
    }
}

/// The path parameters that are ids of the contract's resources.
const ID_PARAMETERS: [&str; 3] = ["session_id", "assistant_id", "message_id"];

/// The contract's error table, applied to what an operation takes.
fn add_problems(path: &str, operation: &mut Operation) {
    let mut statuses = vec![500, 503];
    if path.starts_with("/api/") {
        // With `COLLOQUY_AUTH=keys` or `jwt`, every API route needs
        // credentials; a browser page must be allowed; every request counts
        // against the caller's limits.
        statuses.extend([401, 403, 429]);
    }
    if ID_PARAMETERS
        .iter()
        .any(|id| path.contains(&format!("{{{id}}}")))
    {
        statuses.extend([400, 404]);
    }
    for parameter in operation.parameters.iter().flatten() {
        if let RefOr::T(parameter) = parameter {
            if parameter.parameter_in == ParameterIn::Query {
                // A query that does not decode is a `400`; a bad `limit` a `422`.
                statuses.push(if parameter.name == "limit" { 422 } else { 400 });
            }
        }
    }
    if operation.request_body.is_some() {
        statuses.extend([400, 408, 413, 415, 422]);
    }
    statuses.sort_unstable();
    statuses.dedup();
    for status in statuses {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| {
                let mut problem = Response::builder()
                    .description(problem_description(path, status))
                    .content(
                        PROBLEM_JSON,
                        Content::new(Some(Ref::from_schema_name("Problem"))),
                    );
                if matches!(status, 429 | 503) {
                    problem = problem.header("Retry-After", retry_after_header());
                }
                RefOr::T(problem.build())
            });
    }
}

fn retry_after_header() -> Header {
    let mut header = Header::new(
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1)),
    );
    header.description = Some("Seconds to wait before trying again.".to_owned());
    header
}

/// Every `/api` route takes `Authorization: Bearer` (which a server with
/// `COLLOQUY_AUTH=none` ignores); an event stream takes a stream token in
/// `?token=` instead, for `EventSource`. `/metrics` takes the metrics token
/// when `COLLOQUY_METRICS_TOKEN` is set, and nothing otherwise. The probes,
/// the docs and the page take none.
fn security(path: &str, operation: &Operation) -> Option<Vec<SecurityRequirement>> {
    let bearer = || SecurityRequirement::new(BEARER, Vec::<String>::new());
    if path.starts_with("/api/") {
        let takes_stream_token = operation.parameters.iter().flatten().any(|parameter| {
            matches!(parameter, RefOr::T(parameter)
                if parameter.parameter_in == ParameterIn::Query && parameter.name == "token")
        });
        let mut requirements = vec![bearer()];
        if takes_stream_token {
            requirements.push(SecurityRequirement::new(STREAM_TOKEN, Vec::<String>::new()));
        }
        Some(requirements)
    } else if path == "/metrics" {
        Some(vec![SecurityRequirement::default(), bearer()])
    } else {
        None
    }
}

fn add_security_schemes(components: &mut utoipa::openapi::Components) {
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "An API key (`COLLOQUY_AUTH=keys`, made with `colloquy keys create`) or a JWT \
                     (`COLLOQUY_AUTH=jwt`); a server with `COLLOQUY_AUTH=none` needs none. On \
                     `/metrics`: the token of `COLLOQUY_METRICS_TOKEN`.",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        STREAM_TOKEN,
        SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
            "token",
            "A stream token of this session (`POST /api/v1/sessions/{session_id}/stream-token`), \
             for clients that cannot send `Authorization`, such as a browser's `EventSource` or `WebSocket`.",
        ))),
    );
}

fn problem_description(path: &str, status: u16) -> &'static str {
    match status {
        404 if path.contains("{assistant_id}") => {
            "There is no assistant with that id (another principal's looks the same)."
        }
        404 if path.contains("{message_id}") => {
            "There is no session with that id (another principal's looks the same), or no \
             message `message_id` in it."
        }
        400 => "A malformed JSON body, id or query parameter.",
        401 => "No, malformed, expired or revoked credentials (`WWW-Authenticate: Bearer`), when the server requires them.",
        403 => "A browser page of an origin that is not allowed (neither the server's own nor in \
            `COLLOQUY_CORS_ORIGINS`), or, on a server listening on loopback, a `Host` that is not \
            a loopback name or address.",
        408 => "The body did not arrive within `COLLOQUY_CLIENT_TIMEOUT_SECS`.",
        429 => "A limit was reached (requests per minute, replies or streams at once, tokens per \
            day): `limit` says which, `Retry-After` when to try again.",
        404 => "There is no session with that id (another principal's looks the same).",
        413 => "The body is over 1 MiB.",
        415 => "The body is not JSON.",
        422 => "A value is invalid: empty or too long content, a missing field, a bad `limit`, \
            a model not in `COLLOQUY_MODELS`, a tool not in `COLLOQUY_TOOLS`, a turn naming no \
            assistant or more than 8.",
        503 => "The database is unreachable, or the server is shutting down; try again shortly.",
        _ => "Something went wrong on the server; it has been logged with the request's id.",
    }
}

/// The compatibility routes that share an `/api/v1` handler share its
/// documentation too: a copy of the operation, under the old path.
fn add_aliases(document: &mut Document) {
    for (alias, method, original) in compat::ALIASES {
        let Some(mut operation) = document
            .paths
            .get_path_operation(original, method.clone())
            .cloned()
        else {
            continue;
        };
        operation.operation_id = operation.operation_id.map(|id| format!("compat_{id}"));
        operation.tags = Some(vec!["compatibility".to_owned()]);
        operation.summary = operation.summary.map(|summary| {
            format!(
                "{} (the original assignment's route).",
                summary.trim_end_matches('.')
            )
        });
        let method_name = if method == HttpMethod::Get {
            "GET"
        } else {
            "POST"
        };
        operation.description = Some(format!(
            "Same as `{method_name} {original}`.\n\n{}",
            operation.description.unwrap_or_default()
        ));
        document
            .paths
            .add_path_operation(alias, vec![method], operation);
    }
}

/// `GET /`, the web chat page (routes/page.rs), is documented here: it is
/// HTML for people, not an API, and its module stays free of API concerns.
fn add_web_page(document: &mut Document) {
    let mut page = Response::builder()
        .description("The web chat page: HTML that loads its script and style from `/assets/…`.")
        .content("text/html", Content::new(Some(String::schema())))
        .build();
    page.headers.insert(
        telemetry::REQUEST_ID.as_str().to_owned(),
        request_id_header(),
    );
    let mut operation = Operation::new();
    operation.operation_id = Some("web_page".to_owned());
    operation.tags = Some(vec!["operations".to_owned()]);
    operation.summary = Some("The web chat page.".to_owned());
    operation
        .responses
        .responses
        .insert("200".to_owned(), RefOr::T(page));
    document
        .paths
        .add_path_operation("/", vec![HttpMethod::Get], operation);
}

/// One event of a stream, as `EventSource` hands it over, and the schema of
/// the `text/event-stream` responses: OpenAPI 3.1 has no `itemSchema` (3.2
/// does), so the stream's schema is that of one event, which is also how
/// schemathesis reads it. `data` is JSON text; `contentSchema` says of what,
/// per event name, so each name is held to its own data.
fn server_sent_event() -> Schema {
    let mut table = String::from(
        "One Server-Sent Event: `id:`, `event:` and a JSON `data:` line.\n\n\
         | event | data | when |\n|---|---|---|\n",
    );
    // Events sharing a data schema share a branch, named by an enum.
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for (name, schema, when) in sse::EVENTS {
        table.push_str(&format!("| `{name}` | `{schema}` | {when} |\n"));
        match groups.iter_mut().find(|(known, _)| *known == schema) {
            Some((_, names)) => names.push(name),
            None => groups.push((schema, vec![name])),
        }
    }
    let mut events = OneOfBuilder::new().description(Some(table));
    for (schema, names) in groups {
        events = events.item(
            ObjectBuilder::new()
                .property(
                    "id",
                    ObjectBuilder::new().schema_type(Type::String).description(Some(
                        "Opaque, unique in the session, increasing; send it back as `Last-Event-ID`.",
                    )),
                )
                .property(
                    "event",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(names)),
                )
                .property(
                    "data",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .content_media_type("application/json")
                        .content_schema(Some(Ref::from_schema_name(schema))),
                )
                .required("id")
                .required("event")
                .required("data"),
        );
    }
    events.into()
}

fn document() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        ApiDoc::openapi().to_json().unwrap_or_else(|error| {
            tracing::error!(%error, "the OpenAPI document could not be serialized");
            String::from("{}")
        })
    })
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document of every route.", content_type = "application/json", body = Object))
)]
async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
}

fn swagger_config() -> Arc<utoipa_swagger_ui::Config<'static>> {
    static CONFIG: OnceLock<Arc<utoipa_swagger_ui::Config<'static>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            // `validator_url("none")`: Swagger UI would otherwise fetch a
            // badge from an online validator, which offline use cannot reach.
            Arc::new(
                utoipa_swagger_ui::Config::new(["/openapi.json"])
                    .validator_url("none")
                    .try_it_out_enabled(true),
            )
        })
        .clone()
}

fn swagger_file(file: &str) -> HttpResponse {
    match utoipa_swagger_ui::serve(file, swagger_config()) {
        Ok(Some(found)) => {
            let mut response = HttpResponse::Ok();
            response.content_type(found.content_type);
            if found.gzpipped {
                response.insert_header((actix_web::http::header::CONTENT_ENCODING, "gzip"));
            }
            if file == "index.html" {
                // The page names its files relatively; `/docs` (no slash)
                // would resolve them against `/`, so anchor them to `/docs/`.
                let page = String::from_utf8_lossy(&found.bytes).replacen(
                    "<head>",
                    "<head><base href=\"/docs/\">",
                    1,
                );
                return response.body(page);
            }
            response.body(found.bytes.into_owned())
        }
        Ok(None) => actix_web::ResponseError::error_response(&ApiError::from_status(
            actix_web::http::StatusCode::NOT_FOUND,
        )),
        Err(error) => {
            tracing::error!(%error, file, "a Swagger UI file could not be served");
            actix_web::ResponseError::error_response(&ApiError::from_status(
                actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
            ))
        }
    }
}

/// Swagger UI for this document, served from the binary.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "operations",
    operation_id = "docs",
    responses((status = 200, description = "The Swagger UI page.", content_type = "text/html", body = String))
)]
async fn swagger_ui() -> HttpResponse {
    swagger_file("index.html")
}

async fn swagger_asset(file: web::Path<String>) -> HttpResponse {
    swagger_file(&file)
}

pub(super) fn register(config: &mut web::ServiceConfig) {
    config
        .service(web::resource("/openapi.json").route(web::get().to(openapi_json)))
        .service(web::resource("/docs").route(web::get().to(swagger_ui)))
        .service(web::resource("/docs/{file:.+}").route(web::get().to(swagger_asset)));
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_and_every_operation_is_unique() {
        let json: serde_json::Value = serde_json::from_str(document()).unwrap();
        assert_eq!(json["openapi"], "3.1.0");
        let mut ids = Vec::new();
        for item in json["paths"].as_object().unwrap().values() {
            for operation in item.as_object().unwrap().values() {
                ids.push(operation["operationId"].as_str().unwrap().to_owned());
            }
        }
        let count = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), count, "operation ids are unique");
    }

    #[test]
    fn api_routes_take_a_bearer_and_document_refusals_and_limits() {
        let json: serde_json::Value = serde_json::from_str(document()).unwrap();
        let schemes = &json["components"]["securitySchemes"];
        assert_eq!(schemes["bearer"]["type"], "http");
        assert_eq!(schemes["bearer"]["scheme"], "bearer");
        assert_eq!(schemes["stream_token"]["type"], "apiKey");
        assert_eq!(schemes["stream_token"]["in"], "query");
        assert_eq!(schemes["stream_token"]["name"], "token");
        let mut api_operations = 0;
        for (path, item) in json["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let security = &operation["security"];
                let responses = &operation["responses"];
                if path.starts_with("/api/") {
                    api_operations += 1;
                    assert_eq!(security[0], json!({"bearer": []}), "{method} {path}");
                    for status in ["401", "403", "429"] {
                        assert_eq!(
                            responses[status]["content"]["application/problem+json"]["schema"]
                                ["$ref"],
                            "#/components/schemas/Problem",
                            "{status} of {method} {path}"
                        );
                    }
                    assert!(
                        responses["429"]["headers"]["Retry-After"].is_object(),
                        "{method} {path}"
                    );
                    let is_events = path.ends_with("/events")
                        || path.ends_with("/ws")
                        || path.starts_with("/api/chat/receive");
                    let stream_token = json!({"stream_token": []});
                    assert_eq!(
                        security.as_array().unwrap().contains(&stream_token),
                        is_events,
                        "{method} {path}"
                    );
                } else if path == "/metrics" {
                    assert_eq!(*security, json!([{}, {"bearer": []}]));
                    assert!(responses["401"].is_object());
                } else {
                    assert!(security.is_null(), "{method} {path} takes no credentials");
                }
            }
        }
        assert!(api_operations > 10, "the API routes were checked");
        assert_eq!(
            json["paths"]["/api/v1/sessions"]["post"]["responses"]["408"]["content"]
                ["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/Problem",
            "a route with a body documents the body deadline"
        );
    }

    #[test]
    fn assistants_their_fields_and_the_replies_route_are_documented() {
        let json: serde_json::Value = serde_json::from_str(document()).unwrap();
        let paths = &json["paths"];
        let one = "/api/v1/assistants/{assistant_id}";
        for (method, path, success) in [
            ("post", "/api/v1/assistants", "201"),
            ("get", "/api/v1/assistants", "200"),
            ("get", one, "200"),
            ("patch", one, "200"),
            ("delete", one, "204"),
            ("post", "/api/v1/sessions/{session_id}/replies", "202"),
        ] {
            let operation = &paths[path][method];
            assert!(
                operation["responses"][success].is_object(),
                "{method} {path} answers {success}"
            );
        }
        for method in ["post", "patch"] {
            let path = if method == "post" {
                "/api/v1/assistants"
            } else {
                one
            };
            let conflict = &paths[path][method]["responses"]["409"];
            assert_eq!(
                conflict["content"]["application/problem+json"]["schema"]["$ref"],
                "#/components/schemas/Problem",
                "{method} {path} documents a taken name"
            );
        }
        let get = &paths[one]["get"];
        assert!(get["responses"]["404"]["description"]
            .as_str()
            .unwrap()
            .contains("no assistant"));
        assert_eq!(get["parameters"][0]["schema"]["format"], "uuid");
        assert_eq!(
            paths["/api/v1/assistants"]["post"]["responses"]["201"]["headers"]["Location"]
                ["schema"]["type"],
            "string"
        );
        let replies = &paths["/api/v1/sessions/{session_id}/replies"]["post"];
        assert!(replies["responses"]["200"]["content"]
            .get("text/event-stream")
            .is_some());
        assert!(replies["responses"]["409"].is_object());

        let schemas = &json["components"]["schemas"];
        let required = |schema: &str| -> Vec<String> {
            schemas[schema]["required"]
                .as_array()
                .unwrap_or_else(|| panic!("{schema} lists its required fields"))
                .iter()
                .map(|field| field.as_str().unwrap().to_owned())
                .collect()
        };
        for field in [
            "id",
            "name",
            "instructions",
            "model",
            "tools",
            "created_at",
            "updated_at",
        ] {
            assert!(
                required("Assistant").contains(&field.to_owned()),
                "Assistant.{field}"
            );
        }
        for field in ["assistant_id", "name"] {
            assert!(
                required("Message").contains(&field.to_owned()),
                "Message.{field}"
            );
        }
        assert!(required("Session").contains(&"assistant_id".to_owned()));
        assert!(required("SendAccepted").contains(&"assistant_messages".to_owned()));
        assert_eq!(
            schemas["SendAccepted"]["properties"]["assistant_messages"]["items"]["$ref"],
            "#/components/schemas/Message"
        );
        assert_eq!(required("RepliesRequest"), ["assistant_ids"]);
        let ids = &schemas["RepliesRequest"]["properties"]["assistant_ids"];
        assert_eq!(
            (ids["minItems"].as_u64(), ids["maxItems"].as_u64()),
            (Some(1), Some(8))
        );
        assert_eq!(required("CreateAssistantRequest"), ["name"]);
        assert!(schemas["CreateSessionRequest"]["properties"]["assistant_id"].is_object());
        assert!(schemas["PatchSessionRequest"]["properties"]["assistant_id"].is_object());
        assert!(schemas["PatchAssistantRequest"]["properties"]["instructions"].is_object());
        let send = &schemas["SendMessageRequest"]["allOf"];
        assert!(send[0]["properties"]["assistant_ids"].is_object(), "{send}");
        assert!(
            send[0]["required"].as_array().is_none_or(Vec::is_empty),
            "`content` or `message`, as the anyOf says, never both: {send}"
        );
    }

    #[test]
    fn branches_search_export_and_import_are_documented() {
        let json: serde_json::Value = serde_json::from_str(document()).unwrap();
        let paths = &json["paths"];
        let schemas = &json["components"]["schemas"];
        let regenerate = "/api/v1/sessions/{session_id}/messages/{message_id}/regenerate";
        let edit = "/api/v1/sessions/{session_id}/messages/{message_id}/edit";
        for path in [regenerate, edit] {
            let operation = &paths[path]["post"];
            for status in ["202", "404", "409", "422"] {
                assert!(
                    operation["responses"][status].is_object(),
                    "{path} {status}"
                );
            }
            assert!(
                operation["responses"]["200"]["content"]
                    .get("text/event-stream")
                    .is_some(),
                "{path} streams like a send"
            );
            assert_eq!(
                operation["responses"]["202"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/SendAccepted"
            );
            assert_eq!(operation["parameters"][1]["name"], "message_id");
            assert_eq!(operation["parameters"][1]["schema"]["format"], "uuid");
            assert!(operation["responses"]["404"]["description"]
                .as_str()
                .unwrap()
                .contains("message_id"));
        }
        assert_eq!(
            paths[regenerate]["post"]["requestBody"]["required"], false,
            "a regenerate may come without a body"
        );
        assert_eq!(paths[edit]["post"]["requestBody"]["required"], true);
        assert_eq!(
            schemas["EditMessageRequest"]["required"],
            serde_json::json!(["content"])
        );

        let history = &paths["/api/v1/sessions/{session_id}/messages"]["get"];
        let names: Vec<&str> = history["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|parameter| parameter["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"leaf"), "{names:?}");
        assert_eq!(
            history["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/PageBody_ListedMessage"
        );
        // A generic page inlines its items: a Message, and its siblings.
        let listed = &schemas["PageBody_ListedMessage"]["properties"]["data"]["items"];
        assert_eq!(listed["allOf"][0]["$ref"], "#/components/schemas/Message");
        assert_eq!(
            listed["allOf"][1]["required"],
            serde_json::json!(["siblings"])
        );
        assert_eq!(
            listed["allOf"][1]["properties"]["siblings"]["$ref"],
            "#/components/schemas/Siblings"
        );
        assert_eq!(
            schemas["Siblings"]["required"],
            serde_json::json!(["ids", "index"])
        );
        let required = |schema: &str| schemas[schema]["required"].as_array().unwrap().clone();
        assert!(required("Message").contains(&"parent_id".into()));
        assert!(required("Session").contains(&"head_message_id".into()));
        assert!(schemas["PatchSessionRequest"]["properties"]["head_message_id"].is_object());

        let search = &paths["/api/v1/search"]["get"];
        let q = &search["parameters"][0];
        assert_eq!(
            (q["name"].as_str(), q["required"].as_bool()),
            (Some("q"), Some(true))
        );
        assert!(search["responses"]["422"].is_object());
        for field in [
            "session_id",
            "session_title",
            "message_id",
            "role",
            "created_at",
            "snippet",
        ] {
            assert!(
                required("SearchHit").contains(&field.into()),
                "SearchHit.{field}"
            );
        }

        let export = &paths["/api/v1/sessions/{session_id}/export"]["get"];
        let content = &export["responses"]["200"]["content"];
        assert_eq!(
            content["application/json"]["schema"]["$ref"],
            "#/components/schemas/Export"
        );
        assert!(content.get("text/markdown; charset=utf-8").is_some());
        assert!(export["responses"]["200"]["headers"]["Content-Disposition"].is_object());
        assert!(export["responses"]["422"].is_object(), "an unknown format");
        assert_eq!(export["parameters"][1]["name"], "format");
        assert_eq!(
            required("Export"),
            ["format", "session", "messages"].map(serde_json::Value::from)
        );

        let import = &paths["/api/v1/sessions/import"]["post"];
        assert_eq!(
            import["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ImportRequest"
        );
        let formats: Vec<&str> = schemas["ImportRequest"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|format| format["$ref"].as_str().unwrap())
            .collect();
        assert_eq!(
            formats,
            [
                "#/components/schemas/ColloquyImport",
                "#/components/schemas/ChatGptConversation"
            ]
        );
        assert_eq!(
            schemas["ChatGptConversation"]["properties"]["mapping"]["additionalProperties"]["$ref"],
            "#/components/schemas/ChatGptNode"
        );
        for status in ["201", "400", "413", "415", "422"] {
            assert!(import["responses"][status].is_object(), "import {status}");
        }
        assert!(import["responses"]["413"]["description"]
            .as_str()
            .unwrap()
            .contains("16 MiB"));
        assert!(import["responses"]["201"]["headers"]["Location"].is_object());
    }
}
