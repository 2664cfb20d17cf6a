//! Which browser pages may talk to this server, decided before any route runs.
//!
//! A page of another site can make a browser send requests here (a form, a
//! `fetch` in `no-cors` mode, a WebSocket) even where CORS keeps it from
//! reading the answers, and on a server that authenticates nobody sending is
//! already enough to spend its model. So a request whose `Origin` is neither
//! the server's own nor one of `COLLOQUY_CORS_ORIGINS` is refused outright.
//!
//! DNS rebinding gets past that check: the attacker's page is same-origin
//! with its own host name, which now resolves to 127.0.0.1, and a browser
//! sends no `Origin` on a same-origin `GET`. Its requests still carry the
//! attacker's name in `Host`, so a server listening on loopback also refuses
//! every `Host` that is not a loopback name or address.

use std::borrow::Cow;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::rc::Rc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{
    forward_ready, RequestHead, Service, ServiceRequest, ServiceResponse, Transform,
};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::Error;
use futures::future::{ready, LocalBoxFuture, Ready};

use crate::ApiError;

/// An origin as browsers send it in `Origin`: `scheme://host[:port]`, the
/// scheme and host in lower case, the scheme's default port left out (as
/// browsers leave it out), so equal origins compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

/// Why a text is not an origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginError {
    entry: String,
    reason: &'static str,
}

impl fmt::Display for OriginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not an origin (`scheme://host[:port]`, with no path): {}",
            self.entry, self.reason
        )
    }
}

impl std::error::Error for OriginError {}

impl Origin {
    /// Reads `scheme://host[:port]`: no user name, path, query or fragment.
    ///
    /// # Errors
    /// Anything else, saying what is wrong with it.
    pub fn parse(raw: &str) -> Result<Self, OriginError> {
        let refuse = |reason| OriginError {
            entry: raw.to_owned(),
            reason,
        };
        let (scheme, authority) = raw
            .split_once("://")
            .ok_or_else(|| refuse("it needs a scheme, such as `https://`"))?;
        let mut scheme_chars = scheme.chars();
        let scheme_is_valid = scheme_chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && scheme_chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !scheme_is_valid {
            return Err(refuse("its scheme is not a URL scheme"));
        }
        if authority.contains(['/', '?', '#']) {
            return Err(refuse(
                "an origin has no path, query or fragment: drop everything after the host and port",
            ));
        }
        if authority.contains('@') {
            return Err(refuse("an origin has no user name or password"));
        }
        let (host, port) = split_authority(authority).map_err(refuse)?;
        let scheme = scheme.to_ascii_lowercase();
        let port = port.filter(|port| Some(*port) != default_port(&scheme));
        Ok(Self { scheme, host, port })
    }

    /// The origin of an `Origin` header, if it holds one (not `null`).
    fn from_header(value: &HeaderValue) -> Option<Self> {
        value.to_str().ok().and_then(|text| Self::parse(text).ok())
    }

    /// Whether `authority` (a request's `Host`) names this origin's host
    /// and port. The scheme is not compared: behind a proxy that ends TLS,
    /// the page is `https://` while the server speaks plain HTTP.
    fn is_served_at(&self, authority: &str) -> bool {
        let Ok((host, port)) = split_authority(authority) else {
            return false;
        };
        let default = default_port(&self.scheme);
        host == self.host && port.or(default) == self.port.or(default)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// `host[:port]` as (the host in lower case, the port); an IPv6 address
/// keeps its brackets.
fn split_authority(authority: &str) -> Result<(String, Option<u16>), &'static str> {
    let (host, port) = if let Some(inside) = authority.strip_prefix('[') {
        let (address, after) = inside
            .split_once(']')
            .ok_or("an IPv6 address needs its closing `]`")?;
        address
            .parse::<Ipv6Addr>()
            .map_err(|_| "the part in brackets is not an IPv6 address")?;
        let port = match after {
            "" => None,
            after => Some(
                after
                    .strip_prefix(':')
                    .ok_or("only a `:port` may follow the host")?,
            ),
        };
        (&authority[..address.len() + 2], port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("the host is missing");
    }
    let is_name = host
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_'));
    if !host.starts_with('[') && !is_name {
        return Err("the host has characters no host name has");
    }
    let port = port
        .map(|port| {
            port.parse::<u16>()
                .ok()
                .filter(|number| *number != 0 && port.bytes().all(|byte| byte.is_ascii_digit()))
                .ok_or("the port must be a number from 1 to 65535")
        })
        .transpose()?;
    Ok((host.to_ascii_lowercase(), port))
}

/// `COLLOQUY_CORS_ORIGINS`: the origins, beside the server's own, whose
/// pages may call this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// `*`: every origin, `null` (sandboxed frames, files) included.
    Any,
    /// These origins.
    Listed(Vec<Origin>),
}

impl AllowedOrigins {
    /// Reads `*`, or origins separated by commas.
    ///
    /// # Errors
    /// An entry that is not an origin, `null` (only `*` admits it), `*`
    /// among other entries, or no entry at all.
    pub fn parse(raw: &str) -> Result<Self, OriginError> {
        let entries: Vec<&str> = raw
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .collect();
        let refuse = |entry: &str, reason| OriginError {
            entry: entry.to_owned(),
            reason,
        };
        match entries[..] {
            [] => Err(refuse(raw, "the list names no origin")),
            ["*"] => Ok(Self::Any),
            _ if entries.contains(&"*") => Err(refuse(
                "*",
                "`*` already allows every origin and cannot be combined with others",
            )),
            _ => entries
                .iter()
                .map(|entry| {
                    if entry.eq_ignore_ascii_case("null") {
                        Err(refuse(
                            entry,
                            "pages that send `Origin: null` (sandboxed frames, files) cannot be \
                             told apart, so only `*` admits them",
                        ))
                    } else {
                        Origin::parse(entry)
                    }
                })
                .collect::<Result<_, _>>()
                .map(Self::Listed),
        }
    }

    /// Whether the value of an `Origin` header is one of these.
    pub(crate) fn admits(&self, value: &HeaderValue) -> bool {
        match self {
            Self::Any => true,
            Self::Listed(origins) => {
                Origin::from_header(value).is_some_and(|origin| origins.contains(&origin))
            }
        }
    }
}

/// The middleware refusing foreign origins and, on loopback, foreign host
/// names with `403`. Requests without `Origin` (curl, SDKs) pass the origin
/// check: only browsers send it, and they always do across origins.
#[derive(Debug, Clone)]
pub struct OriginCheck {
    rules: Rc<Rules>,
}

#[derive(Debug)]
struct Rules {
    allowed: Option<AllowedOrigins>,
    loopback_hosts_only: bool,
}

impl OriginCheck {
    /// Admits the server's own origin and `allowed`; with
    /// `loopback_hosts_only`, only requests for a loopback name or address.
    #[must_use]
    pub fn new(allowed: Option<AllowedOrigins>, loopback_hosts_only: bool) -> Self {
        Self {
            rules: Rc::new(Rules {
                allowed,
                loopback_hosts_only,
            }),
        }
    }
}

impl Rules {
    fn refusal(&self, head: &RequestHead) -> Option<ApiError> {
        let host = request_host(head);
        if self.loopback_hosts_only {
            if let Some(host) = host.as_deref().filter(|host| !is_loopback_host(host)) {
                return Some(forbidden_host(host));
            }
        }
        head.headers
            .get_all(header::ORIGIN)
            .find(|origin| !self.admits(origin, host.as_deref()))
            .map(forbidden_origin)
    }

    fn admits(&self, origin: &HeaderValue, host: Option<&str>) -> bool {
        let is_own = || {
            host.zip(Origin::from_header(origin))
                .is_some_and(|(host, origin)| origin.is_served_at(host))
        };
        is_own()
            || self
                .allowed
                .as_ref()
                .is_some_and(|allowed| allowed.admits(origin))
    }
}

/// The `Host` the client asked for: the header, or for HTTP/2 the URI's
/// authority. Forwarding headers are not trusted: a proxy that rewrites
/// `Host` makes the public origin foreign, and that origin is listed in
/// `COLLOQUY_CORS_ORIGINS` instead.
fn request_host(head: &RequestHead) -> Option<Cow<'_, str>> {
    head.headers
        .get(header::HOST)
        .map(|value| String::from_utf8_lossy(value.as_bytes()))
        .or_else(|| {
            head.uri
                .authority()
                .map(|authority| Cow::Borrowed(authority.as_str()))
        })
}

/// `localhost`, a name under `.localhost` (RFC 6761 keeps them on this
/// machine), 127.0.0.0/8 or `[::1]`, with any port.
fn is_loopback_host(host: &str) -> bool {
    let Ok((host, _)) = split_authority(host) else {
        return false;
    };
    if let Some(address) = host
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
    {
        return address.parse::<Ipv6Addr>().is_ok_and(|address| {
            address.is_loopback() || address.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        });
    }
    if let Ok(address) = host.parse::<Ipv4Addr>() {
        return address.is_loopback();
    }
    let name = host.strip_suffix('.').unwrap_or(&host);
    name == "localhost" || name.ends_with(".localhost")
}

fn forbidden_host(host: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden-host",
        "Forbidden host",
        format!(
            "this server listens on a loopback address and answers requests for `localhost` or a \
             loopback address only, not for `{host}` (a page whose host name was pointed at this \
             machine is refused); to serve other names, listen on another address (COLLOQUY_ADDR)"
        ),
    )
}

fn forbidden_origin(origin: &HeaderValue) -> ApiError {
    let detail = match origin.to_str() {
        Ok(origin) if origin.eq_ignore_ascii_case("null") => {
            "requests from pages without an origin (`Origin: null`: sandboxed frames, files) are \
             allowed only when COLLOQUY_CORS_ORIGINS is `*`"
                .to_owned()
        }
        Ok(origin) => format!(
            "requests from pages of `{origin}` are not allowed: this server answers its own pages \
             and those of the origins in COLLOQUY_CORS_ORIGINS, to which `{origin}` can be added"
        ),
        Err(_) => {
            "the Origin header is not text, so the page it names cannot be allowed".to_owned()
        }
    };
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden-origin",
        "Forbidden origin",
        detail,
    )
}

impl<S, B> Transform<S, ServiceRequest> for OriginCheck
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = OriginCheckService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(OriginCheckService {
            service,
            rules: Rc::clone(&self.rules),
        }))
    }
}

/// [`OriginCheck`] around the service it guards.
#[derive(Debug)]
pub struct OriginCheckService<S> {
    service: S,
    rules: Rc<Rules>,
}

impl<S, B> Service<ServiceRequest> for OriginCheckService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        if let Some(problem) = self.rules.refusal(request.head()) {
            let response = request.error_response(problem).map_into_right_body();
            return Box::pin(ready(Ok(response)));
        }
        let answer = self.service.call(request);
        Box::pin(async move { answer.await.map(ServiceResponse::map_into_left_body) })
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn origin(raw: &str) -> Origin {
        Origin::parse(raw).unwrap()
    }

    #[test]
    fn origins_are_read_as_browsers_write_them() {
        assert_eq!(
            origin("HTTPS://App.Example.COM").to_string(),
            "https://app.example.com"
        );
        assert_eq!(
            origin("https://app.example.com:443"),
            origin("https://app.example.com")
        );
        assert_eq!(
            origin("http://localhost:80").to_string(),
            "http://localhost"
        );
        assert_eq!(
            origin("http://localhost:8080").to_string(),
            "http://localhost:8080"
        );
        assert_eq!(origin("http://[::1]:3000").to_string(), "http://[::1]:3000");
        assert_eq!(origin("tauri://localhost").to_string(), "tauri://localhost");
        for (bad, reason) in [
            ("app.example.com", "needs a scheme"),
            ("https://app.example.com/", "no path"),
            ("https://app.example.com/chat", "no path"),
            ("https://app.example.com?x", "no path"),
            ("https://user@app.example.com", "user name"),
            ("https://", "host is missing"),
            ("https://:8080", "host is missing"),
            ("https://app.example.com:", "port"),
            ("https://app.example.com:0", "port"),
            ("https://app.example.com:65536", "port"),
            ("https://app.example.com:+80", "port"),
            ("https://[::1", "closing"),
            ("https://[nope]", "IPv6"),
            ("https://exa mple.com", "characters"),
            ("1http://example.com", "scheme"),
        ] {
            let error = Origin::parse(bad).unwrap_err().to_string();
            assert!(error.contains(reason), "{bad}: {error}");
            assert!(error.contains(&format!("`{bad}`")), "{error}");
        }
    }

    #[test]
    fn the_allowed_list_is_a_star_or_origins() {
        assert_eq!(AllowedOrigins::parse(" * "), Ok(AllowedOrigins::Any));
        assert_eq!(
            AllowedOrigins::parse("https://a.example, http://localhost:5173,"),
            Ok(AllowedOrigins::Listed(vec![
                origin("https://a.example"),
                origin("http://localhost:5173")
            ]))
        );
        for (bad, reason) in [
            ("*, https://a.example", "cannot be combined"),
            ("null", "only `*`"),
            (" , ", "names no origin"),
            ("https://a.example, https://b.example/", "no path"),
        ] {
            let error = AllowedOrigins::parse(bad).unwrap_err().to_string();
            assert!(error.contains(reason), "{bad}: {error}");
        }
    }

    fn rules(allowed: Option<&str>, loopback_hosts_only: bool) -> Rules {
        Rules {
            allowed: allowed.map(|raw| AllowedOrigins::parse(raw).unwrap()),
            loopback_hosts_only,
        }
    }

    /// The `type` of the problem refusing a request, if it is refused.
    fn refusal(rules: &Rules, host: &str, origin: Option<&str>) -> Option<String> {
        let mut request = TestRequest::get().insert_header((header::HOST, host));
        if let Some(origin) = origin {
            request = request.insert_header((header::ORIGIN, origin));
        }
        let request = request.to_http_request();
        rules.refusal(request.head()).map(|problem| {
            let body = serde_json::to_value(&problem).unwrap();
            body["type"].as_str().unwrap().to_owned()
        })
    }

    const FOREIGN_ORIGIN: Option<&str> = Some("urn:colloquy:problem:forbidden-origin");
    const FOREIGN_HOST: Option<&str> = Some("urn:colloquy:problem:forbidden-host");

    #[test]
    fn the_servers_own_origin_passes_and_others_are_refused() {
        let rules = rules(None, false);
        let check = |host, origin| refusal(&rules, host, origin);
        assert_eq!(check("chat.example:8080", None), None);
        assert_eq!(
            check("chat.example:8080", Some("http://chat.example:8080")),
            None
        );
        assert_eq!(check("Chat.Example", Some("https://chat.example")), None);
        assert_eq!(
            check("chat.example:443", Some("https://chat.example")),
            None
        );
        assert_eq!(check("chat.example", Some("http://chat.example")), None);
        for foreign in [
            "http://chat.example:9090",
            "http://evil.example:8080",
            "http://chat.example.evil.example:8080",
            "null",
            "not an origin",
        ] {
            assert_eq!(
                check("chat.example:8080", Some(foreign)).as_deref(),
                FOREIGN_ORIGIN,
                "{foreign}"
            );
        }
    }

    #[test]
    fn listed_origins_pass_and_only_a_star_admits_null() {
        let listed = rules(Some("https://app.example"), false);
        assert_eq!(
            refusal(&listed, "api.example", Some("https://app.example")),
            None
        );
        assert_eq!(
            refusal(&listed, "api.example", Some("https://app.example:443")),
            None
        );
        assert_eq!(
            refusal(&listed, "api.example", Some("http://app.example")).as_deref(),
            FOREIGN_ORIGIN
        );
        assert_eq!(
            refusal(&listed, "api.example", Some("null")).as_deref(),
            FOREIGN_ORIGIN
        );
        let any = rules(Some("*"), false);
        for origin in ["https://anyone.example", "null"] {
            assert_eq!(refusal(&any, "api.example", Some(origin)), None, "{origin}");
        }
    }

    #[test]
    fn a_loopback_server_answers_loopback_host_names_only() {
        let rules = rules(Some("*"), true);
        for host in [
            "localhost:8080",
            "LOCALHOST",
            "localhost.:8080",
            "colloquy.localhost:8080",
            "127.0.0.1:8080",
            "127.1.2.3",
            "[::1]:8080",
            "[::ffff:127.0.0.1]:8080",
        ] {
            assert_eq!(refusal(&rules, host, None), None, "{host}");
        }
        for host in [
            "evil.example:8080",
            "localhost.evil.example",
            "192.168.1.5:8080",
            "[::2]:8080",
            "0.0.0.0:8080",
            "exa mple",
        ] {
            assert_eq!(
                refusal(&rules, host, None).as_deref(),
                FOREIGN_HOST,
                "{host}"
            );
        }
        let public = super::Rules {
            allowed: None,
            loopback_hosts_only: false,
        };
        assert_eq!(refusal(&public, "evil.example:8080", None), None);
    }
}
