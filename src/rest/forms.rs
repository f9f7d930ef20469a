//! The small text formats of the REST API's requests: `application/x-www-form-urlencoded`
//! (the query string and the `/logincheck` form) and the `Cookie` header, parsed
//! leniently because real clients send odd ones (Ansible echoes a whole `Set-Cookie`
//! value, attributes included: `docs/fortios.md`, "REST API").

/// `name=value` pairs of a query string or form body, percent- and `+`-decoded, in order.
/// A pair without `=` has an empty value; bytes that do not decode stay as they are.
pub(super) fn urlencoded(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

/// The first value of `name` among `pairs`.
pub(super) fn lookup<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// One percent-encoded piece, such as a path segment (`ems%201`).
pub(super) fn urlencoded_value(text: &str) -> String {
    percent_decode(text)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let escaped = bytes
            .get(at + 1..at + 3)
            .filter(|_| bytes[at] == b'%')
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[at], escaped) {
            (_, Some(byte)) => {
                out.push(byte);
                at += 3;
                continue;
            }
            (b'+', None) => out.push(b' '),
            (byte, None) => out.push(byte),
        }
        at += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cookies of `Cookie` header values: `name=value` pairs split on `;`, surrounding
/// white space trimmed, pieces without `=` (`HttpOnly`) and cookie attributes (`path=/`,
/// `expires=…`, `domain=…`, `max-age=…`) skipped. Values keep their quotes.
pub(super) fn cookies<'a>(headers: impl Iterator<Item = &'a str>) -> Vec<(String, String)> {
    const ATTRIBUTES: &[&str] = &[
        "path", "expires", "domain", "max-age", "samesite", "secure", "httponly",
    ];
    headers
        .flat_map(|header| header.split(';'))
        .filter_map(|piece| {
            let (name, value) = piece.trim().split_once('=')?;
            let name = name.trim();
            if name.is_empty() || ATTRIBUTES.contains(&name.to_ascii_lowercase().as_str()) {
                return None;
            }
            Some((name.to_owned(), value.trim().to_owned()))
        })
        .collect()
}

/// `value` without one pair of surrounding double quotes, as clients send the CSRF token
/// both ways.
pub(super) fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};

    use super::*;

    /// Text with the characters forms and cookies split and unescape on.
    fn form_text() -> impl Strategy<Value = String> {
        prop_oneof![any::<String>(), "[a-z=&%+;\" 0-9A-F\\PC]{0,64}"]
    }

    proptest! {
        #![proptest_config(Config {
            cases: 512,
            rng_seed: RngSeed::Fixed(0xf0a5),
            failure_persistence: None,
            ..Config::default()
        })]

        #[test]
        fn forms_query_strings_and_cookies_parse_any_text(text in form_text(), other in form_text()) {
            let pairs = urlencoded(&text);
            let _ = lookup(&pairs, &other);
            let _ = urlencoded_value(&text);
            let _ = cookies([text.as_str(), other.as_str()].into_iter());
            prop_assert!(text.contains(unquote(&text)));
        }
    }

    #[test]
    fn forms_decode_percent_and_plus_and_keep_broken_escapes() {
        let pairs = urlencoded("username=admin&secretkey=p%40ss+w%2Fd&ajax=1&flag&bad=%zz%4");
        assert_eq!(lookup(&pairs, "username"), Some("admin"));
        assert_eq!(lookup(&pairs, "secretkey"), Some("p@ss w/d"));
        assert_eq!(lookup(&pairs, "ajax"), Some("1"));
        assert_eq!(lookup(&pairs, "flag"), Some(""));
        assert_eq!(lookup(&pairs, "bad"), Some("%zz%4"));
        assert_eq!(lookup(&pairs, "missing"), None);
    }

    #[test]
    fn cookies_are_parsed_leniently() {
        // Ansible sends the Set-Cookie value back whole.
        let ansible = "APSCOOKIE_123=\"abc\"; path=/; HttpOnly; secure";
        let plain = "ccsrftoken=\"tok\";sid_seen=1 ; ; =x; broken";
        let found = cookies([ansible, plain].into_iter());
        assert_eq!(
            found,
            [
                ("APSCOOKIE_123".to_owned(), "\"abc\"".to_owned()),
                ("ccsrftoken".to_owned(), "\"tok\"".to_owned()),
                ("sid_seen".to_owned(), "1".to_owned()),
            ]
        );
        assert_eq!(unquote("\"tok\""), "tok");
        assert_eq!(unquote("tok"), "tok");
        assert_eq!(unquote("\""), "\"");
    }
}
