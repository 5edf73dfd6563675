//! Where `mailshift verify` finds messages: files (one message each, `.eml` or not), mbox files
//! (several messages, split on their `From ` lines, mboxrd `>From ` unescaped), and directories
//! (their `*.eml` files, or every regular file when there is none; not recursive; hidden files
//! skipped).
//!
//! Every path goes through [`crate::files`]: a FIFO, a device or a symlink to one is refused by
//! name before anything is verified. Messages are produced one at a time ([`Messages`]), and an
//! mbox is streamed: a message is never held beyond the message cap (`--max-file-size
//! message=…`, 64 MiB by default); a larger one is skipped to its end, counted, and reported
//! with its real size, so one huge message costs no more memory than the cap.

use crate::files::{self, FileError, FileKind};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// What a path argument expands to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A file holding one message.
    Message(PathBuf),
    /// An mbox file.
    Mbox(PathBuf),
}

/// A path that cannot be read (bad input: reported before anything is verified).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{path}: the directory holds no files")]
    EmptyDirectory { path: PathBuf },
}

/// Expands the command line's paths into inputs, in order (a directory's files sorted by name).
pub fn expand(paths: &[PathBuf]) -> Result<Vec<Input>, InputError> {
    let mut inputs = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut files = files::list_dir(path, FileKind::Message, |_| true)?;
            let eml: Vec<PathBuf> = files
                .iter()
                .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("eml")))
                .cloned()
                .collect();
            if !eml.is_empty() {
                files = eml;
            }
            if files.is_empty() {
                return Err(InputError::EmptyDirectory { path: path.clone() });
            }
            for file in files {
                inputs.push(classify(&file)?);
            }
        } else {
            inputs.push(classify(path)?);
        }
    }
    Ok(inputs)
}

/// An mbox file starts with a `From ` separator line; anything else is one message. Only the
/// first five bytes are read, so the cap applies to messages, not to the (streamed) mbox.
fn classify(path: &Path) -> Result<Input, InputError> {
    let mut head = [0u8; 5];
    let mut file = open_for_streaming(path)?;
    let n = read_up_to(&mut file, &mut head).map_err(|source| FileError::Open {
        path: path.to_path_buf(),
        kind: FileKind::Message,
        error: source,
    })?;
    Ok(if &head[..n] == b"From " {
        Input::Mbox(path.to_path_buf())
    } else {
        Input::Message(path.to_path_buf())
    })
}

/// Opens a message or mbox file: a regular file of any size (an mbox may hold gigabytes; the cap
/// applies to each message as it is read).
fn open_for_streaming(path: &Path) -> Result<File, FileError> {
    match files::open(path, FileKind::Message) {
        Ok((file, _)) => Ok(file),
        // Too large to be one message, but it may be an mbox: reopen past the cap check.
        Err(FileError::TooLarge { .. }) => {
            let file = File::open(path).map_err(|source| FileError::Open {
                path: path.to_path_buf(),
                kind: FileKind::Message,
                error: source,
            })?;
            Ok(file)
        }
        Err(e) => Err(e),
    }
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// One message to verify: where it came from, and its bytes (or why they could not be read).
#[derive(Debug)]
pub struct Item {
    /// `path`, or `path#3` for the third message of an mbox.
    pub source: String,
    pub raw: Result<Vec<u8>, String>,
}

/// The messages of a list of inputs, one at a time.
pub struct Messages {
    inputs: VecDeque<Input>,
    /// The mbox being read: its path, messages so far, the reader.
    current: Option<(String, usize, MboxReader<BufReader<File>>)>,
}

impl Messages {
    pub fn new(inputs: Vec<Input>) -> Messages {
        Messages {
            inputs: inputs.into(),
            current: None,
        }
    }
}

fn too_large(size: u64, limit: u64) -> String {
    format!(
        "the message is {} ({size} bytes), more than the {} mailshift verifies \
         (raise it with --max-file-size message=SIZE)",
        files::show_size(size),
        files::show_size(limit)
    )
}

impl Iterator for Messages {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            if let Some((path, index, mbox)) = &mut self.current {
                match mbox.next_message() {
                    Ok(Some(message)) => {
                        *index += 1;
                        let raw = match message {
                            MboxMessage::Whole(bytes) => Ok(bytes),
                            MboxMessage::TooLarge { size } => Err(too_large(size, mbox.limit)),
                        };
                        return Some(Item {
                            source: format!("{path}#{index}"),
                            raw,
                        });
                    }
                    Ok(None) => self.current = None,
                    Err(e) => {
                        *index += 1;
                        let item = Item {
                            source: format!("{path}#{index}"),
                            raw: Err(format!("cannot read the mbox: {e}")),
                        };
                        self.current = None;
                        return Some(item);
                    }
                }
            }
            match self.inputs.pop_front()? {
                Input::Message(path) => {
                    let source = path.display().to_string();
                    let raw = match files::read(&path, FileKind::Message) {
                        Ok(raw) => Ok(raw),
                        Err(FileError::TooLarge { size, limit, .. }) => Err(too_large(size, limit)),
                        Err(e) => Err(e.to_string()),
                    };
                    return Some(Item { source, raw });
                }
                Input::Mbox(path) => match open_for_streaming(&path) {
                    Ok(file) => {
                        let limit = files::limits().get(FileKind::Message);
                        self.current = Some((
                            path.display().to_string(),
                            0,
                            MboxReader::new(BufReader::with_capacity(64 * 1024, file), limit),
                        ));
                    }
                    Err(e) => {
                        return Some(Item {
                            source: path.display().to_string(),
                            raw: Err(e.to_string()),
                        })
                    }
                },
            }
        }
    }
}

/// One message of an mbox: its bytes, or only its size when it exceeded the cap.
#[derive(Debug, PartialEq, Eq)]
pub enum MboxMessage {
    Whole(Vec<u8>),
    TooLarge { size: u64 },
}

/// Splits an mbox (mboxo/mboxrd) into messages without ever holding more than `limit` bytes of
/// one: lines starting with `From ` separate messages (the separator line is not part of the
/// message), a line `>From `, `>>From `… loses one `>`. Lines are read in pieces, so a 300 MB
/// line costs no more memory than a short one.
pub struct MboxReader<R> {
    reader: R,
    limit: u64,
    /// The next message's separator line has been read.
    started: bool,
    done: bool,
}

/// The longest line prefix that decides what a line is (`>>>>From `): a line is judged on its
/// first bytes only.
const LINE_HEAD: usize = 1024;

impl<R: BufRead> MboxReader<R> {
    pub fn new(reader: R, limit: u64) -> MboxReader<R> {
        MboxReader {
            reader,
            limit,
            started: false,
            done: false,
        }
    }

    /// Reads the next line piece into `out` (at most `max` bytes, up to and including a
    /// newline). Returns the bytes read and whether the line ended.
    fn read_piece(&mut self, out: &mut Vec<u8>, max: usize) -> std::io::Result<(usize, bool)> {
        let available = self.reader.fill_buf()?;
        if available.is_empty() {
            return Ok((0, true));
        }
        let window = &available[..available.len().min(max)];
        let (take, ended) = match window.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (window.len(), false),
        };
        out.extend_from_slice(&window[..take]);
        self.reader.consume(take);
        Ok((take, ended))
    }

    /// Skips the rest of a line.
    fn skip_line(&mut self) -> std::io::Result<u64> {
        let mut skipped = 0u64;
        loop {
            let available = self.reader.fill_buf()?;
            if available.is_empty() {
                return Ok(skipped);
            }
            let (take, ended) = match available.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (available.len(), false),
            };
            self.reader.consume(take);
            skipped += take as u64;
            if ended {
                return Ok(skipped);
            }
        }
    }

    /// The next message, or `None` at the end of the mbox.
    pub fn next_message(&mut self) -> std::io::Result<Option<MboxMessage>> {
        if self.done {
            return Ok(None);
        }
        let mut message: Vec<u8> = Vec::new();
        let mut size: u64 = 0;
        let mut too_large = false;
        let mut line = Vec::with_capacity(LINE_HEAD);
        let limit = self.limit;
        loop {
            line.clear();
            // The line's head (up to LINE_HEAD bytes) decides what it is; buffers may cut it.
            let (mut n, mut ended) = self.read_piece(&mut line, LINE_HEAD)?;
            while !ended && n > 0 && line.len() < LINE_HEAD {
                let room = LINE_HEAD - line.len();
                let (more, e) = self.read_piece(&mut line, room)?;
                n = more;
                ended = e;
            }
            if line.is_empty() {
                self.done = true;
                break;
            }
            if line.starts_with(b"From ") {
                if !ended {
                    self.skip_line()?;
                }
                if self.started {
                    // The separator of the next message ends this one.
                    return Ok(Some(finish(message, size, too_large)));
                }
                self.started = true;
                continue;
            }
            if !self.started {
                // Text before the first separator is not a message.
                if !ended {
                    self.skip_line()?;
                }
                continue;
            }
            let quoted = line.iter().position(|b| *b != b'>').unwrap_or(line.len());
            let piece: &[u8] = if quoted > 0 && line[quoted..].starts_with(b"From ") {
                &line[1..]
            } else {
                &line
            };
            let mut add = |bytes: &[u8], message: &mut Vec<u8>| {
                size += bytes.len() as u64;
                if size > limit {
                    too_large = true;
                    message.clear();
                    message.shrink_to_fit();
                } else if !too_large {
                    message.extend_from_slice(bytes);
                }
            };
            add(piece, &mut message);
            while !ended {
                line.clear();
                let (n, e) = self.read_piece(&mut line, 64 * 1024)?;
                if n == 0 {
                    break;
                }
                ended = e;
                add(&line, &mut message);
            }
        }
        Ok(self.started.then(|| finish(message, size, too_large)))
    }
}

fn finish(message: Vec<u8>, size: u64, too_large: bool) -> MboxMessage {
    if too_large {
        MboxMessage::TooLarge { size }
    } else {
        MboxMessage::Whole(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_directories_and_mboxes() {
        let dir = tempfile::tempdir().unwrap();
        let one = dir.path().join("one.eml");
        std::fs::write(&one, "From: a@example.com\r\n\r\nhi\r\n").unwrap();
        let mbox = dir.path().join("box");
        std::fs::write(
            &mbox,
            "From a@example.com Mon Jan  6 10:00:00 2025\nFrom: a@example.com\n\none\n>From here\nFrom b@example.com Mon Jan  6 10:00:01 2025\nFrom: b@example.com\n\ntwo\n",
        )
        .unwrap();
        let inputs = expand(&[one.clone(), mbox.clone()]).unwrap();
        assert_eq!(
            inputs,
            [Input::Message(one.clone()), Input::Mbox(mbox.clone())]
        );
        let items: Vec<Item> = Messages::new(inputs).collect();
        assert_eq!(items.len(), 3);
        assert!(items[1].source.ends_with("box#1"));
        let second = String::from_utf8(items[1].raw.as_ref().unwrap().clone()).unwrap();
        assert!(second.contains("From here"), "{second}");
        assert!(items[2].source.ends_with("box#2"));

        // A directory with .eml files: only those.
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        std::fs::write(dir.path().join(".hidden.eml"), "x").unwrap();
        let expanded = expand(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(expanded, [Input::Message(one)]);
        // Without .eml files: every file.
        let plain = tempfile::tempdir().unwrap();
        std::fs::write(plain.path().join("b"), "From: b@example.com\r\n\r\n").unwrap();
        std::fs::write(plain.path().join("a"), "From: a@example.com\r\n\r\n").unwrap();
        let expanded = expand(&[plain.path().to_path_buf()]).unwrap();
        assert_eq!(expanded.len(), 2);
        assert_eq!(expanded[0], Input::Message(plain.path().join("a")));

        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            expand(&[empty.path().to_path_buf()]),
            Err(InputError::EmptyDirectory { .. })
        ));
        assert!(matches!(
            expand(&[dir.path().join("missing")]),
            Err(InputError::File(_))
        ));
    }

    #[test]
    fn the_mbox_reader_streams_and_reports_the_real_size_of_an_oversized_message() {
        let big_line = "x".repeat(300);
        let mbox = format!(
            "preamble\nFrom a@example.com Mon Jan  6 10:00:00 2025\nSubject: one\n\nshort\n\
             From b@example.com Mon Jan  6 10:00:01 2025\nSubject: two\n\n{big_line}\n\
             From c@example.com Mon Jan  6 10:00:02 2025\nSubject: three\n\n>From the past\n>>From older\n"
        );
        // A tiny buffer and cap: lines arrive in pieces, and message two is over the cap.
        let mut reader = MboxReader::new(BufReader::with_capacity(16, mbox.as_bytes()), 100);
        assert_eq!(
            reader.next_message().unwrap(),
            Some(MboxMessage::Whole(b"Subject: one\n\nshort\n".to_vec()))
        );
        let two_size = format!("Subject: two\n\n{big_line}\n").len() as u64;
        assert_eq!(
            reader.next_message().unwrap(),
            Some(MboxMessage::TooLarge { size: two_size })
        );
        assert_eq!(
            reader.next_message().unwrap(),
            Some(MboxMessage::Whole(
                b"Subject: three\n\nFrom the past\n>From older\n".to_vec()
            ))
        );
        assert_eq!(reader.next_message().unwrap(), None);
        assert_eq!(reader.next_message().unwrap(), None);
    }
}
