//! The Fleet Server version this server claims: the one place it is written down.
//!
//! Elastic's Fleet Server has one version (`version.DefaultVersion`) and uses it for everything
//! the spec lists, so fleet-edge does the same with [`ServerVersion`]:
//! * agents (fleet-protocol.md §1.5): enroll and checkin refuse an agent newer than
//!   `major.minor.*` of this version (400 `UnsupportedVersion`);
//! * `GET /api/status` long form: `version.number` (§7);
//! * Elasticsearch (es-contract.md §2.1.1): the cluster must be at least `major.minor.0`, and
//!   every request says `User-Agent: Elastic-Fleet-Server/<version> (...)` (§1.1);
//! * self-registration in agent mode: the server's own agent document and checkins report it.
//!
//! The operator may raise it (`--server-version`, `FLEET_EDGE_SERVER_VERSION`) to admit agents
//! of a newer release without a new build; lowering it is refused at startup because fleet-edge
//! speaks this release's protocol and must not claim an older one. A leaf: `config`, `api`,
//! `backend` and `bootstrap` all take the value from the configuration, never from a global.

use std::fmt;

/// A Fleet Server release, `major.minor.patch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerVersion {
    /// Major release.
    pub major: u64,
    /// Minor release.
    pub minor: u64,
    /// Patch release.
    pub patch: u64,
}

/// The release whose wire protocol this build implements (fleet-protocol.md §0: fleet-server
/// `version.DefaultVersion = "9.6.0"`).
pub const BUILT_IN: ServerVersion = ServerVersion {
    major: 9,
    minor: 6,
    patch: 0,
};

/// [`BUILT_IN`] as text (the configuration table's default, parsed like user input).
pub const BUILT_IN_STR: &str = "9.6.0";

impl Default for ServerVersion {
    fn default() -> Self {
        BUILT_IN
    }
}

impl ServerVersion {
    /// Parses an operator's value: exactly `MAJOR.MINOR.PATCH`, decimal, not below
    /// [`BUILT_IN`]. The error is the end of a sentence naming the value.
    pub fn parse_override(input: &str) -> Result<ServerVersion, String> {
        let text = input.trim();
        let parts: Vec<&str> = text.split('.').collect();
        let numbers: Option<Vec<u64>> = parts
            .iter()
            .map(|p| {
                (!p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| p.parse().ok())
                    .flatten()
            })
            .collect();
        let version = match numbers.as_deref() {
            Some([major, minor, patch]) => ServerVersion {
                major: *major,
                minor: *minor,
                patch: *patch,
            },
            _ => {
                return Err(format!(
                    "\"{input}\" is not a version (use MAJOR.MINOR.PATCH, such as 9.7.0)"
                ))
            }
        };
        if version < BUILT_IN {
            return Err(format!(
                "\"{input}\" is older than {BUILT_IN}, the release whose protocol fleet-edge speaks; the setting can only raise the version it claims"
            ));
        }
        Ok(version)
    }

    /// Elastic's rule for agents (§1.5, release builds): not newer than this server except in
    /// the patch number. (The lower bound, 7.13, is the protocol's and is checked by the caller.)
    pub fn admits_agent(self, agent: (u64, u64, u64)) -> bool {
        (agent.0, agent.1) <= (self.major, self.minor)
    }

    /// The oldest Elasticsearch this server works with: `major.minor.0` (es-contract.md §2.1.1).
    pub fn min_elasticsearch(self) -> (u64, u64, u64) {
        (self.major, self.minor, 0)
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_version_is_9_6_0() {
        assert_eq!(BUILT_IN.to_string(), "9.6.0");
        assert_eq!(
            ServerVersion::parse_override(BUILT_IN_STR),
            Ok(BUILT_IN),
            "the text and the value are the same version"
        );
        assert_eq!(ServerVersion::default(), BUILT_IN);
    }

    #[test]
    fn overrides_parse_and_only_raise() {
        let v = ServerVersion::parse_override(" 9.7.0 ").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (9, 7, 0));
        assert_eq!(ServerVersion::parse_override("9.6.0").unwrap(), BUILT_IN);
        assert_eq!(
            ServerVersion::parse_override("10.0.3").unwrap().to_string(),
            "10.0.3"
        );
        for bad in [
            "9.7",
            "9.7.0.1",
            "v9.7.0",
            "9.7.0-SNAPSHOT",
            "9..0",
            "",
            "a.b.c",
            "9.7.+1",
        ] {
            let err = ServerVersion::parse_override(bad).unwrap_err();
            assert!(err.contains("MAJOR.MINOR.PATCH"), "{bad}: {err}");
        }
        let err = ServerVersion::parse_override("9.5.9").unwrap_err();
        assert!(err.contains("older than 9.6.0"), "{err}");
    }

    #[test]
    fn agents_may_be_newer_only_in_the_patch() {
        assert!(BUILT_IN.admits_agent((9, 6, 99)));
        assert!(BUILT_IN.admits_agent((8, 19, 0)));
        assert!(!BUILT_IN.admits_agent((9, 7, 0)));
        assert!(!BUILT_IN.admits_agent((10, 0, 0)));
        let raised = ServerVersion::parse_override("9.7.0").unwrap();
        assert!(raised.admits_agent((9, 7, 4)));
        assert!(!raised.admits_agent((9, 8, 0)));
        assert_eq!(raised.min_elasticsearch(), (9, 7, 0));
    }
}
