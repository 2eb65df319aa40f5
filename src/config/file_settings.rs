//! File-transfer settings (issue 16): the upload size limit, and the embedded store's retention
//! and total cap. Read by `backend::files`.

use std::time::Duration;

/// File-transfer settings (configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileSettings {
    /// `server.limits.max_file_storage_size`: `None` unlimited, `Some(0)` uploads disabled,
    /// else the largest `file.size` accepted.
    pub max_file_size: Option<u64>,
    /// Embedded store: completed (and failed) uploads are removed this long after they began.
    pub retention: Duration,
    /// Embedded store: the most bytes of uploads kept at once; a new upload that would pass it
    /// is refused (`ErrFileSizeTooLarge`) instead of filling the disk. `None`: no cap.
    pub total_cap: Option<u64>,
}

impl Default for FileSettings {
    fn default() -> Self {
        FileSettings {
            max_file_size: None,
            retention: Duration::from_secs(30 * 24 * 3600),
            total_cap: Some(DEFAULT_TOTAL_CAP),
        }
    }
}

/// The embedded store's default total cap on stored uploads: 1 GiB.
pub const DEFAULT_TOTAL_CAP: u64 = 1 << 30;
