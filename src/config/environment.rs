//! Names that are not ours: unknown `FLEET_*` / `ELASTICSEARCH_*` environment variables get one
//! warning each with the closest known name (a misspelled `FLEET_SERVER_ELASTICSEARCH_HOST`
//! would otherwise start an empty embedded server), and [`closest`] gives the "did you mean"
//! of unknown flags and subcommands. Pure: the caller passes the environment's names in.

use super::settings::SETTINGS;

/// The prefixes whose unknown variables are reported.
const CHECKED_PREFIXES: &[&str] = &["FLEET_", "ELASTICSEARCH_"];

/// Elastic Agent container variables (agent-client.md §6, and the bundled `fleet-server.yml`)
/// that fleet-edge deliberately does not read: they enroll an Elastic Agent, talk to Kibana or
/// tune the agent daemon, none of which fleet-edge does. An environment file shared with an
/// Elastic Agent container may carry them, so they are known and never warned about.
pub const IGNORED_CONTAINER_VARIABLES: &[&str] = &[
    "FLEET_ENROLL",
    "FLEET_ENROLLMENT_TOKEN",
    "FLEET_TOKEN_NAME",
    "FLEET_TOKEN_POLICY_NAME",
    "FLEET_INSECURE",
    "FLEET_ENROLL_TIMEOUT",
    "FLEET_DAEMON_TIMEOUT",
    "FLEET_FORCE",
    "FLEET_REPLACE_TOKEN",
    "FLEET_KIBANA_HEADER",
    "FLEET_KIBANA_HEADERS",
    "FLEET_SERVER_INIT_TIMEOUT",
    "FLEET_SERVER_AGENT_ID",
    "ELASTICSEARCH_HOSTS",
    "ELASTICSEARCH_USERNAME",
    "ELASTICSEARCH_PASSWORD",
    "ELASTICSEARCH_SERVICE_TOKEN",
    "ELASTICSEARCH_CA_TRUSTED_FINGERPRINT",
];

/// Variables only a debug build reads, for the test suite: a failpoint to trigger
/// (`crate::panics`) and the embedded store without fsync (`backend::local::unsynced`). A
/// release build does not read them, and warns about them as about any unknown name.
const DEBUG_BUILD_VARIABLES: &[&str] = &["FLEET_EDGE_FAILPOINT", "FLEET_EDGE_TEST_NO_FSYNC"];

/// The known name closest to `word` by edit distance, if it is close enough to be a typo (at
/// most a third of the word's length, and at least 2 edits allowed).
pub fn closest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    known
        .into_iter()
        .map(|k| (strsim::levenshtein(word, k), k))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k)
}

/// Every variable name fleet-edge reads or deliberately ignores.
fn known_names() -> impl Iterator<Item = &'static str> {
    SETTINGS
        .iter()
        .flat_map(|s| s.envs.iter().copied())
        .chain(IGNORED_CONTAINER_VARIABLES.iter().copied())
        .chain(
            DEBUG_BUILD_VARIABLES
                .iter()
                .copied()
                .filter(|_| cfg!(debug_assertions)),
        )
}

/// One warning per unknown `FLEET_*` / `ELASTICSEARCH_*` variable among `names`, in order.
pub fn unknown_variable_warnings<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    names
        .into_iter()
        .filter(|name| CHECKED_PREFIXES.iter().any(|p| name.starts_with(p)))
        .filter(|name| !known_names().any(|k| k == *name))
        .map(|name| match closest(name, known_names()) {
            Some(known) => format!(
                "environment variable {name} is not read by fleet-edge; did you mean {known}?"
            ),
            None => format!(
                "environment variable {name} is not read by fleet-edge (see --help for the variables it reads)"
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelled_variable_gets_the_closest_known_name() {
        let warnings = unknown_variable_warnings(["FLEET_SERVER_ELASTICSEARCH_HOTS", "PATH"]);
        assert_eq!(
            warnings,
            ["environment variable FLEET_SERVER_ELASTICSEARCH_HOTS is not read by fleet-edge; did you mean FLEET_SERVER_ELASTICSEARCH_HOST?"]
        );
    }

    #[test]
    fn known_and_deliberately_ignored_variables_do_not_warn() {
        let names = [
            "FLEET_SERVER_ELASTICSEARCH_HOST",
            "FLEET_EDGE_DATA_DIR",
            "ELASTICSEARCH_CA",
            "FLEET_ENROLL",
            "FLEET_ENROLLMENT_TOKEN",
            "FLEET_INSECURE",
            "ELASTICSEARCH_HOSTS",
            "KIBANA_HOST",
            "HOME",
        ];
        assert!(unknown_variable_warnings(names).is_empty());
    }

    #[test]
    fn each_unknown_variable_warns_once_and_far_ones_get_no_guess() {
        let warnings = unknown_variable_warnings(["FLEET_COMPLETELY_DIFFERENT", "ELASTICSEARCH_X"]);
        assert_eq!(warnings.len(), 2);
        assert!(!warnings[0].contains("did you mean"), "{}", warnings[0]);
        assert!(warnings[0].contains("FLEET_COMPLETELY_DIFFERENT"));
    }

    #[test]
    fn closest_needs_a_plausible_typo() {
        assert_eq!(closest("agnets", ["agents", "tokens"]), Some("agents"));
        assert_eq!(closest("--nmae", ["--name", "--policy"]), Some("--name"));
        assert_eq!(closest("zzzzzzzz", ["agents", "tokens"]), None);
    }
}
