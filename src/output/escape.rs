//! What reaches a terminal is escaped: control characters from DNS answers, message headers,
//! relay replies or file contents are shown as `\027`, the way dig shows them.
//!
//! A TXT record or a header can carry `ESC ] 0 ; … BEL` (set the terminal's title) or
//! `ESC [ 2 J` (clear the screen); printed raw in a table, a hostile answer would take over the
//! user's terminal. Every human format escapes, in two layers: each piece of outside text is
//! escaped as it is put in a cell or a line ([`text`]), and the finished report is passed
//! through [`rendered`], which keeps only mailshift's own colour sequences (SGR, when colour is
//! on) and escapes every other control character, so a formatter that forgot the first layer
//! still cannot emit one. JSON keeps the exact strings, escaped by JSON itself.
//!
//! HTML reports escape the same outside text for a browser ([`html`]): markup characters become
//! entities, so a cohort named `<script>` is shown as text, never parsed as a tag or an
//! attribute; control characters and bidirectional overrides are shown as `\DDD`, as on a
//! terminal, so the page and the table show a hostile name alike.

use std::borrow::Cow;

/// Characters a terminal may act on: C0 controls (but newline), DEL, C1 controls, and the
/// bidirectional overrides and isolates that reorder what is displayed ("Trojan Source").
fn is_dangerous(c: char) -> bool {
    (c.is_control() && c != '\n') || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Each byte of `c`'s UTF-8 form as `\DDD` (decimal, three digits), as dig writes them.
fn push_escaped(out: &mut String, c: char) {
    let mut buf = [0u8; 4];
    for b in c.encode_utf8(&mut buf).bytes() {
        out.push_str(&format!("\\{b:03}"));
    }
}

/// Outside text for a human format: every control character but newline escaped.
pub fn text(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_dangerous) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_dangerous(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Outside text for HTML, in element content and in quoted attribute values alike: `&`, `<`,
/// `>`, `"` and `'` as entities, and what [`text`] escapes shown the way it shows it.
pub fn html(s: &str) -> Cow<'_, str> {
    let shown = text(s);
    if !shown.contains(['&', '<', '>', '"', '\'']) {
        return shown;
    }
    let mut out = String::with_capacity(shown.len() + 16);
    for c in shown.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A finished human report: with `color`, well-formed SGR sequences (`ESC [ digits;… m`, what
/// mailshift and its table library emit) are kept; every other control character but newline
/// is escaped.
pub fn rendered(s: &str, color: bool) -> Cow<'_, str> {
    if !s.chars().any(is_dangerous) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if c == '\u{1b}' && color {
            if let Some(len) = sgr_length(rest) {
                out.push_str(&rest[..len]);
                rest = &rest[len..];
                continue;
            }
        }
        if is_dangerous(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    Cow::Owned(out)
}

/// The length of an SGR sequence at the start of `s` (`ESC [ 1 ; 31 m`), if there is one.
fn sgr_length(s: &str) -> Option<usize> {
    let params = s.strip_prefix("\u{1b}[")?;
    let end = params.find(|c: char| !(c.is_ascii_digit() || c == ';'))?;
    (params[end..].starts_with('m') && end <= 32).then_some(2 + end + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "v=spf1 \u{1b}]0;pwned\u{7}\u{1b}[2J -all";

    #[test]
    fn control_characters_are_shown_as_dig_does() {
        assert_eq!(text("plain text\nsecond line"), "plain text\nsecond line");
        assert_eq!(text(HOSTILE), "v=spf1 \\027]0;pwned\\007\\027[2J -all");
        assert_eq!(text("tab\there"), "tab\\009here");
        // C1 CSI (U+009B) and a right-to-left override, byte by byte.
        assert_eq!(text("a\u{9b}b"), "a\\194\\155b");
        assert_eq!(text("x\u{202e}y"), "x\\226\\128\\174y");
        assert!(matches!(text("ünïcödé ✓"), Cow::Borrowed(_)));
    }

    #[test]
    fn html_shows_markup_and_controls_as_text() {
        assert_eq!(
            html("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(html("a\u{1b}[2Jb<"), "a\\027[2Jb&lt;");
        assert!(matches!(html("engaged-30d"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_finished_report_keeps_only_colour_sequences() {
        let report = format!("\u{1b}[1;31mFAIL\u{1b}[0m {HOSTILE}\n");
        let kept = rendered(&report, true);
        assert!(kept.starts_with("\u{1b}[1;31mFAIL\u{1b}[0m v=spf1 \\027]0;pwned\\007\\027[2J"));
        let plain = rendered(&report, false);
        assert!(!plain.contains('\u{1b}'), "{plain}");
        assert!(plain.starts_with("\\027[1;31mFAIL"));
    }
}
