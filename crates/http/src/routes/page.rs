//! The web chat page: `GET /` and its assets, embedded in the binary.
//!
//! Plain HTML, CSS and JavaScript from `crates/http/static/`, no build step,
//! nothing fetched from other hosts. The page links its style and icon with
//! `?v=<hash of every asset's content>` and its script, native ES modules,
//! under `/assets/js/<that hash>/`: the modules import one another by
//! relative paths, which so name the same version as the page did. A browser
//! may keep every asset for a year and still gets new ones the moment the
//! binary changes; the page itself is revalidated on every load (`ETag`,
//! `304 Not Modified`). A strict
//! `Content-Security-Policy` allows nothing but this origin: no inline script
//! or style, no other host, no framing.

use std::sync::OnceLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};

use crate::ApiError;

const INDEX_HTML: &str = include_str!("../../static/index.html");
/// The page's JavaScript modules, by file name; `main.js` is the entry point.
const MODULES: [(&str, &str); 16] = [
    ("api.js", include_str!("../../static/js/api.js")),
    ("archive.js", include_str!("../../static/js/archive.js")),
    (
        "assistants.js",
        include_str!("../../static/js/assistants.js"),
    ),
    ("auth.js", include_str!("../../static/js/auth.js")),
    ("branches.js", include_str!("../../static/js/branches.js")),
    ("chat.js", include_str!("../../static/js/chat.js")),
    ("composer.js", include_str!("../../static/js/composer.js")),
    ("dom.js", include_str!("../../static/js/dom.js")),
    ("events.js", include_str!("../../static/js/events.js")),
    ("http.js", include_str!("../../static/js/http.js")),
    ("main.js", include_str!("../../static/js/main.js")),
    ("messages.js", include_str!("../../static/js/messages.js")),
    ("render.js", include_str!("../../static/js/render.js")),
    ("search.js", include_str!("../../static/js/search.js")),
    ("sessions.js", include_str!("../../static/js/sessions.js")),
    ("state.js", include_str!("../../static/js/state.js")),
];
const APP_CSS: &str = include_str!("../../static/app.css");
const FAVICON_SVG: &str = include_str!("../../static/favicon.svg");

/// Where the page's HTML names the assets' version.
const VERSION_PLACEHOLDER: &str = "__ASSET_VERSION__";

/// Only this origin, for everything; no inline code, no framing, no plugins.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The page: always revalidated, so a new binary's page shows at once.
const REVALIDATE: &str = "no-cache";
/// An asset asked for by the version the page names: it never changes.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

pub(crate) fn register(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/")
                .route(web::get().to(index))
                .route(web::head().to(index)),
        )
        .service(
            web::resource("/assets/{name}")
                .route(web::get().to(asset))
                .route(web::head().to(asset)),
        )
        .service(
            web::resource("/assets/js/{version}/{name}")
                .route(web::get().to(module))
                .route(web::head().to(module)),
        );
}

struct File {
    body: Bytes,
    content_type: &'static str,
    etag: String,
}

impl File {
    fn new(body: Bytes, content_type: &'static str) -> Self {
        let etag = format!("\"{:016x}\"", fnv1a(&body));
        Self {
            body,
            content_type,
            etag,
        }
    }
}

struct Files {
    version: String,
    index: File,
    modules: Vec<(&'static str, File)>,
    app_css: File,
    favicon: File,
}

/// FNV-1a, 64 bits: stable across builds and platforms, unlike std's hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn files() -> &'static Files {
    static FILES: OnceLock<Files> = OnceLock::new();
    FILES.get_or_init(|| {
        let modules: Vec<_> = MODULES
            .iter()
            .map(|&(name, source)| {
                let file = File::new(
                    Bytes::from_static(source.as_bytes()),
                    "text/javascript; charset=utf-8",
                );
                (name, file)
            })
            .collect();
        let app_css = File::new(
            Bytes::from_static(APP_CSS.as_bytes()),
            "text/css; charset=utf-8",
        );
        let favicon = File::new(Bytes::from_static(FAVICON_SVG.as_bytes()), "image/svg+xml");
        let etags: String = modules
            .iter()
            .map(|(_, file)| file.etag.as_str())
            .chain([app_css.etag.as_str(), favicon.etag.as_str()])
            .collect();
        let version = format!("{:016x}", fnv1a(etags.as_bytes()));
        let index = File::new(
            Bytes::from(INDEX_HTML.replace(VERSION_PLACEHOLDER, &version)),
            "text/html; charset=utf-8",
        );
        Files {
            version,
            index,
            modules,
            app_css,
            favicon,
        }
    })
}

/// `If-None-Match` names this entity tag (or any, with `*`).
fn not_modified(request: &HttpRequest, etag: &str) -> bool {
    request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag == etag || tag.strip_prefix("W/") == Some(etag))
}

fn serve(request: &HttpRequest, file: &File, cache_control: &'static str) -> HttpResponse {
    let unchanged = not_modified(request, &file.etag);
    let mut response = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        ))
        .insert_header((header::ETAG, file.etag.as_str()))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .insert_header((
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .insert_header((
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ));
    if unchanged {
        return response.finish();
    }
    response
        .content_type(file.content_type)
        .body(file.body.clone())
}

async fn index(request: HttpRequest) -> HttpResponse {
    serve(&request, &files().index, REVALIDATE)
}

async fn asset(request: HttpRequest, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let files = files();
    let file = match name.as_str() {
        "app.css" => &files.app_css,
        "favicon.svg" => &files.favicon,
        _ => return Err(ApiError::from_status(StatusCode::NOT_FOUND)),
    };
    let current = web::Query::<Vec<(String, String)>>::from_query(request.query_string())
        .is_ok_and(|query| {
            query
                .iter()
                .any(|(key, value)| key == "v" && *value == files.version)
        });
    Ok(serve(
        &request,
        file,
        if current { IMMUTABLE } else { REVALIDATE },
    ))
}

/// A module of the version the page names is cached for good; one asked for
/// by another version (a page from an older binary) gets today's, revalidated.
async fn module(
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let files = files();
    let (version, name) = path.into_inner();
    let file = files
        .modules
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, file)| file)
        .ok_or_else(|| ApiError::from_status(StatusCode::NOT_FOUND))?;
    let cache_control = if version == files.version {
        IMMUTABLE
    } else {
        REVALIDATE
    };
    Ok(serve(&request, file, cache_control))
}

#[cfg(test)]
mod tests {
    use actix_web::{test, App};

    use super::*;

    fn header(response: &actix_web::dev::ServiceResponse, name: header::HeaderName) -> &str {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }

    #[actix_web::test]
    async fn the_page_is_html_with_a_strict_policy_and_the_contract_hooks() {
        let app = test::init_service(App::new().configure(register)).await;
        let response =
            test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header(&response, header::CONTENT_TYPE),
            "text/html; charset=utf-8"
        );
        assert_eq!(header(&response, header::CACHE_CONTROL), "no-cache");
        let policy = header(&response, header::CONTENT_SECURITY_POLICY).to_owned();
        assert!(policy.starts_with("default-src 'self';"), "{policy}");
        assert!(!policy.contains("unsafe"), "{policy}");
        let body = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
        for hook in [
            r#"id="composer""#,
            r#"id="send""#,
            r#"id="stop""#,
            r#"id="new-session""#,
            r#"id="api-key""#,
            r#"id="discuss""#,
            r#"id="manage-assistants""#,
            r#"id="assistants""#,
            r#"id="search""#,
        ] {
            assert!(body.contains(hook), "the page lacks {hook}");
        }
        assert!(!body.contains(VERSION_PLACEHOLDER));
        let entry = format!(
            r#"<script type="module" src="/assets/js/{}/main.js"></script>"#,
            files().version
        );
        assert!(body.contains(&entry), "the page lacks {entry}");
        // Nothing inline, nothing from elsewhere.
        assert!(
            !body.contains("<script>") && !body.contains("<style") && !body.contains(" style=")
        );
        assert!(!body.contains("http://") && !body.contains("https://") && !body.contains("//cdn"));
    }

    #[actix_web::test]
    async fn assets_have_their_types_and_the_current_version_is_cached_for_good() {
        let app = test::init_service(App::new().configure(register)).await;
        let version = &files().version;
        for (name, content_type) in [
            ("app.css", "text/css; charset=utf-8"),
            ("favicon.svg", "image/svg+xml"),
        ] {
            let uri = format!("/assets/{name}?v={version}");
            let response =
                test::call_service(&app, test::TestRequest::get().uri(&uri).to_request()).await;
            assert_eq!(response.status(), StatusCode::OK, "{name}");
            assert_eq!(header(&response, header::CONTENT_TYPE), content_type);
            assert_eq!(header(&response, header::CACHE_CONTROL), IMMUTABLE);
            assert_eq!(header(&response, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
            // An old or missing version is only revalidated.
            let stale = format!("/assets/{name}?v=0");
            let response =
                test::call_service(&app, test::TestRequest::get().uri(&stale).to_request()).await;
            assert_eq!(header(&response, header::CACHE_CONTROL), REVALIDATE);
        }
        let unknown = test::TestRequest::get()
            .uri("/assets/secrets.txt")
            .to_request();
        assert_eq!(
            test::call_service(&app, unknown).await.status(),
            StatusCode::NOT_FOUND
        );
    }

    /// What a module's static `import` and `export … from` lines name.
    fn imports(source: &str) -> Vec<&str> {
        source
            .lines()
            .map(str::trim_start)
            .filter(|line| {
                ["import ", "export ", "} from "]
                    .iter()
                    .any(|start| line.starts_with(start))
            })
            .filter_map(|line| {
                line.split_once(" from '")
                    .or_else(|| line.split_once("import '"))
            })
            .filter_map(|(_, rest)| rest.split_once('\''))
            .map(|(specifier, _)| specifier)
            .collect()
    }

    #[actix_web::test]
    async fn every_module_is_served_as_javascript_and_cached_for_good_under_the_current_version() {
        let app = test::init_service(App::new().configure(register)).await;
        let version = &files().version;
        for (name, _) in MODULES {
            let uri = format!("/assets/js/{version}/{name}");
            let response =
                test::call_service(&app, test::TestRequest::get().uri(&uri).to_request()).await;
            assert_eq!(response.status(), StatusCode::OK, "{name}");
            assert_eq!(
                header(&response, header::CONTENT_TYPE),
                "text/javascript; charset=utf-8"
            );
            assert_eq!(header(&response, header::CACHE_CONTROL), IMMUTABLE);
            assert_eq!(header(&response, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
            let policy = header(&response, header::CONTENT_SECURITY_POLICY).to_owned();
            assert_eq!(policy, CONTENT_SECURITY_POLICY);
            // A page of another binary asks for its own version: it is only revalidated.
            let stale = format!("/assets/js/0000000000000000/{name}");
            let response =
                test::call_service(&app, test::TestRequest::get().uri(&stale).to_request()).await;
            assert_eq!(response.status(), StatusCode::OK, "{name}");
            assert_eq!(header(&response, header::CACHE_CONTROL), REVALIDATE);
        }
        for unknown in [
            format!("/assets/js/{version}/secrets.js"),
            format!("/assets/js/{version}/..%2Fapp.css"),
            "/assets/app.js".to_owned(),
        ] {
            let response =
                test::call_service(&app, test::TestRequest::get().uri(&unknown).to_request()).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{unknown}");
        }
    }

    #[actix_web::test]
    async fn the_modules_import_only_one_another_and_the_page_preloads_them_all() {
        let served: Vec<&str> = MODULES.iter().map(|(name, _)| *name).collect();
        let mut imported = vec!["main.js"];
        for (name, source) in MODULES {
            for specifier in imports(source) {
                let file = specifier.strip_prefix("./").unwrap_or_else(|| {
                    panic!("{name} imports {specifier}: only relative paths keep the version")
                });
                assert!(
                    served.contains(&file),
                    "{name} imports {file}, which is not served"
                );
                imported.push(file);
            }
        }
        for name in &served {
            assert!(imported.contains(name), "no module imports {name}");
        }
        let index = &files().index.body;
        let index = std::str::from_utf8(index).unwrap();
        for name in served.iter().filter(|name| **name != "main.js") {
            let preload = format!(
                r#"<link rel="modulepreload" href="/assets/js/{}/{name}">"#,
                files().version
            );
            assert!(index.contains(&preload), "the page does not preload {name}");
        }
        assert_eq!(
            index.matches("modulepreload").count(),
            served.len() - 1,
            "the page preloads a module that is not served"
        );
    }

    #[actix_web::test]
    async fn a_matching_etag_gets_304_without_a_body() {
        let app = test::init_service(App::new().configure(register)).await;
        let first = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
        let etag = header(&first, header::ETAG).to_owned();
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
        let again = test::TestRequest::get()
            .uri("/")
            .insert_header((header::IF_NONE_MATCH, format!("W/\"nope\", {etag}")))
            .to_request();
        let response = test::call_service(&app, again).await;
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert!(test::read_body(response).await.is_empty());
        let head = test::call_service(
            &app,
            test::TestRequest::default()
                .method(actix_web::http::Method::HEAD)
                .uri("/")
                .to_request(),
        )
        .await;
        assert_eq!(head.status(), StatusCode::OK);
    }
}
