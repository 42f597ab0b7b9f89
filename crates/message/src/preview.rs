//! A message's preview (RFC 8970): the start of what a reader would see first, as a
//! list of messages shows it under the subject.

use crate::text::body_text;

/// Most characters of a preview (RFC 8970 3.1 allows 256; mail clients show fewer).
pub const PREVIEW_CHARS: usize = 200;

/// The first [`PREVIEW_CHARS`] characters of the message's readable text (text/plain
/// preferred; HTML with its tags and entities reduced to text), whitespace runs
/// collapsed to one space. Empty when the message has no text.
pub fn preview(raw: &[u8]) -> String {
    let text = body_text(raw);
    let looks_html = text.trim_start().starts_with('<');
    let mut out = String::new();
    let mut in_tag = false;
    let mut space = false;
    let mut count = 0;
    for ch in text.chars() {
        if looks_html {
            match ch {
                '<' => {
                    in_tag = true;
                    continue;
                }
                '>' if in_tag => {
                    in_tag = false;
                    space = !out.is_empty();
                    continue;
                }
                _ if in_tag => continue,
                _ => {}
            }
        }
        if ch.is_whitespace() || ch.is_control() {
            space = !out.is_empty();
            continue;
        }
        if count == PREVIEW_CHARS {
            break;
        }
        if space {
            if count + 1 == PREVIEW_CHARS {
                break;
            }
            out.push(' ');
            count += 1;
            space = false;
        }
        out.push(ch);
        count += 1;
    }
    if looks_html {
        out = out
            .replace("&nbsp;", " ")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&amp;", "&");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_collapsed_and_cut() {
        let raw = b"Subject: x\r\n\r\nHello   there,\r\n\r\n  how are you?\r\n";
        assert_eq!(preview(raw), "Hello there, how are you?");
        let long = format!("Subject: x\r\n\r\n{}\r\n", "ab ".repeat(200));
        let p = preview(long.as_bytes());
        assert_eq!(p.chars().count(), PREVIEW_CHARS);
        assert!(!p.ends_with(' '));
        assert_eq!(preview(b"Subject: x\r\n\r\n"), "");
    }

    #[test]
    fn html_reduced_to_text() {
        let raw = b"Content-Type: text/html\r\n\r\n<html><body><p>Hi &amp; welcome</p><p>to&nbsp;tern</p></body></html>\r\n";
        assert_eq!(preview(raw), "Hi & welcome to tern");
    }
}
