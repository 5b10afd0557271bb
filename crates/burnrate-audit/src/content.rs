//! Captured (already redacted) request and response documents, one gzip file per model call:
//! `<dir>/<YYYY-MM-DD>/<id>.json.gz`. The audit record carries the file's SHA-256, so a
//! document can be checked against the hash chain, and erased (for a deletion request)
//! without touching the chain: the record then points at a hash whose file is gone.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::log::sha256_hex;
use chrono::NaiveDate;
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::Serialize;

/// The longest id accepted (file names stay far below the usual 255-byte limit).
pub const MAX_ID_LEN: usize = 128;

/// What can go wrong with the content files.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// The id could escape its day folder or is otherwise not a plain file name.
    #[error(
        "content id {id:?} refused: use 1 to {MAX_ID_LEN} ASCII letters, digits and '-' (a UUID fits)"
    )]
    BadId {
        /// The id as given.
        id: String,
    },
    /// A file or folder could not be read or written.
    #[error("{path}: {source}; {hint}")]
    Io {
        /// The file or folder.
        path: String,
        /// Why.
        source: io::Error,
        /// What to do about it.
        hint: &'static str,
    },
    /// A content file is not gzip-compressed JSON.
    #[error(
        "{path}: not a gzip-compressed JSON document ({reason}); compare its hash with the audit \
         record and restore it from a backup, or erase it"
    )]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

const WRITE_HINT: &str = "check that the content directory exists, is writable and has free space";
const READ_HINT: &str = "check that the content directory and the file are readable";
const MOVE_HINT: &str = "check that both folders are writable and the destination has free space";

fn io_err<'a>(path: &'a Path, hint: &'static str) -> impl FnOnce(io::Error) -> ContentError + 'a {
    move |source| ContentError::Io {
        path: path.display().to_string(),
        source,
        hint,
    }
}

/// Where a stored document is and what it hashes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContentRef {
    /// SHA-256 of the stored (compressed) file's bytes, lowercase hex.
    pub sha256: String,
    /// Size of the stored file.
    pub bytes: u64,
}

/// The content files under one directory, in one folder per UTC day.
#[derive(Debug, Clone)]
pub struct ContentStore {
    dir: PathBuf,
}

/// Makes temporary names unique among writers in this process.
static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

fn check_id(id: &str) -> Result<(), ContentError> {
    let ok = (1..=MAX_ID_LEN).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ContentError::BadId { id: id.to_owned() })
    }
}

fn day_name(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

/// `Ok(None)` for a file that is not there.
fn optional<T>(result: io::Result<T>) -> io::Result<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Makes a rename or removal in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), ContentError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir, WRITE_HINT))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

impl ContentStore {
    /// A store over `dir`; nothing is created until the first write.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// The directory the store is over.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file a document is (or would be) stored in.
    pub fn path(&self, id: &str, day: NaiveDate) -> Result<PathBuf, ContentError> {
        check_id(id)?;
        Ok(self.day_dir(day).join(format!("{id}.json.gz")))
    }

    fn day_dir(&self, day: NaiveDate) -> PathBuf {
        self.dir.join(day_name(day))
    }

    /// Stores `document` gzip-compressed, replacing any earlier file for the same id and
    /// day. The file is written beside its final name, synced, then renamed into place, so
    /// a crash leaves either no file or the whole one (plus perhaps a `.tmp` leftover,
    /// which [`ContentStore::remove_day`] clears).
    pub fn write(
        &self,
        id: &str,
        day: NaiveDate,
        document: &serde_json::Value,
    ) -> Result<ContentRef, ContentError> {
        let path = self.path(id, day)?;
        let folder = self.day_dir(day);
        fs::create_dir_all(&folder).map_err(io_err(&folder, WRITE_HINT))?;

        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        serde_json::to_writer(&mut gz, document)
            .map_err(io::Error::other)
            .and_then(|()| gz.try_finish())
            .map_err(io_err(&path, WRITE_HINT))?;
        let bytes = gz.get_ref();

        let seq = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let temp = folder.join(format!(".{id}.{}.{seq}.tmp", std::process::id()));
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .and_then(|mut f| {
                f.write_all(bytes)?;
                f.sync_all()
            })
            .and_then(|()| fs::rename(&temp, &path));
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(io_err(&path, WRITE_HINT)(e));
        }
        sync_dir(&folder)?;
        Ok(ContentRef {
            sha256: sha256_hex(bytes),
            bytes: bytes.len() as u64,
        })
    }

    /// The SHA-256 of the stored file, or `None` if there is none.
    pub fn hash(&self, id: &str, day: NaiveDate) -> Result<Option<String>, ContentError> {
        let path = self.path(id, day)?;
        let bytes = optional(fs::read(&path)).map_err(io_err(&path, READ_HINT))?;
        Ok(bytes.map(|b| sha256_hex(&b)))
    }

    /// The stored document, or `None` if there is none.
    pub fn read(
        &self,
        id: &str,
        day: NaiveDate,
    ) -> Result<Option<serde_json::Value>, ContentError> {
        let path = self.path(id, day)?;
        let Some(file) = optional(File::open(&path)).map_err(io_err(&path, READ_HINT))? else {
            return Ok(None);
        };
        serde_json::from_reader(BufReader::new(GzDecoder::new(file)))
            .map(Some)
            .map_err(|e| ContentError::Corrupt {
                path: path.display().to_string(),
                reason: e.to_string(),
            })
    }

    /// Removes the stored document; `false` if there was none.
    pub fn erase(&self, id: &str, day: NaiveDate) -> Result<bool, ContentError> {
        let path = self.path(id, day)?;
        let removed = optional(fs::remove_file(&path)).map_err(io_err(&path, WRITE_HINT))?;
        if removed.is_some() {
            sync_dir(&self.day_dir(day))?;
        }
        Ok(removed.is_some())
    }

    /// The day folders present, oldest first. Other entries in the directory are ignored;
    /// a directory that does not exist yet has no days.
    pub fn days(&self) -> Result<Vec<NaiveDate>, ContentError> {
        let Some(entries) =
            optional(fs::read_dir(&self.dir)).map_err(io_err(&self.dir, READ_HINT))?
        else {
            return Ok(Vec::new());
        };
        let mut days = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err(&self.dir, READ_HINT))?;
            let name = entry.file_name();
            let day = name
                .to_str()
                .and_then(|n| NaiveDate::parse_from_str(n, "%Y-%m-%d").ok());
            // Only folders whose name is exactly what `write` would create.
            let day = day.filter(|d| Some(day_name(*d).as_str()) == name.to_str());
            if let Some(day) = day.filter(|_| entry.path().is_dir()) {
                days.push(day);
            }
        }
        days.sort_unstable();
        Ok(days)
    }

    /// Deletes a day's folder with everything in it; `false` if there was none.
    pub fn remove_day(&self, day: NaiveDate) -> Result<bool, ContentError> {
        let folder = self.day_dir(day);
        let removed = optional(fs::remove_dir_all(&folder)).map_err(io_err(&folder, WRITE_HINT))?;
        Ok(removed.is_some())
    }

    /// Moves a day's documents to `<to_dir>/<YYYY-MM-DD>/` (an archive, itself usable as a
    /// [`ContentStore`]) and removes the day here; `false` if there was no such day. Works
    /// across file systems (copy, sync, delete) and into a day folder that already exists.
    /// Leftover `.tmp` files are not moved.
    pub fn move_day(&self, day: NaiveDate, to_dir: &Path) -> Result<bool, ContentError> {
        let from = self.day_dir(day);
        let Some(entries) = optional(fs::read_dir(&from)).map_err(io_err(&from, READ_HINT))? else {
            return Ok(false);
        };
        let to = to_dir.join(day_name(day));
        fs::create_dir_all(&to).map_err(io_err(&to, MOVE_HINT))?;
        for entry in entries {
            let entry = entry.map_err(io_err(&from, READ_HINT))?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') || !entry.path().is_file() {
                continue;
            }
            let (src, dst) = (entry.path(), to.join(&name));
            match fs::rename(&src, &dst) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
                    fs::copy(&src, &dst)
                        .and_then(|_| File::open(&dst)?.sync_all())
                        .map_err(io_err(&dst, MOVE_HINT))?;
                }
                Err(e) => return Err(io_err(&dst, MOVE_HINT)(e)),
            }
        }
        sync_dir(&to)?;
        fs::remove_dir_all(&from).map_err(io_err(&from, MOVE_HINT))?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::{REDACTED, Redactor};
    use serde_json::json;
    use std::io::Read;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 3, d).unwrap_or_default()
    }

    fn tempdir() -> tempfile::TempDir {
        match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        }
    }

    #[test]
    fn write_read_hash_round_trip() -> Result<(), ContentError> {
        let dir = tempdir();
        let store = ContentStore::new(dir.path());
        let doc =
            json!({"request": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}});
        let r = store.write("0190-abc", day(4), &doc)?;
        let path = dir.path().join("2025-03-04").join("0190-abc.json.gz");
        let on_disk = fs::read(&path).map_err(io_err(&path, READ_HINT))?;
        assert_eq!(r.bytes, on_disk.len() as u64);
        assert_eq!(r.sha256, sha256_hex(&on_disk));
        assert_eq!(store.hash("0190-abc", day(4))?, Some(r.sha256.clone()));
        assert_eq!(store.read("0190-abc", day(4))?, Some(doc.clone()));
        assert_eq!(store.read("0190-abc", day(5))?, None);
        assert_eq!(store.hash("other", day(4))?, None);
        // The same document stores the same bytes (no timestamp in the gzip header).
        assert_eq!(store.write("0190-abc", day(4), &doc)?, r);
        // No temporary file is left behind.
        let files = fs::read_dir(path.parent().unwrap_or(dir.path()))
            .map_err(io_err(dir.path(), READ_HINT))?
            .count();
        assert_eq!(files, 1);
        Ok(())
    }

    #[test]
    fn erase_removes_the_file() -> Result<(), ContentError> {
        let dir = tempdir();
        let store = ContentStore::new(dir.path());
        store.write("a1", day(1), &json!({"x": 1}))?;
        assert!(store.erase("a1", day(1))?);
        assert!(!store.erase("a1", day(1))?);
        assert_eq!(store.read("a1", day(1))?, None);
        assert_eq!(store.hash("a1", day(1))?, None);
        Ok(())
    }

    #[test]
    fn bad_ids_are_refused() {
        let dir = tempdir();
        let store = ContentStore::new(dir.path());
        let long = "a".repeat(MAX_ID_LEN + 1);
        for id in [
            "",
            "../escape",
            "a/b",
            "a.b",
            "..",
            "a\\b",
            "ü",
            "a b",
            long.as_str(),
        ] {
            let e = store.write(id, day(1), &json!(null));
            assert!(matches!(e, Err(ContentError::BadId { .. })), "{id:?}");
            assert!(matches!(
                store.read(id, day(1)),
                Err(ContentError::BadId { .. })
            ));
            assert!(matches!(
                store.erase(id, day(1)),
                Err(ContentError::BadId { .. })
            ));
        }
        assert!(
            store
                .write(&"a".repeat(MAX_ID_LEN), day(1), &json!(null))
                .is_ok()
        );
        let message = ContentError::BadId { id: "../x".into() }.to_string();
        assert!(
            message.contains("\"../x\"") && message.contains("'-'"),
            "{message}"
        );
    }

    #[test]
    fn corrupt_file_names_the_path() -> Result<(), ContentError> {
        let dir = tempdir();
        let store = ContentStore::new(dir.path());
        let path = store.path("c", day(2))?;
        store.write("c", day(2), &json!(1))?;
        fs::write(&path, b"not gzip").map_err(io_err(&path, WRITE_HINT))?;
        let message = store
            .read("c", day(2))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            message.starts_with(&path.display().to_string()),
            "{message}"
        );
        Ok(())
    }

    #[test]
    fn days_remove_and_move() -> Result<(), ContentError> {
        let dir = tempdir();
        let archive = tempdir();
        let store = ContentStore::new(&dir.path().join("content"));
        assert_eq!(store.days()?, Vec::<NaiveDate>::new());
        for (id, d) in [("a", 3), ("b", 1), ("c", 2), ("d", 2)] {
            store.write(id, day(d), &json!({"id": id}))?;
        }
        fs::create_dir_all(dir.path().join("content/not-a-day"))
            .map_err(io_err(dir.path(), WRITE_HINT))?;
        assert_eq!(store.days()?, vec![day(1), day(2), day(3)]);

        assert!(store.remove_day(day(1))?);
        assert!(!store.remove_day(day(1))?);
        assert!(store.move_day(day(2), archive.path())?);
        assert!(!store.move_day(day(2), archive.path())?);
        assert_eq!(store.days()?, vec![day(3)]);

        let archived = ContentStore::new(archive.path());
        assert_eq!(archived.days()?, vec![day(2)]);
        assert_eq!(archived.read("c", day(2))?, Some(json!({"id": "c"})));
        assert_eq!(archived.read("d", day(2))?, Some(json!({"id": "d"})));
        Ok(())
    }

    /// Every file under `dir`, as stored and, if gzip, decompressed.
    fn everything_on_disk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) -> io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                everything_on_disk(&path, out)?;
                continue;
            }
            let raw = fs::read(&path)?;
            let mut plain = Vec::new();
            if GzDecoder::new(raw.as_slice())
                .read_to_end(&mut plain)
                .is_ok()
            {
                out.push((path.clone(), plain));
            }
            out.push((path, raw));
        }
        Ok(())
    }

    #[test]
    fn redacted_secrets_never_reach_disk() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempdir();
        let store = ContentStore::new(dir.path());
        let redactor = Redactor::new(
            &[r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}".to_owned()],
            &["$..api_key".to_owned()],
        )?;
        let request = json!({
            "messages": [{"role": "user", "content": "mail alice@example.com please"}],
            "tools": [{"api_key": "sk-live-0123456789"}],
        });
        let response = [
            r#"data: {"choices":[{"index":0,"delta":{"content":"Sent to alice@"}}]}"#,
            r#"data: {"choices":[{"index":0,"delta":{"content":"example.com."}}]}"#,
            r#"data: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4}}"#,
            "data: [DONE]",
        ]
        .join("\n\n");
        let document = json!({
            "request": redactor.request(request.to_string().as_bytes()),
            "response": redactor.response(response.as_bytes()),
        });
        store.write("0190-call", day(6), &document)?;
        assert_eq!(
            store
                .read("0190-call", day(6))?
                .and_then(|d| d.pointer("/response/text").cloned()),
            Some(json!(format!("Sent to {REDACTED}.")))
        );

        let mut files = Vec::new();
        everything_on_disk(dir.path(), &mut files)?;
        assert!(files.len() >= 2, "the gzip file and its decompressed text");
        for secret in ["alice@example.com", "alice@", "sk-live-0123456789"] {
            for (path, bytes) in &files {
                let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
                assert!(!found, "{secret} in {}", path.display());
            }
        }
        Ok(())
    }
}
