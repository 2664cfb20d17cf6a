//! The routes of the contract, one module per resource.

mod account;
mod archive;
mod assistants;
mod branches;
mod compat;
mod docs;
mod health;
mod messages;
mod page;
mod sessions;
mod socket;
mod summary;

use actix_web::{web, HttpResponse};

use crate::body::with_body_limit;
use crate::{ApiError, MAX_IMPORT_BYTES};

pub(crate) fn register(config: &mut web::ServiceConfig) {
    config
        .service(
            web::scope("/api/v1/sessions")
                .service(
                    web::resource("")
                        .route(web::post().to(sessions::create))
                        .route(web::get().to(sessions::list)),
                )
                // Before `/{session_id}`, which would take `import` for an id.
                .service(with_body_limit(
                    web::resource("/import").route(web::post().to(archive::import)),
                    MAX_IMPORT_BYTES,
                ))
                .service(
                    web::resource("/{session_id}")
                        .route(web::get().to(sessions::get))
                        .route(web::patch().to(sessions::update))
                        .route(web::delete().to(sessions::delete)),
                )
                .service(
                    web::resource("/{session_id}/messages")
                        .route(web::post().to(messages::send))
                        .route(web::get().to(messages::list)),
                )
                .service(
                    web::resource("/{session_id}/messages/{message_id}/regenerate")
                        .route(web::post().to(branches::regenerate)),
                )
                .service(
                    web::resource("/{session_id}/messages/{message_id}/edit")
                        .route(web::post().to(branches::edit)),
                )
                .service(
                    web::resource("/{session_id}/export").route(web::get().to(archive::export)),
                )
                .service(
                    web::resource("/{session_id}/replies").route(web::post().to(messages::replies)),
                )
                .service(
                    web::resource("/{session_id}/events").route(web::get().to(messages::events)),
                )
                .service(web::resource("/{session_id}/ws").route(web::get().to(socket::open)))
                .service(
                    web::resource("/{session_id}/cancel").route(web::post().to(messages::cancel)),
                )
                .service(
                    web::resource("/{session_id}/stream-token")
                        .route(web::post().to(messages::stream_token)),
                )
                .service(
                    web::resource("/{session_id}/summary").route(web::get().to(summary::summary)),
                ),
        )
        .service(
            web::scope("/api/v1/assistants")
                .service(
                    web::resource("")
                        .route(web::post().to(assistants::create))
                        .route(web::get().to(assistants::list)),
                )
                .service(
                    web::resource("/{assistant_id}")
                        .route(web::get().to(assistants::get))
                        .route(web::patch().to(assistants::update))
                        .route(web::delete().to(assistants::delete)),
                ),
        )
        .service(web::resource("/api/v1/search").route(web::get().to(archive::search)))
        .service(web::resource("/api/v1/me").route(web::get().to(account::me)))
        .service(web::resource("/api/v1/models").route(web::get().to(account::models)))
        .service(web::resource("/healthz").route(web::get().to(health::live)))
        .service(web::resource("/readyz").route(web::get().to(health::ready)))
        .service(web::resource("/metrics").route(web::get().to(health::metrics)))
        .configure(compat::register)
        .configure(crate::openai::register)
        .configure(docs::register)
        .configure(page::register)
        .default_service(web::to(not_found));
}

async fn not_found() -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::from_status(
        actix_web::http::StatusCode::NOT_FOUND,
    ))
}
