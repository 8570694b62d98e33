//! WebAssembly modules for the cluster tests: [`guest_module`] builds the
//! guest crates of `guest/` once per test process (`scripts/build-guests`,
//! Debian's Rust toolchain for wasm32) and answers a module's path.
//!
//! The example module is `demo.wasm`; its exports (`count`, `primes`,
//! `echo`, `spin`, `hog`, `trap`, `pingpong`, `children`) and their
//! arguments are listed in `guest/examples/src/lib.rs` and `docs/wasm.md`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The directory the built modules are copied to (`target/guests`), once
/// the build succeeded; the build's error text otherwise.
static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// The workspace root (this crate's parent directory).
fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
}

/// The target directory of this build: beside the test executable
/// (`target/debug/deps/<test>` → `target`), else the workspace's.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().ok();
    let from_exe = exe.as_deref().and_then(|e| {
        let mut dir = e.parent()?.to_path_buf();
        if dir.ends_with("deps") {
            dir.pop();
        }
        // target/debug -> target
        dir.pop().then_some(dir)
    });
    from_exe.unwrap_or_else(|| workspace_root().join("target"))
}

/// Runs `scripts/build-guests OUT` and answers OUT.
fn build() -> Result<PathBuf, String> {
    let out = target_dir().join("guests");
    let script = workspace_root().join("scripts/build-guests");
    let output = Command::new("bash")
        .arg(&script)
        .arg(&out)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} failed ({}): {}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(out)
}

/// The path of the guest module `name` (`"demo"` or `"demo.wasm"`), built
/// by `scripts/build-guests` the first time any test of this process asks.
///
/// Panics with the build's error (e.g. the `apt-get install` line of a
/// missing toolchain) if the build fails, or if there is no such module.
pub fn guest_module(name: &str) -> PathBuf {
    let dir = match BUILT.get_or_init(build) {
        Ok(dir) => dir,
        Err(e) => panic!("cannot build the guest modules: {e}"),
    };
    let file = if name.ends_with(".wasm") {
        name.to_owned()
    } else {
        format!("{name}.wasm")
    };
    let path = dir.join(file);
    assert!(
        path.is_file(),
        "no guest module {name:?} in {}: the modules are those of guest/examples (demo.wasm)",
        dir.display()
    );
    path
}

#[cfg(test)]
mod tests;
