//! Redaction by value: the one place that removes credentials from text before it leaves the
//! process (errors, log lines, manifests, ledger reasons, dead letters, metrics, CLI output).
//!
//! A vendor may echo anything it was sent, in any wrapping: a token endpoint's
//! `error_description` quoting the form, a 4xx quoting the `Authorization` header, a 400 quoting
//! a presigned URL. Knowing the header or field names is not enough, so every secret the process
//! holds is [`register`]ed where it is loaded or received (settings, token answers, download
//! URLs), and [`redact`] removes each registered value — and its URL-encoded and JSON-escaped
//! forms — whatever surrounds it. Beside the values it removes what is a credential by shape:
//! URL query strings (also JSON-escaped or percent-encoded URLs), `Bearer`/`Basic` credentials
//! and the values of well-known secret fields (`client_secret=`, `"refresh_token": "…"`, …).
//!
//! The registry is process-wide and bounded: credentials (kept for the process's life) and
//! short-lived values such as presigned-URL signatures (the oldest forgotten first) each have
//! a cap, so a long-lived Lambda never grows it without end.

use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, LazyLock, RwLock};

use aho_corasick::{AhoCorasick, MatchKind};

/// What a removed value is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Values shorter than this are not registered: they would match ordinary words, and no
/// credential is this short.
pub const MIN_SECRET_CHARS: usize = 8;

/// Most credentials remembered at once (client secrets, refresh, access and API tokens).
const MAX_DURABLE: usize = 1024;
/// Most short-lived values remembered at once (presigned-URL signatures, session tokens).
const MAX_EPHEMERAL: usize = 2048;

/// How long a registered value is likely to matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// A credential: a client secret, a refresh token, an access or API token.
    Durable,
    /// A value of one download or one run: a presigned URL's signature or session token.
    Ephemeral,
}

#[derive(Default)]
struct Registry {
    known: HashSet<String>,
    durable: VecDeque<String>,
    ephemeral: VecDeque<String>,
    /// Every encoded form of every value, built on first use after a change.
    matcher: Option<Arc<AhoCorasick>>,
}

static REGISTRY: LazyLock<RwLock<Registry>> = LazyLock::new(RwLock::default);

/// Registers a credential: from now on [`redact`] removes it. Values shorter than
/// [`MIN_SECRET_CHARS`] (after trimming) are ignored.
pub fn register(secret: &str) {
    register_for(secret, Lifetime::Durable);
}

/// Registers `secret` for `lifetime`; see [`register`].
pub fn register_for(secret: &str, lifetime: Lifetime) {
    let secret = secret.trim();
    if secret.chars().count() < MIN_SECRET_CHARS {
        return;
    }
    if read().known.contains(secret) {
        return;
    }
    let mut registry = REGISTRY.write().unwrap_or_else(|p| p.into_inner());
    if !registry.known.insert(secret.to_owned()) {
        return;
    }
    let (queue, cap) = match lifetime {
        Lifetime::Durable => (&mut registry.durable, MAX_DURABLE),
        Lifetime::Ephemeral => (&mut registry.ephemeral, MAX_EPHEMERAL),
    };
    queue.push_back(secret.to_owned());
    let evicted = (queue.len() > cap).then(|| queue.pop_front()).flatten();
    if let Some(old) = evicted {
        registry.known.remove(&old);
    }
    registry.matcher = None;
}

/// Registers the query values of a URL (a presigned URL's signature, credential and session
/// token) as short-lived secrets, and the whole query string.
pub fn register_url(url: &str) {
    let Some((_, query)) = url.split_once('?') else {
        return;
    };
    let query = query.split('#').next().unwrap_or_default();
    register_for(query, Lifetime::Ephemeral);
    for pair in query.split('&') {
        if let Some((_, value)) = pair.split_once('=') {
            register_for(value, Lifetime::Ephemeral);
            let decoded = percent_decode(value);
            if decoded != value {
                register_for(&decoded, Lifetime::Ephemeral);
            }
        }
    }
}

fn read() -> std::sync::RwLockReadGuard<'static, Registry> {
    REGISTRY.read().unwrap_or_else(|p| p.into_inner())
}

fn matcher() -> Option<Arc<AhoCorasick>> {
    if let Some(m) = read().matcher.clone() {
        return Some(m);
    }
    let mut registry = REGISTRY.write().unwrap_or_else(|p| p.into_inner());
    if registry.known.is_empty() {
        return None;
    }
    let mut patterns: Vec<String> = registry
        .known
        .iter()
        .flat_map(|v| encodings(v))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    patterns.sort();
    let built = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(&patterns)
        .ok()
        .map(Arc::new);
    registry.matcher = built.clone();
    built
}

/// The forms a value takes in foreign text: as is, URL-encoded (form and path style, either
/// hex case) and JSON-escaped (with and without escaped slashes).
fn encodings(value: &str) -> Vec<String> {
    let json = serde_json::to_string(value).unwrap_or_default();
    let json = json
        .strip_prefix('"')
        .and_then(|j| j.strip_suffix('"'))
        .unwrap_or(value)
        .to_owned();
    let mut out = vec![
        value.to_owned(),
        percent_encode(value, true, false),
        percent_encode(value, true, true),
        percent_encode(value, false, false),
        percent_encode(value, false, true),
        json.replace('/', "\\/"),
        json,
    ];
    out.sort();
    out.dedup();
    out
}

fn percent_encode(value: &str, form: bool, lower: bool) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b'*' if form => out.push('*'),
            b' ' if form => out.push('+'),
            _ if lower => out.push_str(&format!("%{b:02x}")),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `text` without any registered secret (in any of its encodings), URL query string, bearer
/// credential or secret field value.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut current = Cow::Borrowed(text);
    if let Some(m) = matcher() {
        if m.is_match(current.as_ref()) {
            current =
                Cow::Owned(m.replace_all(current.as_ref(), &vec![REDACTED; m.patterns_len()]));
        }
    }
    let by_shape = redact_by_shape(current.as_ref());
    match by_shape {
        Cow::Borrowed(_) => current,
        Cow::Owned(s) => Cow::Owned(s),
    }
}

/// [`redact`] into an owned string.
pub fn redacted(text: &str) -> String {
    redact(text).into_owned()
}

/// What is a credential by its shape alone: URL query strings, `Bearer`/`Basic` credentials,
/// secret field values.
fn redact_by_shape(text: &str) -> Cow<'_, str> {
    let lower = text.to_ascii_lowercase();
    let needs = lower.contains("://")
        || lower.contains(":\\/\\/")
        || lower.contains("%3a%2f%2f")
        || lower.contains("bearer")
        || lower.contains("basic")
        || SECRET_FIELDS.iter().any(|f| lower.contains(f));
    if !needs {
        return Cow::Borrowed(text);
    }
    let text = redact_query_strings(text);
    let text = redact_after_words(&text);
    Cow::Owned(redact_secret_fields(&text))
}

/// Field names whose value is a credential wherever they appear (form, query, JSON, header).
const SECRET_FIELDS: [&str; 16] = [
    "client_secret",
    "refresh_token",
    "access_token",
    "id_token",
    "api_key",
    "apikey",
    "api_token",
    "x-amz-signature",
    "x-amz-security-token",
    "x-amz-credential",
    "x-goog-signature",
    "password",
    "authorization",
    "signature",
    "credential",
    "sig",
];

/// Where a URL starts, in plain, JSON-escaped or percent-encoded form: (offset, the marker after
/// which the host begins).
fn find_url(lower: &str) -> Option<(usize, &'static str)> {
    [
        "https://",
        "http://",
        "https:\\/\\/",
        "http:\\/\\/",
        "https%3a%2f%2f",
        "http%3a%2f%2f",
    ]
    .into_iter()
    .filter_map(|m| lower.find(m).map(|at| (at, m)))
    .min_by_key(|(at, _)| *at)
}

/// `text` with the query string of every URL in it (plain, JSON-escaped or percent-encoded)
/// replaced by `?…`.
pub fn redact_query_strings(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((at, marker)) = find_url(&rest.to_ascii_lowercase()) {
        let (before, url) = rest.split_at(at);
        out.push_str(before);
        let encoded = marker.contains('%');
        let (url, after) = url.split_at(url_end(url, encoded));
        let lower_url = url.to_ascii_lowercase();
        let query = if encoded {
            lower_url.find("%3f").or_else(|| lower_url.find("%23"))
        } else {
            url.find(['?', '#'])
        };
        match query {
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

/// Where a URL starting at `url` ends: at whitespace, a quote or a closing bracket; a backslash
/// escaping a `/` (a JSON-escaped URL) is part of it; a comma ends a plain URL only.
fn url_end(url: &str, encoded: bool) -> usize {
    let bytes = url.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\\' && bytes.get(i + 1) == Some(&b'/') {
            i += 2;
            continue;
        }
        if c.is_ascii_whitespace()
            || matches!(
                c,
                b'"' | b'\'' | b'<' | b'>' | b'`' | b')' | b']' | b'}' | b'\\'
            )
            || (c == b',' && !encoded)
        {
            return i;
        }
        i += 1;
    }
    bytes.len()
}

/// `Bearer …` and `Basic …` credentials: the word, spaces, then a token-like value of at least
/// [`MIN_SECRET_CHARS`] characters (so "basic setup" and "bearer token" stay).
fn redact_after_words(text: &str) -> String {
    let mut out = text.to_owned();
    for word in ["bearer", "basic"] {
        out = replace_values(&out, looks_like_token, |lower, from| {
            let at = from + lower[from..].find(word)?;
            let before_ok = at == 0 || !lower.as_bytes()[at - 1].is_ascii_alphanumeric();
            let after = at + word.len();
            let mut value_start = after;
            while lower.as_bytes().get(value_start) == Some(&b' ') {
                value_start += 1;
            }
            Some((at, value_start, before_ok && value_start > after))
        });
    }
    out
}

fn looks_like_token(value: &str) -> bool {
    value.chars().count() >= MIN_SECRET_CHARS
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~+/=|:%".contains(c))
}

/// The values of [`SECRET_FIELDS`]: `name=value`, `name: value`, `"name": "value"`, URL-encoded
/// `name%3Dvalue`, JSON-escaped `\"name\":\"value\"`.
fn redact_secret_fields(text: &str) -> String {
    let mut out = text.to_owned();
    for field in SECRET_FIELDS {
        out = replace_values(
            &out,
            |_| true,
            |lower, from| {
                let at = from + lower[from..].find(field)?;
                let bytes = lower.as_bytes();
                let name_char = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
                let before_ok = at == 0 || !name_char(bytes[at - 1]);
                let mut i = at + field.len();
                if bytes.get(i).copied().is_some_and(name_char) {
                    return Some((at, i, false));
                }
                // The separator: `=` or `:`, quotes, spaces and backslashes around it, or their
                // URL-encodings.
                let mut separated = false;
                loop {
                    match bytes.get(i) {
                        Some(b'=' | b':') => {
                            separated = true;
                            i += 1;
                        }
                        Some(b'"' | b'\'' | b' ' | b'\\') => i += 1,
                        Some(b'%') if ["%3d", "%3a"].iter().any(|e| lower[i..].starts_with(e)) => {
                            separated = true;
                            i += 3;
                        }
                        Some(b'%') if ["%22", "%20"].iter().any(|e| lower[i..].starts_with(e)) => {
                            i += 3
                        }
                        _ => break,
                    }
                }
                Some((at, i, before_ok && separated))
            },
        );
    }
    out
}

/// Replaces every value `find` locates and `accept` agrees is one: `find` returns (name start,
/// value start, whether this is a value to remove) for the next candidate at or after `from`;
/// the value runs to the next delimiter.
fn replace_values(
    text: &str,
    accept: impl Fn(&str) -> bool,
    find: impl Fn(&str, usize) -> Option<(usize, usize, bool)>,
) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    while from < lower.len() {
        let Some((at, value_start, ok)) = find(&lower, from) else {
            break;
        };
        let value_end = text[value_start..]
            .find(|c: char| {
                c.is_whitespace()
                    || matches!(
                        c,
                        '&' | '"' | '\'' | ',' | ';' | '<' | '>' | '}' | ']' | ')' | '\\'
                    )
            })
            .map_or(text.len(), |e| value_start + e);
        let value = &text[value_start..value_end];
        let already = text[value_start..].starts_with(REDACTED);
        if !ok || value.is_empty() || already || !accept(value) {
            from = at + 1;
            continue;
        }
        out.push_str(&text[copied..value_start]);
        out.push_str(REDACTED);
        copied = value_end;
        from = value_end;
    }
    out.push_str(&text[copied..]);
    out
}

/// A writer that redacts what passes through it (log lines, CLI output). Each `write` is redacted
/// on its own, so it suits writers fed whole lines or documents at a time (tracing's formatter
/// writes one event per call).
#[derive(Debug, Clone, Default)]
pub struct RedactingWriter<W>(pub W);

impl<W: std::io::Write> std::io::Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(text) => self.0.write_all(redact(text).as_bytes())?,
            Err(_) => self
                .0
                .write_all(redact(&String::from_utf8_lossy(buf)).as_bytes())?,
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registered_value_is_removed_in_every_encoding() {
        let secret = "s3cr3t/value+with=chars \"q\"";
        register(secret);
        let json = serde_json::to_string(secret).unwrap();
        for text in [
            format!("echo: {secret}!"),
            format!("{{\"error_description\":{json}}}"),
            format!("form: a=1&b={}", percent_encode(secret, true, false)),
            format!("path {}", percent_encode(secret, false, true)),
            format!("x{secret}y"),
        ] {
            let out = redact(&text);
            assert!(!out.contains("s3cr3t"), "{text} -> {out}");
        }
    }

    #[test]
    fn short_values_and_ordinary_text_pass() {
        register("short");
        assert_eq!(redact("a short note"), "a short note");
        assert!(matches!(redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn query_strings_go_in_plain_escaped_and_encoded_urls() {
        for (text, gone) in [
            ("get https://h/p?X-Amz-Signature=abc&t=1 now", "abc"),
            (r#"{"u":"https:\/\/h\/p?X-Amz-Signature=def&t=1"}"#, "def"),
            (
                "u=https%3A%2F%2Fh%2Fp%3FX-Amz-Signature%3Dghi%26t%3D1 x",
                "ghi",
            ),
        ] {
            let out = redact(text);
            assert!(!out.contains(gone), "{text} -> {out}");
        }
        assert_eq!(redact("see https://h/p?q=1."), "see https://h/p?…");
    }

    #[test]
    fn bearer_credentials_and_secret_fields_go_by_shape() {
        for (text, gone) in [
            ("Authorization: Bearer eyJabc.def", "eyJabc"),
            ("authorization=Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
            ("grant_type=x&client_secret=topsecret1&y=2", "topsecret1"),
            (r#"{"refresh_token": "Atzr|abc"}"#, "Atzr|abc"),
            (r#"{\"access_token\":\"tok123\"}"#, "tok123"),
            ("client_secret%3Dencoded9%26", "encoded9"),
        ] {
            let out = redact(text);
            assert!(!out.contains(gone), "{text} -> {out}");
        }
        assert_eq!(redact("token_type basic"), "token_type basic");
        assert_eq!(redact("a signature check"), "a signature check");
    }

    #[test]
    fn a_url_registers_its_query_values() {
        register_url("https://b.s3.amazonaws.com/k?X-Amz-Signature=0a1b2c3d4e5f&X-Amz-Security-Token=IQoJb3Jp%2Bx%2Fy");
        let out = redact("sig 0a1b2c3d4e5f token IQoJb3Jp+x/y");
        assert!(
            !out.contains("0a1b2c3d4e5f") && !out.contains("IQoJb3Jp"),
            "{out}"
        );
    }

    #[test]
    fn the_registry_is_bounded() {
        for i in 0..(MAX_EPHEMERAL + 10) {
            register_for(&format!("ephemeral-value-{i:06}"), Lifetime::Ephemeral);
        }
        let registry = read();
        assert!(registry.ephemeral.len() <= MAX_EPHEMERAL);
        assert!(!registry.known.contains("ephemeral-value-000000"));
    }
}
