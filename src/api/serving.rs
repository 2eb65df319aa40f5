//! What the agent listener serves from disk (issue 17), handed to the engine in its settings and
//! to each request's [`Context`](super::Context): the mirror directory, the PGP key source and
//! the Elastic Defend artifact cache. The blocking work is `files` and `backend::ops::artifacts`,
//! on backend workers.

use std::path::PathBuf;
use std::sync::Arc;

/// What the agent listener serves from disk.
#[derive(Debug, Clone, Default)]
pub struct FileServing {
    /// The artifact mirror's root directory; `None`: `/downloads/` is not served.
    pub mirror: Option<PathBuf>,
    /// Where the upgrade PGP key comes from.
    pub pgp: Arc<crate::files::pgp::PgpSource>,
    /// Elastic Defend artifact documents (24 h) and the fetch throttle, shared by the workers.
    pub endpoint_artifacts: Arc<crate::backend::ops::artifacts::ArtifactCache>,
}
