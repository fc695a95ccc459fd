//! Credentials as a request carries them, parsed once for every protocol: HTTP (the web and
//! live listeners, HTTP-FLV past hyper) and RTSP.
//!
//! A request may carry several: a session cookie, a bearer token or `?token=`, and HTTP Basic.
//! [`super::Auth::principal`] tries them in that order.

use base64::Engine as _;

/// The session cookie's name.
pub const COOKIE: &str = "sited_session";

/// What a request offers to prove who it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The session cookie.
    pub session: Option<String>,
    /// A bearer token, from `Authorization: Bearer` or `?token=`.
    pub token: Option<String>,
    /// HTTP Basic: user and password.
    pub basic: Option<(String, String)>,
}

impl Credentials {
    /// The credentials of a request, from a header lookup (`header("authorization")`, …, case
    /// as given) and the URL's query.
    pub fn from_parts<'a>(
        header: impl Fn(&str) -> Vec<&'a str>,
        query: Option<&str>,
    ) -> Credentials {
        let authorization = header("authorization");
        let bearer = authorization
            .iter()
            .find_map(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_string());
        Credentials {
            session: header("cookie")
                .iter()
                .flat_map(|v| v.split(';'))
                .find_map(|c| {
                    let (k, v) = c.trim().split_once('=')?;
                    (k == COOKIE).then(|| v.to_string())
                }),
            token: bearer.or_else(|| query.and_then(query_token)),
            basic: authorization.iter().find_map(|v| basic(v)),
        }
    }

    /// The credentials of an HTTP request's headers and query.
    pub fn from_http(headers: &http::HeaderMap, query: Option<&str>) -> Credentials {
        Credentials::from_parts(
            |name| {
                headers
                    .get_all(name)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect()
            },
            query,
        )
    }
}

/// The `token=` parameter of a query string.
pub fn query_token(query: &str) -> Option<String> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .filter(|t| !t.is_empty())
        .map(String::from)
}

/// The user and password of an `Authorization: Basic …` value.
pub fn basic(value: &str) -> Option<(String, String)> {
    let encoded = value.strip_prefix("Basic ")?;
    let text = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?,
    )
    .ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_of_credential() {
        let mut h = http::HeaderMap::new();
        h.insert("cookie", "a=b; sited_session=s1".parse().unwrap());
        h.append("authorization", "Basic YW5uOnB3OnJk".parse().unwrap());
        let c = Credentials::from_http(&h, Some("x=1&token=t9"));
        assert_eq!(c.session.as_deref(), Some("s1"));
        assert_eq!(c.token.as_deref(), Some("t9"));
        assert_eq!(c.basic, Some(("ann".into(), "pw:rd".into())));
        h.insert("authorization", "Bearer  tok ".parse().unwrap());
        let c = Credentials::from_http(&h, Some("token=ignored"));
        assert_eq!(c.token.as_deref(), Some("tok"));
        assert_eq!(basic("Basic !!!"), None);
        assert_eq!(query_token("token="), None);
    }
}
