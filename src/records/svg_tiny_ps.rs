//! BIMI logos: the SVG Tiny Portable/Secure profile (draft-svg-tiny-ps-abrotman, with the BIMI
//! Group's SVG guidance and its RNC schema) that receivers require of the file an assertion
//! record's `l=` names, and of the logo embedded in a mark certificate. SVG Tiny PS is SVG Tiny
//! 1.2 with everything that could run, fetch or move taken out.
//!
//! This is a checker, not a full schema validator: it enforces the rules that decide whether a
//! logo is shown (root element, `version`, `baseProfile`, a `<title>`, no scripts, animation,
//! raster images, foreign objects, links or external references, no entity declarations) and
//! notes what is recommended (a square `viewBox`, at most 32 KiB). The input is untrusted: it is
//! decompressed (`.svgz`) and read with hard limits, entities are never expanded (quick-xml only
//! resolves the five predefined ones and character references), and no input makes it panic.

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;

/// The SVG namespace the root element must be in.
pub const SVG_NAMESPACE: &str = "http://www.w3.org/2000/svg";
/// The largest document read, after decompression: far above any logo (receivers keep to tens
/// of kilobytes), small enough that a gzip bomb costs nothing.
pub const MAX_SVG_BYTES: usize = 1024 * 1024;
/// The BIMI Group's recommended maximum size of a logo.
pub const RECOMMENDED_MAX_BYTES: usize = 32 * 1024;

/// Distinct findings kept; a hostile file could otherwise produce one per element.
const MAX_FINDINGS: usize = 50;
/// Element nesting kept track of; real logos nest a handful of `<g>`s.
const MAX_DEPTH: usize = 256;
/// XML events read before giving up (a 1 MiB file has at most about half a million).
const MAX_EVENTS: usize = 600_000;
/// Characters of the `<title>` kept.
const MAX_TITLE_CHARS: usize = 200;

/// Why an `.svgz` logo could not be decompressed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SvgzError {
    #[error("the gzip data is corrupt ({0})")]
    Corrupt(String),
    #[error("it is larger than {limit} bytes once decompressed")]
    TooLarge { limit: usize },
}

/// True when the bytes start with the gzip magic number (an `.svgz` file).
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// The SVG document in `bytes`: decompressed when gzipped, as it is otherwise. Decompression
/// stops at [`MAX_SVG_BYTES`].
pub fn decompress(bytes: &[u8]) -> Result<Cow<'_, [u8]>, SvgzError> {
    if !is_gzip(bytes) {
        return Ok(Cow::Borrowed(bytes));
    }
    let limit = MAX_SVG_BYTES;
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::GzDecoder::new(bytes)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| SvgzError::Corrupt(e.to_string()))?;
    if out.len() > limit {
        return Err(SvgzError::TooLarge { limit });
    }
    Ok(Cow::Owned(out))
}

/// What checking a logo found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SvgReport {
    /// The input was gzip-compressed (`.svgz`); offsets and lines refer to the decompressed text.
    pub gzipped: bool,
    /// Size of the SVG document in bytes (decompressed).
    pub size: usize,
    /// The root `<title>`'s text, trimmed.
    pub title: Option<String>,
    /// The root `viewBox` (min-x, min-y, width, height), when it holds four numbers.
    pub view_box: Option<[f64; 4]>,
    /// What stops receivers from showing the logo, each naming the element or attribute and
    /// where it is.
    pub problems: Vec<String>,
    /// Recommendations.
    pub notes: Vec<String>,
}

impl SvgReport {
    /// Would receivers that validate the profile show the logo?
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks a logo (SVG or gzipped SVGZ bytes, as fetched) against SVG Tiny PS.
pub fn check(bytes: &[u8]) -> SvgReport {
    let mut report = SvgReport {
        gzipped: is_gzip(bytes),
        ..SvgReport::default()
    };
    if !report.gzipped && bytes.len() > MAX_SVG_BYTES {
        report.size = bytes.len();
        report.problems.push(format!(
            "the logo is {} bytes; mailshift reads at most {MAX_SVG_BYTES} (receivers recommend \
             at most {RECOMMENDED_MAX_BYTES})",
            bytes.len()
        ));
        return report;
    }
    let svg = match decompress(bytes) {
        Ok(svg) => svg,
        Err(e) => {
            report
                .problems
                .push(format!("the logo is gzip-compressed (SVGZ), but {e}"));
            return report;
        }
    };
    report.size = svg.len();
    if svg.len() > RECOMMENDED_MAX_BYTES {
        report.notes.push(format!(
            "the logo is {} bytes{}; the BIMI Group recommends at most {RECOMMENDED_MAX_BYTES} \
             (32 KiB), and some receivers refuse larger files",
            svg.len(),
            if report.gzipped {
                " once decompressed"
            } else {
                ""
            }
        ));
    }
    if svg.starts_with(&[0xfe, 0xff]) || svg.starts_with(&[0xff, 0xfe]) {
        report
            .problems
            .push("the logo is UTF-16 text; it must be UTF-8".into());
        return report;
    }
    let (bom, body) = match svg.strip_prefix(&[0xef, 0xbb, 0xbf]) {
        Some(rest) => (3, rest),
        None => (0, &svg[..]),
    };
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        Err(e) => {
            let at = e.valid_up_to();
            let line = body
                .get(..at)
                .map_or(0, |b| memchr::memchr_iter(b'\n', b).count())
                + 1;
            report.problems.push(format!(
                "line {line}, byte {}: the logo is not UTF-8 text",
                at + bom
            ));
            return report;
        }
    };
    if text.trim().is_empty() {
        report.problems.push("the logo file is empty".into());
        return report;
    }
    Scan::new(text, bom).run(&mut report);
    report
}

/// Why an element is refused, by local name (SVG namespace).
fn refused_element(name: &str) -> Option<&'static str> {
    Some(match name {
        "script" | "handler" => "scripts are not allowed",
        "listener" => "event listeners are not allowed",
        "animate" | "animateMotion" | "animateTransform" | "animateColor" | "set" | "discard"
        | "animation" => "animation is not allowed",
        "image" => "raster images are not allowed (draw the logo with vector shapes)",
        "foreignObject" => "foreign content is not allowed",
        "video" | "audio" | "iframe" => "media and embedded documents are not allowed",
        "a" => "links are not allowed",
        "prefetch" => "external resources are not allowed",
        "style" => "CSS style sheets are not part of SVG Tiny (use presentation attributes)",
        "filter" => "filters are not part of SVG Tiny",
        n if n.starts_with("fe") && n.len() > 2 => "filter effects are not part of SVG Tiny",
        "clipPath" | "mask" | "pattern" | "marker" | "symbol" | "cursor" | "view" => {
            "it is not part of SVG Tiny 1.2"
        }
        _ => return None,
    })
}

/// Elements of SVG Tiny 1.2 that the Tiny PS schema keeps; others are noted.
const KNOWN_ELEMENTS: &[&str] = &[
    "svg",
    "g",
    "defs",
    "desc",
    "title",
    "metadata",
    "path",
    "rect",
    "circle",
    "ellipse",
    "line",
    "polyline",
    "polygon",
    "text",
    "tspan",
    "textArea",
    "tbreak",
    "linearGradient",
    "radialGradient",
    "stop",
    "solidColor",
    "use",
    "switch",
    "font",
    "font-face",
    "glyph",
    "missing-glyph",
    "hkern",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Severity {
    Problem,
    Note,
}

struct Finding {
    severity: Severity,
    message: String,
    repeats: usize,
}

/// One pass over the document.
struct Scan<'a> {
    text: &'a str,
    /// Bytes before `text` in the file (a byte-order mark).
    base: usize,
    newlines: Vec<usize>,
    findings: Vec<Finding>,
    by_key: HashMap<String, usize>,
    dropped: usize,
    stack: Vec<String>,
    root_seen: bool,
    root_is_svg: bool,
    root_closed: bool,
    /// Depth of the root `<title>` while inside it.
    in_title: bool,
    title: Option<String>,
    version: Option<String>,
    base_profile: Option<String>,
    view_box: Option<String>,
    size: (Option<String>, Option<String>),
}

impl<'a> Scan<'a> {
    fn new(text: &'a str, base: usize) -> Scan<'a> {
        Scan {
            text,
            base,
            newlines: memchr::memchr_iter(b'\n', text.as_bytes()).collect(),
            findings: Vec::new(),
            by_key: HashMap::new(),
            dropped: 0,
            stack: Vec::new(),
            root_seen: false,
            root_is_svg: false,
            root_closed: false,
            in_title: false,
            title: None,
            version: None,
            base_profile: None,
            view_box: None,
            size: (None, None),
        }
    }

    fn at(&self, offset: usize) -> String {
        let offset = offset.min(self.text.len());
        let line = self.newlines.partition_point(|&p| p < offset) + 1;
        format!("line {line}, byte {}", offset + self.base)
    }

    /// Records a finding once per `key`; repeats are counted, not listed.
    fn add(&mut self, severity: Severity, key: String, message: String) {
        if let Some(&i) = self.by_key.get(&key) {
            if let Some(f) = self.findings.get_mut(i) {
                f.repeats += 1;
            }
            return;
        }
        if self.findings.len() >= MAX_FINDINGS {
            self.dropped += 1;
            return;
        }
        self.by_key.insert(key, self.findings.len());
        self.findings.push(Finding {
            severity,
            message,
            repeats: 0,
        });
    }

    fn problem(&mut self, key: impl Into<String>, message: String) {
        self.add(Severity::Problem, key.into(), message);
    }

    fn note(&mut self, key: impl Into<String>, message: String) {
        self.add(Severity::Note, key.into(), message);
    }

    fn run(mut self, report: &mut SvgReport) {
        let mut reader = NsReader::from_str(self.text);
        let mut events = 0usize;
        loop {
            events += 1;
            if events > MAX_EVENTS {
                self.problem(
                    "events",
                    format!(
                        "the logo has more than {MAX_EVENTS} XML nodes; it was not read to the end"
                    ),
                );
                break;
            }
            let start = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
            let (in_svg_ns, event) = match reader.read_resolved_event() {
                Ok((ns, event)) => (namespace_of(&ns), event),
                Err(e) => {
                    let at = usize::try_from(reader.error_position()).unwrap_or(usize::MAX);
                    let message = format!("{}: the logo is not well-formed XML ({e})", self.at(at));
                    self.problem("xml", message);
                    break;
                }
            };
            match event {
                Event::Decl(decl) => {
                    if let Some(Ok(encoding)) = decl.encoding() {
                        if !encoding.eq_ignore_ascii_case("utf-8") {
                            let message = format!(
                                "{}: the XML declaration names the encoding `{}`; the file is \
                                 UTF-8, so declare `UTF-8`",
                                self.at(start),
                                clip(&encoding)
                            );
                            self.note("encoding", message);
                        }
                    }
                }
                Event::DocType(doctype) => {
                    let body: &str = &doctype;
                    if body.contains("<!ENTITY") {
                        let message = format!(
                            "{}: the DOCTYPE declares entities (`<!ENTITY`); entity declarations \
                             are refused (this is how entity-expansion attacks such as \
                             \"billion laughs\" begin) and none are expanded",
                            self.at(start)
                        );
                        self.problem("entity-decl", message);
                    } else {
                        let message = format!(
                            "{}: the logo has a DOCTYPE; SVG Tiny PS logos need none, and some \
                             validators refuse external DTDs: remove it",
                            self.at(start)
                        );
                        self.note("doctype", message);
                    }
                }
                Event::PI(pi) => {
                    if pi.target().eq_ignore_ascii_case("xml-stylesheet") {
                        let message = format!(
                            "{}: `<?xml-stylesheet?>` loads an external style sheet; external \
                             resources are not allowed",
                            self.at(start)
                        );
                        self.problem("stylesheet-pi", message);
                    }
                }
                Event::Start(element) => {
                    self.element(&element, in_svg_ns, start);
                    if self.stack.len() >= MAX_DEPTH {
                        let message = format!(
                            "{}: elements are nested more than {MAX_DEPTH} deep; the logo was \
                             not read further",
                            self.at(start)
                        );
                        self.problem("depth", message);
                        break;
                    }
                    let name = element.local_name().as_ref().to_string();
                    if self.stack.len() == 1 && name == "title" && in_svg_ns == Ns::Svg {
                        self.in_title = true;
                        self.title.get_or_insert_with(String::new);
                    }
                    self.stack.push(name);
                }
                Event::Empty(element) => {
                    self.element(&element, in_svg_ns, start);
                    let name = element.local_name();
                    if self.stack.len() == 1 && name.as_ref() == "title" && in_svg_ns == Ns::Svg {
                        self.title.get_or_insert_with(String::new);
                    }
                    if self.stack.is_empty() {
                        self.root_closed = true;
                    }
                }
                Event::End(_) => {
                    self.stack.pop();
                    if self.stack.len() == 1 {
                        self.in_title = false;
                    }
                    if self.stack.is_empty() {
                        self.root_closed = true;
                    }
                }
                Event::Text(text) => {
                    if self.in_title {
                        self.push_title(&text.xml10_content());
                    }
                }
                Event::CData(data) => {
                    if self.in_title {
                        self.push_title(&data.xml10_content());
                    }
                }
                Event::GeneralRef(reference) => {
                    let resolved = match reference.resolve_char_ref() {
                        Ok(Some(c)) => Some(c.to_string()),
                        Ok(None) => quick_xml::escape::resolve_predefined_entity(&reference)
                            .map(str::to_string),
                        Err(_) => None,
                    };
                    match resolved {
                        Some(text) if self.in_title => self.push_title(&text),
                        Some(_) => {}
                        None => {
                            let name: &str = &reference;
                            let message = format!(
                                "{}: the entity reference `&{};` is not one of XML's predefined \
                                 entities; custom entities are refused and never expanded",
                                self.at(start),
                                clip(name)
                            );
                            self.problem(format!("entity-ref:{}", clip(name)), message);
                        }
                    }
                }
                Event::Comment(_) => {}
                Event::Eof => {
                    if !self.stack.is_empty() {
                        let open = self.stack.last().cloned().unwrap_or_default();
                        let message = format!(
                            "the logo ends inside `<{}>`; it is not well-formed XML",
                            clip(&open)
                        );
                        self.problem("xml", message);
                    }
                    break;
                }
            }
        }
        self.finish(report);
    }

    fn push_title(&mut self, text: &str) {
        if let Some(title) = self.title.as_mut() {
            let room = MAX_TITLE_CHARS.saturating_sub(title.chars().count());
            title.extend(text.chars().take(room));
        }
    }

    /// Checks one element and its attributes.
    fn element(&mut self, element: &BytesStart<'_>, ns: Ns, start: usize) {
        let local = element.local_name();
        let name = local.as_ref();
        let qname = element.name();
        let shown = clip(qname.as_ref());
        let is_root = self.stack.is_empty();
        if is_root {
            if self.root_closed {
                let message = format!(
                    "{}: `<{shown}>` is a second root element; an XML document has one",
                    self.at(start)
                );
                self.problem("second-root", message);
                return;
            }
            self.root_seen = true;
            self.root_is_svg = name == "svg";
            if name != "svg" {
                let message = format!(
                    "{}: the root element is `<{shown}>`; a logo's root must be `<svg>`",
                    self.at(start)
                );
                self.problem("root", message);
            } else if ns != Ns::Svg {
                let message = format!(
                    "{}: the root `<svg>` is not in the SVG namespace; add \
                     `xmlns=\"{SVG_NAMESPACE}\"`",
                    self.at(start)
                );
                self.problem("root-ns", message);
            }
        } else if ns == Ns::Svg {
            if let Some(why) = refused_element(name) {
                let message = format!("{}: `<{shown}>`: {why}", self.at(start));
                self.problem(format!("element:{name}"), message);
            } else if !KNOWN_ELEMENTS.contains(&name) {
                let message = format!(
                    "{}: `<{shown}>` is not an SVG Tiny PS element; strict validators (the BIMI \
                     Group's schema) refuse it",
                    self.at(start)
                );
                self.note(format!("element:{name}"), message);
            }
        } else {
            let message = format!(
                "{}: `<{shown}>` is outside the SVG namespace (an editor's private data?); the \
                 Tiny PS schema does not allow it: remove it",
                self.at(start)
            );
            self.note(format!("foreign:{}", clip(qname.as_ref())), message);
        }

        for attr in element.attributes() {
            let attr = match attr {
                Ok(attr) => attr,
                Err(e) => {
                    let message = format!(
                        "{}: `<{shown}>` has a malformed attribute ({e})",
                        self.at(start)
                    );
                    self.problem("attr-syntax", message);
                    break;
                }
            };
            let key = attr.key;
            let key_text = clip(key.as_ref());
            let attr_local = key.local_name();
            let attr_name = attr_local.as_ref();
            let value = match attr.normalized_value(quick_xml::XmlVersion::Implicit1_0) {
                Ok(value) => value,
                Err(e) => {
                    let message = format!(
                        "{}: the value of `{key_text}` on `<{shown}>` cannot be read ({e}); \
                         custom entities are refused",
                        self.at(start)
                    );
                    self.problem(format!("attr-value:{key_text}"), message);
                    continue;
                }
            };
            if key.prefix().is_some_and(|p| p.as_ref() == "xmlns") || key.as_ref() == "xmlns" {
                continue;
            }
            if is_root && key.prefix().is_none() {
                match attr_name {
                    "x" | "y" => {
                        let message = format!(
                            "{}: the root `<svg>` has `{attr_name}=\"{}\"`; Tiny PS does not \
                             allow `x` or `y` on the root (an export artefact: remove it)",
                            self.at(start),
                            clip(&value)
                        );
                        self.problem(format!("root-{attr_name}"), message);
                    }
                    "version" => self.version = Some(value.trim().to_string()),
                    "baseProfile" => self.base_profile = Some(value.trim().to_string()),
                    "viewBox" => self.view_box = Some(value.to_string()),
                    "width" => self.size.0 = Some(value.trim().to_string()),
                    "height" => self.size.1 = Some(value.trim().to_string()),
                    _ => {}
                }
            }
            if attr_name.len() > 2 && attr_name.starts_with("on") {
                let message = format!(
                    "{}: `{key_text}` on `<{shown}>` is an event handler; scripts are not allowed",
                    self.at(start)
                );
                self.problem(format!("handler:{attr_name}"), message);
                continue;
            }
            if attr_name == "href" {
                let target = value.trim();
                if target.len() >= 5
                    && target
                        .get(..5)
                        .is_some_and(|s| s.eq_ignore_ascii_case("data:"))
                {
                    let message = format!(
                        "{}: `{key_text}` on `<{shown}>` embeds a `data:` resource; embedded \
                         images and documents are not allowed",
                        self.at(start)
                    );
                    self.problem("href-data", message);
                } else if !target.starts_with('#') {
                    let message = format!(
                        "{}: `{key_text}=\"{}\"` on `<{shown}>` refers outside the document; \
                         only references to the logo's own elements (`#id`) are allowed",
                        self.at(start),
                        clip(target)
                    );
                    self.problem("href-external", message);
                }
                continue;
            }
            if let Some(reference) = external_url_reference(&value) {
                let message = format!(
                    "{}: `{key_text}` on `<{shown}>` refers to `url({})`; only references to \
                     the logo's own elements (`url(#id)`) are allowed",
                    self.at(start),
                    clip(reference)
                );
                self.problem("url-external", message);
            }
            if attr_name == "style" && key.prefix().is_none() {
                let message = format!(
                    "{}: `style` attributes are not part of SVG Tiny 1.2; strict validators \
                     refuse them (use presentation attributes such as `fill`)",
                    self.at(start)
                );
                self.note("style-attr", message);
            }
        }
    }

    fn finish(mut self, report: &mut SvgReport) {
        if !self.root_seen {
            self.problem("root", "the logo has no root element".into());
        } else if self.root_is_svg {
            match self.version.as_deref() {
                Some("1.2") => {}
                Some(other) => {
                    let message = format!(
                        "the root `<svg>` has `version=\"{}\"`; Tiny PS requires `version=\"1.2\"`",
                        clip(other)
                    );
                    self.problem("version", message);
                }
                None => self.problem(
                    "version",
                    "the root `<svg>` has no `version`; Tiny PS requires `version=\"1.2\"`".into(),
                ),
            }
            match self.base_profile.as_deref() {
                Some("tiny-ps") => {}
                Some(other) => {
                    let message = format!(
                        "the root `<svg>` has `baseProfile=\"{}\"`; it must be \
                         `baseProfile=\"tiny-ps\"`",
                        clip(other)
                    );
                    self.problem("baseProfile", message);
                }
                None => self.problem(
                    "baseProfile",
                    "the root `<svg>` has no `baseProfile`; it must be `baseProfile=\"tiny-ps\"`"
                        .into(),
                ),
            }
            match self.title.as_deref().map(str::trim) {
                None => self.problem(
                    "title",
                    "the root `<svg>` has no `<title>` child; Tiny PS requires one (the brand's \
                     name)"
                        .into(),
                ),
                Some("") => self.note(
                    "title-empty",
                    "the `<title>` is empty; it should hold the brand's name".into(),
                ),
                Some(_) => {}
            }
            self.check_shape(report);
        }
        report.title = self
            .title
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        for finding in self.findings {
            let message = if finding.repeats > 0 {
                format!("{} ({} more like it)", finding.message, finding.repeats)
            } else {
                finding.message
            };
            match finding.severity {
                Severity::Problem => report.problems.push(message),
                Severity::Note => report.notes.push(message),
            }
        }
        if self.dropped > 0 {
            report
                .notes
                .push(format!("{} further findings were not listed", self.dropped));
        }
    }

    /// The aspect-ratio recommendation: logos are shown in a square (often a circle).
    fn check_shape(&mut self, report: &mut SvgReport) {
        let Some(raw) = self.view_box.clone() else {
            let message = match (&self.size.0, &self.size.1) {
                (Some(w), Some(h)) if w != h => format!(
                    "the root `<svg>` has no `viewBox` and is {}×{}; BIMI logos should be square \
                     with a square `viewBox`",
                    clip(w),
                    clip(h)
                ),
                _ => {
                    "the root `<svg>` has no `viewBox`; BIMI logos should have a square one".into()
                }
            };
            self.note("viewBox", message);
            return;
        };
        let numbers: Vec<f64> = raw
            .split(|c: char| c.is_ascii_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
            .take(5)
            .map(|s| s.parse::<f64>().unwrap_or(f64::NAN))
            .collect();
        match numbers.as_slice() {
            [x, y, w, h] if [x, y, w, h].iter().all(|n| n.is_finite()) => {
                report.view_box = Some([*x, *y, *w, *h]);
                if *w <= 0.0 || *h <= 0.0 {
                    let message = format!(
                        "`viewBox=\"{}\"` has no area; nothing would be drawn",
                        clip(raw.trim())
                    );
                    self.problem("viewBox", message);
                } else if (w - h).abs() > f64::EPSILON * w.abs().max(h.abs()) {
                    let message = format!(
                        "`viewBox=\"{}\"` is {w}×{h}, not square; BIMI logos are shown in a \
                         square or circle, so make width and height equal",
                        clip(raw.trim())
                    );
                    self.note("viewBox", message);
                }
            }
            _ => {
                let message = format!("`viewBox=\"{}\"` is not four numbers", clip(raw.trim()));
                self.note("viewBox", message);
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ns {
    Svg,
    Other,
}

fn namespace_of(ns: &ResolveResult<'_>) -> Ns {
    match ns {
        ResolveResult::Bound(n) if n.as_ref() == SVG_NAMESPACE => Ns::Svg,
        _ => Ns::Other,
    }
}

/// The target of the first `url(...)` in an attribute value that is not a `#fragment`.
fn external_url_reference(value: &str) -> Option<&str> {
    let mut rest = value;
    while let Some(i) = find_ascii_ci(rest, "url(") {
        let after = rest.get(i + 4..).unwrap_or_default();
        let inner = after.split(')').next().unwrap_or_default();
        let target = inner.trim().trim_matches(|c| c == '"' || c == '\'').trim();
        if !target.starts_with('#') {
            return Some(target);
        }
        rest = after;
    }
    None
}

fn find_ascii_ci(haystack: &str, needle: &str) -> Option<usize> {
    let h = haystack.as_bytes();
    let n = needle.as_bytes();
    h.windows(n.len()).position(|w| w.eq_ignore_ascii_case(n))
}

/// A value cut for quoting in a message.
fn clip(text: &str) -> String {
    crate::words::clip(text, 80)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/fixtures/bimi/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn problems_of(name: &str) -> Vec<String> {
        check(&fixture(name)).problems
    }

    #[test]
    fn the_valid_fixture_passes() {
        let r = check(&fixture("valid-tiny-ps.svg"));
        assert!(r.is_valid(), "{r:?}");
        assert!(r.notes.is_empty(), "{r:?}");
        assert_eq!(r.title.as_deref(), Some("Northwind Outfitters"));
        assert_eq!(r.view_box, Some([0.0, 0.0, 512.0, 512.0]));
        assert!(!r.gzipped);
        assert!(r.size < RECOMMENDED_MAX_BYTES);
    }

    #[test]
    fn the_svgz_fixture_is_decompressed_and_passes() {
        let bytes = fixture("valid-tiny-ps.svgz");
        assert!(is_gzip(&bytes));
        let r = check(&bytes);
        assert!(r.gzipped);
        assert!(r.is_valid(), "{r:?}");
        assert_eq!(
            decompress(&bytes).unwrap().as_ref(),
            fixture("valid-tiny-ps.svg").as_slice()
        );
    }

    #[test]
    fn each_broken_fixture_breaks_its_rule() {
        let cases: &[(&str, &str)] = &[
            ("script.svg", "`<script>`: scripts are not allowed"),
            ("external-href.svg", "refers outside the document"),
            ("raster-image.svg", "`<image>`: raster images"),
            ("missing-title.svg", "no `<title>` child"),
            (
                "wrong-base-profile.svg",
                "baseProfile=\"tiny\"`; it must be",
            ),
            ("root-xy.svg", "has `x=\"0px\"`"),
            ("animation.svg", "animation is not allowed"),
            ("billion-laughs.svg", "declares entities"),
            ("event-handler.svg", "is an event handler"),
            ("foreign-object.svg", "`<foreignObject>`"),
        ];
        for (file, expected) in cases {
            let problems = problems_of(file);
            assert!(
                problems.iter().any(|p| p.contains(expected)),
                "{file}: expected `{expected}` in {problems:?}"
            );
        }
    }

    #[test]
    fn billion_laughs_is_refused_without_expanding() {
        let r = check(&fixture("billion-laughs.svg"));
        assert!(r.problems.iter().any(|p| p.contains("declares entities")));
        assert!(
            r.problems.iter().any(|p| p.contains("`&lol9;`")),
            "{:?}",
            r.problems
        );
        // Never expanded: the title holds nothing of the entity's would-be text.
        assert!(r.title.as_deref().unwrap_or_default().len() < 100);
    }

    #[test]
    fn recommendations_are_notes() {
        let wide = check(&fixture("not-square.svg"));
        assert!(wide.is_valid(), "{wide:?}");
        assert!(
            wide.notes.iter().any(|n| n.contains("not square")),
            "{wide:?}"
        );
        let big = check(&fixture("oversize.svg"));
        assert!(big.is_valid(), "{big:?}");
        assert!(big.size > RECOMMENDED_MAX_BYTES);
        assert!(
            big.notes
                .iter()
                .any(|n| n.contains(&format!("{} bytes", big.size))),
            "{big:?}"
        );
    }

    #[test]
    fn positions_are_given() {
        let r = check(&fixture("script.svg"));
        let p = r.problems.iter().find(|p| p.contains("<script>")).unwrap();
        assert!(p.starts_with("line 4, byte "), "{p}");
    }

    #[test]
    fn root_checks() {
        let wrong_root =
            check(b"<html xmlns=\"http://www.w3.org/1999/xhtml\"><title>x</title></html>");
        assert!(wrong_root
            .problems
            .iter()
            .any(|p| p.contains("root element is `<html>`")));
        let no_ns = check(b"<svg version=\"1.2\" baseProfile=\"tiny-ps\"><title>x</title></svg>");
        assert!(no_ns
            .problems
            .iter()
            .any(|p| p.contains("not in the SVG namespace")));
        let no_version = check(
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" baseProfile=\"tiny-ps\" viewBox=\"0 0 1 1\"><title>x</title></svg>",
        );
        assert_eq!(no_version.problems.len(), 1, "{no_version:?}");
        assert!(no_version.problems[0].contains("no `version`"));
        let prefixed = check(
            b"<s:svg xmlns:s=\"http://www.w3.org/2000/svg\" version=\"1.2\" baseProfile=\"tiny-ps\" viewBox=\"0 0 1 1\"><s:title>x</s:title></s:svg>",
        );
        assert!(prefixed.is_valid(), "{prefixed:?}");
    }

    #[test]
    fn references_inside_the_document_are_allowed() {
        let svg = br##"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" version="1.2" baseProfile="tiny-ps" viewBox="0 0 10 10">
<title>t</title><defs><linearGradient id="g"><stop offset="0" stop-color="#fff"/></linearGradient><rect id="r" width="1" height="1"/></defs>
<rect width="10" height="10" fill="url(#g)"/><use xlink:href="#r"/></svg>"##;
        let r = check(svg);
        assert!(r.is_valid(), "{r:?}");
        let paint = br##"<svg xmlns="http://www.w3.org/2000/svg" version="1.2" baseProfile="tiny-ps" viewBox="0 0 10 10"><title>t</title><rect fill="url(https://evil.example/p.svg#x)" width="1" height="1"/></svg>"##;
        let r = check(paint);
        assert!(
            r.problems
                .iter()
                .any(|p| p.contains("url(https://evil.example")),
            "{r:?}"
        );
    }

    #[test]
    fn encoding_and_garbage() {
        let latin1 = b"<svg>\xe9</svg>";
        assert!(check(latin1).problems[0].contains("not UTF-8"));
        assert!(check(b"").problems[0].contains("empty"));
        assert!(check(b"\xff\xfe<\0s\0").problems[0].contains("UTF-16"));
        assert!(check(b"just words")
            .problems
            .iter()
            .any(|p| p.contains("no root")));
        assert!(check(b"<svg><g></svg>")
            .problems
            .iter()
            .any(|p| p.contains("well-formed")));
        let bom = [b"\xef\xbb\xbf".as_slice(), &fixture("valid-tiny-ps.svg")].concat();
        assert!(check(&bom).is_valid());
        assert!(check(&[0x1f, 0x8b, 0, 1, 2]).problems[0].contains("gzip"));
    }

    #[test]
    fn gzip_bombs_are_bounded() {
        let bomb = gzip(&vec![b' '; MAX_SVG_BYTES + 10]);
        assert!(bomb.len() < 10_000);
        assert_eq!(
            decompress(&bomb).unwrap_err(),
            SvgzError::TooLarge {
                limit: MAX_SVG_BYTES
            }
        );
        assert!(check(&bomb).problems[0].contains("larger than"));
    }

    #[test]
    fn repeated_findings_are_counted_once() {
        let mut svg = String::from(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.2\" baseProfile=\"tiny-ps\" viewBox=\"0 0 1 1\"><title>t</title>",
        );
        for _ in 0..1000 {
            svg.push_str("<animate/>");
        }
        svg.push_str("</svg>");
        let r = check(svg.as_bytes());
        assert_eq!(r.problems.len(), 1, "{r:?}");
        assert!(r.problems[0].contains("999 more like it"));
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\">{}{}</svg>",
            "<g>".repeat(10_000),
            "</g>".repeat(10_000)
        );
        let r = check(svg.as_bytes());
        assert!(
            r.problems.iter().any(|p| p.contains("nested more than")),
            "{r:?}"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        #[test]
        fn never_panics_on_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let _ = check(&bytes);
            let _ = check(&gzip(&bytes));
        }

        #[test]
        fn never_panics_on_svg_like_text(parts in proptest::collection::vec(
            proptest::sample::select(vec![
                "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.2\" baseProfile=\"tiny-ps\">",
                "<title>", "</title>", "<g>", "</g>", "</svg>", "<!DOCTYPE svg [<!ENTITY a \"b\">]>",
                "&a;", "&amp;", "&#x41;", "&#xFFFFFFFF;", "<![CDATA[x]]>", "<?xml version=\"1.0\"?>",
                "<rect x=\"1\" fill=\"url(", "\"/>", "<use xlink:href=\"", "é", "\u{0}", "<", ">", "&",
                " viewBox=\"0 0 1e400 NaN\"", "<!--", "-->", "<image/>", "<a:b xmlns:a=\"u\"/>",
            ]),
            0..40,
        )) {
            let text: String = parts.concat();
            let _ = check(text.as_bytes());
        }
    }
}
