//! Where the cookie comes from: `--cookie-file FILE`, then `POOL_COOKIE`,
//! then `~/.spawnpool/cookie`, which is created with a random value and mode
//! 0600 when missing, as Erlang does with `~/.erlang.cookie`.
//!
//! The functions take the flag, the environment value and the home directory
//! as arguments; reading argv and the environment is the binaries' job.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::handshake::Cookie;

/// The cookie file under the home directory.
pub const DEFAULT_COOKIE_FILE: &str = ".spawnpool/cookie";

/// Length of a generated cookie, characters.
pub const GENERATED_COOKIE_LEN: usize = 32;

/// The default cookie path for a home directory.
pub fn default_cookie_path(home: &Path) -> PathBuf {
    home.join(DEFAULT_COOKIE_FILE)
}

/// Resolves the cookie in DESIGN.md's order: the file given with
/// `--cookie-file`, else the `POOL_COOKIE` value, else the default file
/// under `home` (created if missing).
///
/// ```
/// use pool_proto::cookie::resolve_cookie;
/// let dir = tempfile::tempdir().unwrap();
/// // With nothing given, the default file is created and reused.
/// let a = resolve_cookie(None, None, Some(dir.path())).unwrap();
/// let b = resolve_cookie(None, None, Some(dir.path())).unwrap();
/// assert_eq!(a, b);
/// // The environment value wins over the default file.
/// let c = resolve_cookie(None, Some("s3cret"), Some(dir.path())).unwrap();
/// assert_eq!(c.as_bytes(), b"s3cret");
/// ```
pub fn resolve_cookie(
    file: Option<&Path>,
    env_value: Option<&str>,
    home: Option<&Path>,
) -> Result<Cookie, Error> {
    if let Some(path) = file {
        return read_cookie_file(path);
    }
    if let Some(value) = env_value {
        return Cookie::new(value, "POOL_COOKIE");
    }
    let home = home.ok_or(Error::NoHome)?;
    load_or_create_cookie(&default_cookie_path(home))
}

/// Reads a cookie file, refusing one that other users can read or write.
pub fn read_cookie_file(path: &Path) -> Result<Cookie, Error> {
    let file_err = |source: io::Error| Error::CookieFile {
        path: path.to_owned(),
        source,
    };
    let meta = fs::metadata(path).map_err(file_err)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::CookiePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    let bytes = fs::read(path).map_err(file_err)?;
    Cookie::new(bytes, &path.display().to_string())
}

/// Reads the cookie file at `path`, or creates it (and its directory, mode
/// 0700) with a random value and mode 0600.
pub fn load_or_create_cookie(path: &Path) -> Result<Cookie, Error> {
    let file_err = |source: io::Error| Error::CookieFile {
        path: path.to_owned(),
        source,
    };
    match fs::symlink_metadata(path) {
        Ok(_) => return read_cookie_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(file_err(e)),
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(file_err)?;
    }
    let value = generate_cookie();
    // create_new: if another process creates it first, read theirs.
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut f) => {
            f.write_all(value.as_bytes()).map_err(file_err)?;
            f.write_all(b"\n").map_err(file_err)?;
            f.sync_all().map_err(file_err)?;
            Cookie::new(value, &path.display().to_string())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_cookie_file(path),
        Err(e) => Err(file_err(e)),
    }
}

/// A random cookie of [`GENERATED_COOKIE_LEN`] uppercase letters and digits.
pub fn generate_cookie() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut bytes = [0u8; GENERATED_COOKIE_LEN];
    rand::fill(&mut bytes[..]);
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_cookie_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/cookie");
        let c = load_or_create_cookie(&path).unwrap();
        assert_eq!(c.as_bytes().len(), GENERATED_COOKIE_LEN);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        assert_eq!(load_or_create_cookie(&path).unwrap(), c);
    }

    #[test]
    fn readable_cookie_file_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cookie");
        fs::write(&path, "abc\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_cookie_file(&path).unwrap_err();
        assert!(matches!(err, Error::CookiePermissions { mode: 0o644, .. }));
        assert!(err.to_string().contains("chmod 600"), "{err}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_cookie_file(&path).unwrap().as_bytes(), b"abc");
    }

    #[test]
    fn order_is_file_then_env_then_home() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("explicit");
        fs::write(&file, "from-file").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        let c = resolve_cookie(Some(&file), Some("from-env"), Some(dir.path())).unwrap();
        assert_eq!(c.as_bytes(), b"from-file");
        let c = resolve_cookie(None, Some("from-env"), Some(dir.path())).unwrap();
        assert_eq!(c.as_bytes(), b"from-env");
        assert!(matches!(
            resolve_cookie(None, None, None),
            Err(Error::NoHome)
        ));
        assert!(matches!(
            resolve_cookie(None, Some("  "), None),
            Err(Error::EmptyCookie { .. })
        ));
    }
}
