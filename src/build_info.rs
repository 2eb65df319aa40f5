//! What this binary is: version, git commit, build time and target, as recorded by `build.rs`,
//! for `--version` and the long form of `/api/status`.

/// The git commit this binary was built from (12 hex digits), or `unknown` (no git at build).
pub const BUILD_HASH: &str = env!("FLEET_EDGE_BUILD_HASH");

/// The build time, RFC 3339 UTC: `SOURCE_DATE_EPOCH` when set, else the commit's date, so two
/// builds of one commit agree; `unknown` when neither was available.
pub const BUILD_TIME: &str = env!("FLEET_EDGE_BUILD_TIME");

/// The target triple this binary was built for.
pub const TARGET: &str = env!("FLEET_EDGE_TARGET");

/// `fleet-edge X.Y.Z (commit, target, build time), Fleet Server compatible A.B.C` and a newline.
pub fn version_line() -> String {
    format!(
        "fleet-edge {} ({BUILD_HASH}, {TARGET}, {BUILD_TIME}), Fleet Server compatible {}\n",
        env!("CARGO_PKG_VERSION"),
        crate::server_version::BUILT_IN_STR
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_line_names_commit_target_time_and_fleet_server_version() {
        let line = version_line();
        assert!(line.ends_with('\n'), "{line:?}");
        assert!(line.starts_with(&format!("fleet-edge {} (", env!("CARGO_PKG_VERSION"))));
        assert!(line.contains(&format!("({BUILD_HASH}, {TARGET}, {BUILD_TIME})")));
        assert!(line.trim_end().ends_with(&format!(
            "), Fleet Server compatible {}",
            crate::server_version::BUILT_IN_STR
        )));
        assert!(!TARGET.is_empty() && TARGET != "unknown");
    }
}
