//! HTML for the server-rendered UI: escaping, the page frame, and small building blocks.
//!
//! Every value that comes from a site file, a camera or a user goes through [`esc`].

use std::fmt::Write as _;

/// Escapes text for HTML content and attribute values.
pub use crate::base::markup::escape as esc;

use axum::response::Html;

/// A whole page: the frame, the navigation (when logged in) and the body.
pub fn frame(
    title: &str,
    site: &str,
    user: Option<&str>,
    current: &str,
    body: &str,
) -> Html<String> {
    let mut nav = String::new();
    if let Some(user) = user {
        for (href, label) in [
            ("/", "Overview"),
            ("/live", "Live"),
            ("/recordings", "Recordings"),
            ("/cameras", "Cameras"),
            ("/ports", "Ports"),
            ("/history", "Config history"),
        ] {
            let here = if href == current {
                " aria-current=\"page\""
            } else {
                ""
            };
            let _ = write!(nav, "<a href=\"{href}\"{here}>{label}</a>");
        }
        let _ = write!(
            nav,
            "<form method=\"post\" action=\"/logout\" class=\"logout\"><span>{}</span><button>Log out</button></form>",
            esc(user)
        );
    }
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · {}</title><link rel=\"stylesheet\" href=\"/assets/style.css\"></head>\
         <body><header><strong>sited</strong> <span class=\"site\">{}</span><nav>{nav}</nav></header><main><h1>{}</h1>{body}</main></body></html>\n",
        esc(title),
        esc(site),
        esc(site),
        esc(title)
    ))
}

/// A table with a header row; cells are HTML already.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::from("<table><thead><tr>");
    for h in header {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// A status badge: `ok`, `warn` or `bad`.
pub fn badge(kind: &str, text: &str) -> String {
    format!("<span class=\"badge {kind}\">{}</span>", esc(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
