//! Keeping credentials out of error text: a presigned URL's query string (`X-Amz-Signature`,
//! `X-Amz-Security-Token`, `sig=`) is a credential, and error text ends up in logs, manifests and
//! dead-letter messages.

/// `text` with the query string of every URL in it replaced by `?…`.
pub fn redact_query_strings(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = find_url(rest) {
        let (before, url) = rest.split_at(at);
        out.push_str(before);
        let end = url
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .unwrap_or(url.len());
        let (url, after) = url.split_at(end);
        match url.find(['?', '#']) {
            Some(q) => {
                out.push_str(&url[..q]);
                out.push_str("?…");
            }
            None => out.push_str(url),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

fn find_url(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    [lower.find("https://"), lower.find("http://")]
        .into_iter()
        .flatten()
        .min()
}

/// A response body as (lossy) text for an error message: redacted, and cut at 500 characters.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = redact_query_strings(&String::from_utf8_lossy(body));
    let mut s: String = text.chars().take(500).collect();
    if text.chars().count() > 500 {
        s.push('…');
    }
    s
}
