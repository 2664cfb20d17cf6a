//! What of an upstream's error text may reach a client. The upstream's own
//! words say what went wrong (a rate limit, a refused key), but they can
//! also hold the base URL (reqwest names it in every transport error), links
//! (OpenAI's `401` points at its key page) and, from a careless compatible
//! server, the key itself echoed back. All of those are taken out here, the
//! one place every error of this adapter passes through.

/// `message` with every URL replaced by `[url]` and every occurrence of
/// `secret` by `[redacted]`.
pub(crate) fn scrub(message: &str, secret: Option<&str>) -> String {
    let mut message = without_urls(message);
    if let Some(secret) = secret.filter(|secret| !secret.is_empty()) {
        message = message.replace(secret, "[redacted]");
    }
    message
}

fn without_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = find_scheme(rest) {
        out.push_str(&rest[..start]);
        let url = &rest[start..];
        let end = url
            .find(|c: char| c.is_whitespace() || "()[]{}<>\"'`,;|".contains(c))
            .unwrap_or(url.len());
        // A sentence's full stop after a link is the sentence's, not the link's.
        let end = url[..end].trim_end_matches(['.', ':', '!', '?']).len();
        out.push_str("[url]");
        rest = &url[end..];
    }
    out.push_str(rest);
    out
}

/// Where the next `http://` or `https://` (any case) starts.
fn find_scheme(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    ["http://", "https://"]
        .iter()
        .filter_map(|scheme| lower.find(scheme))
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_the_key_are_taken_out_and_the_rest_is_kept() {
        let cases = [
            (
                "Incorrect API key provided: sk-abc. You can find your API key at https://platform.openai.com/account/api-keys.",
                "Incorrect API key provided: [redacted]. You can find your API key at [url].",
            ),
            (
                "the request failed: error sending request for url (http://10.0.0.7:11434/v1/chat/completions): connection refused",
                "the request failed: error sending request for url ([url]): connection refused",
            ),
            ("HTTPS://Example.com/x and http://a/b", "[url] and [url]"),
            ("nothing to hide", "nothing to hide"),
            ("", ""),
        ];
        for (raw, shown) in cases {
            assert_eq!(scrub(raw, Some("sk-abc")), shown);
        }
        assert_eq!(scrub("key sk-abc", None), "key sk-abc");
        assert_eq!(scrub("empty secret", Some("")), "empty secret");
    }

    #[test]
    fn text_that_is_not_ascii_survives() {
        assert_eq!(
            scrub("clé refusée — voir https://exemple.fr/clé ici", None),
            "clé refusée — voir [url] ici"
        );
    }
}
