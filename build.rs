//! Build information for `--version` and `/api/status`: the git commit, a reproducible build
//! time (`SOURCE_DATE_EPOCH` when set, else the commit's date, else "unknown"), and the target
//! triple, as `FLEET_EDGE_BUILD_HASH`, `FLEET_EDGE_BUILD_TIME` and `FLEET_EDGE_TARGET`. Reruns
//! only when HEAD (or the branch it points to) moves, so it costs nothing between commits.
//!
//! It also gzips the web console's assets (`src/mgmt/console/assets/*`, level 9, no timestamp,
//! so the output is a function of the files) into `OUT_DIR/console/`, which the binary embeds:
//! browsers take them as they are, and the few bytes they cost count against the size budget.

// A build script talks to cargo through environment variables.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "layout/link_order.rs"]
mod link_order;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()));
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    watch_git_head(&root);

    let hash = git(&root, &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .or_else(|| git(&root, &["log", "-1", "--format=%ct"]).and_then(|s| s.parse().ok()));
    let time = epoch.map_or_else(|| "unknown".to_owned(), rfc3339_utc);
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=FLEET_EDGE_BUILD_HASH={hash}");
    println!("cargo:rustc-env=FLEET_EDGE_BUILD_TIME={time}");
    println!("cargo:rustc-env=FLEET_EDGE_TARGET={target}");
    if let Err(e) = console_assets(&root) {
        eprintln!("cannot embed the web console's assets: {e}");
        std::process::exit(1);
    }
    if let Err(e) = link_order::emit(&root) {
        eprintln!("cannot write the link-order script: {e}");
        std::process::exit(1);
    }
}

/// Gzips every console asset into `OUT_DIR/console/<name>.gz`.
fn console_assets(root: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let dir = root.join("src/mgmt/console/assets");
    println!("cargo:rerun-if-changed={}", dir.display());
    let out_dir = std::env::var("OUT_DIR").map_err(std::io::Error::other)?;
    let out = PathBuf::from(out_dir).join("console");
    std::fs::create_dir_all(&out)?;
    let mut names = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()?;
    names.sort();
    for path in names {
        println!("cargo:rerun-if-changed={}", path.display());
        let bytes = std::fs::read(&path)?;
        let mut gz = flate2::GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), flate2::Compression::best());
        gz.write_all(&bytes)?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        std::fs::write(out.join(format!("{name}.gz")), gz.finish()?)?;
    }
    Ok(())
}

/// Runs git in `dir`; its trimmed output when it succeeded and printed something.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// Asks cargo to rerun when HEAD or the ref it names changes. Git resolves the directories, which
/// covers worktrees (where `.git` is a file naming the real git dir) and packed refs. Only files
/// that exist are named: a missing one would make cargo rerun this script on every build.
fn watch_git_head(root: &Path) {
    let Some(git_dir) = git(root, &["rev-parse", "--absolute-git-dir"]) else {
        return;
    };
    let git_dir = PathBuf::from(git_dir);
    let common = git(root, &["rev-parse", "--git-common-dir"])
        .map(|c| {
            if Path::new(&c).is_absolute() {
                PathBuf::from(c)
            } else {
                root.join(c)
            }
        })
        .unwrap_or_else(|| git_dir.clone());
    let mut watched = vec![git_dir.join("HEAD"), common.join("packed-refs")];
    if let Some(head_ref) = git(root, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(common.join(&head_ref));
    }
    for path in watched.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// Seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ` (days to civil date: H. Hinnant).
fn rfc3339_utc(epoch: i64) -> String {
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

// Not run by cargo (build scripts have no test harness); `rustc --test build.rs` runs them.
#[cfg(test)]
mod tests {
    #[test]
    fn epoch_seconds_format_as_rfc3339_utc() {
        for (epoch, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_764_723_723, "2025-12-03T01:02:03Z"),
            (4_107_542_399, "2100-02-28T23:59:59Z"),
        ] {
            assert_eq!(super::rfc3339_utc(epoch), text);
        }
    }
}
