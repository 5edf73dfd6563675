//! Where `mailshift verify` finds messages: files (one message each, `.eml` or not), mbox files
//! (several messages, split on their `From ` lines with mail-parser's mbox reader), and
//! directories (their `*.eml` files, or every regular file when there is none; not recursive;
//! hidden files skipped).
//!
//! Messages are produced one at a time ([`Messages`]), so a large mbox is never held in memory
//! whole.

use mail_parser::mailbox::mbox::MessageIterator;
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
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: the directory holds no files")]
    EmptyDirectory { path: PathBuf },
}

/// Expands the command line's paths into inputs, in order (a directory's files sorted by name).
pub fn expand(paths: &[PathBuf]) -> Result<Vec<Input>, InputError> {
    let mut inputs = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| InputError::Read {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|source| InputError::Read {
                    path: path.clone(),
                    source,
                })?
                .filter_map(|e| e.ok())
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
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
            files.sort();
            for file in files {
                inputs.push(classify(&file)?);
            }
        } else {
            inputs.push(classify(path)?);
        }
    }
    Ok(inputs)
}

/// An mbox file starts with a `From ` separator line; anything else is one message.
fn classify(path: &Path) -> Result<Input, InputError> {
    let mut head = [0u8; 5];
    let mut file = File::open(path).map_err(|source| InputError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let n = read_up_to(&mut file, &mut head).map_err(|source| InputError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(if &head[..n] == b"From " {
        Input::Mbox(path.to_path_buf())
    } else {
        Input::Message(path.to_path_buf())
    })
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

type Mbox = MessageIterator<Box<dyn BufRead + Send>>;

/// The messages of a list of inputs, one at a time.
pub struct Messages {
    inputs: VecDeque<Input>,
    /// The mbox being read: its path, messages so far, the reader.
    current: Option<(String, usize, Mbox)>,
}

impl Messages {
    pub fn new(inputs: Vec<Input>) -> Messages {
        Messages {
            inputs: inputs.into(),
            current: None,
        }
    }
}

/// The largest file read whole as one message (larger ones get an error verdict).
const MAX_FILE_BYTES: u64 = super::MAX_MESSAGE_BYTES as u64 + 1;

impl Iterator for Messages {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            if let Some((path, index, mbox)) = &mut self.current {
                match mbox.next() {
                    Some(Ok(message)) => {
                        *index += 1;
                        return Some(Item {
                            source: format!("{path}#{index}"),
                            raw: Ok(message.unwrap_contents()),
                        });
                    }
                    Some(Err(e)) => {
                        *index += 1;
                        let item = Item {
                            source: format!("{path}#{index}"),
                            raw: Err(format!("cannot read the mbox: {e}")),
                        };
                        self.current = None;
                        return Some(item);
                    }
                    None => self.current = None,
                }
            }
            match self.inputs.pop_front()? {
                Input::Message(path) => {
                    let source = path.display().to_string();
                    let raw = File::open(&path)
                        .and_then(|f| {
                            let mut raw = Vec::new();
                            f.take(MAX_FILE_BYTES).read_to_end(&mut raw)?;
                            Ok(raw)
                        })
                        .map_err(|e| format!("cannot read the file: {e}"));
                    return Some(Item { source, raw });
                }
                Input::Mbox(path) => match File::open(&path) {
                    Ok(file) => {
                        let reader: Box<dyn BufRead + Send> = Box::new(BufReader::new(file));
                        self.current =
                            Some((path.display().to_string(), 0, MessageIterator::new(reader)));
                    }
                    Err(e) => {
                        return Some(Item {
                            source: path.display().to_string(),
                            raw: Err(format!("cannot read the mbox: {e}")),
                        })
                    }
                },
            }
        }
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
            Err(InputError::Read { .. })
        ));
    }
}
