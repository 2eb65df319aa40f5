//! A directory watched by the loop: a chore (`housekeeping.rs`) that also runs, within
//! milliseconds, when a file of the directory is written. Embedded mode watches the policy
//! directory this way so that a rewritten policy file reaches parked agents without waiting for
//! the next periodic scan (the scan stays: it is the fallback where file notification does not
//! work, such as network filesystems, and after a notification queue overflow).
//!
//! Linux inotify, through the loop's poll (no thread of its own): one descriptor and one watch.
//! Which events count ([`effect`]): a file that passes the owner's name filter (so editors' temp
//! and swap files and `*.tmp` files do not count) being closed after writing or moved into the
//! directory (an atomic rename-into-place) settles a change; the chore runs once the directory
//! has been quiet for [`QUIET`]. Writes to a file still open only push that moment back: a file
//! written in several steps is read once it is closed, and the chore's own validation (a policy
//! file that does not parse keeps the last good revision) covers a file written in several
//! open-write-close steps further apart than [`QUIET`].

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use mio::{Interest, Token};

use super::{ChoreId, Server, SubmitChore, TimerKey};
use crate::core::deadlines::Ticket;

/// The poll token of the watch.
pub(super) const WATCH: Token = Token(usize::MAX - 5);

/// How long the directory must be quiet after a settled change before the chore runs: long
/// enough for the several steps of one save (an editor's rename, then its chmod; `cmd > f`
/// followed by `cmd >> f` from a script), short enough not to count against a rollout.
pub const QUIET: Duration = Duration::from_millis(10);

/// What one notification means for the chore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Not about a file the chore reads.
    Ignore,
    /// A relevant file is being written: a pending run waits for it to be quiet again.
    Defer,
    /// A relevant file was closed after writing or moved into place: run the chore once quiet.
    Settle,
    /// Events were lost (queue overflow): run the chore to catch up.
    Rescan,
}

/// Why a directory cannot be watched.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// No file notification on this platform: the periodic run is all there is.
    #[error("file notification is not available on this platform")]
    Unsupported,
    /// The kernel refused (no inotify instances or watches left, a filesystem without it, ...).
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// The watch the loop holds.
pub(super) struct Watch {
    chore: ChoreId,
    /// `None` once the directory went away or reading failed: the periodic runs remain.
    dir: Option<os::DirWatch>,
    relevant: fn(&Path) -> bool,
    /// The ticket of the armed run, if any.
    pending: Option<Ticket>,
}

impl Server {
    /// Also runs `chore` when a file of `dir` whose path passes `relevant` is written (closed
    /// after writing, or renamed into `dir`), [`QUIET`] after the last such write. The periodic
    /// runs go on as before. On failure nothing is watched and the periodic runs are all there
    /// is; the caller logs why.
    pub fn also_on_change(
        &mut self,
        chore: ChoreId,
        dir: &Path,
        relevant: fn(&Path) -> bool,
    ) -> Result<(), WatchError> {
        let mut watch = os::DirWatch::new(dir)?;
        self.poll
            .registry()
            .register(&mut watch, WATCH, Interest::READABLE)?;
        if let Some(old) = self.watch.as_mut().and_then(|w| w.dir.as_mut()) {
            let _ = self.poll.registry().deregister(old);
        }
        self.watch = Some(Watch {
            chore,
            dir: Some(watch),
            relevant,
            pending: None,
        });
        Ok(())
    }

    /// The watch's descriptor is readable: read its events and arm, push back or leave the run.
    pub(super) fn on_watch(&mut self, now: Instant) {
        let Some(watch) = &mut self.watch else {
            return;
        };
        let Some(dir) = &mut watch.dir else {
            return;
        };
        let relevant = watch.relevant;
        let (mut settle, mut defer, mut gone) = (false, false, false);
        let read = dir.drain(|e| match e {
            os::Seen::File(mask, name) => match effect(mask, Path::new(name), relevant) {
                Effect::Ignore => {}
                Effect::Defer => defer = true,
                Effect::Settle | Effect::Rescan => settle = true,
            },
            os::Seen::Overflow => settle = true,
            os::Seen::Gone => gone = true,
        });
        if let Err(e) = &read {
            log::warn!("watching {}: {e}", dir.path());
        }
        if gone || read.is_err() {
            log::info!("{} no longer watched: periodic scans only", dir.path());
            let _ = self.poll.registry().deregister(dir);
            watch.dir = None;
        }
        if settle || (defer && watch.pending.is_some()) {
            self.arm_watch(now + QUIET);
        }
    }

    /// Arms (or pushes back) the watch's run.
    fn arm_watch(&mut self, at: Instant) {
        let ticket = self.deadlines.arm(TimerKey::Watch, at);
        let Some(watch) = &mut self.watch else {
            return;
        };
        if watch.pending.replace(ticket).is_some() {
            // The replaced entry fires to no effect (`fire_watch` compares tickets).
            let conns = &self.conns;
            self.deadlines
                .note_stale(|key, t| super::timer_is_live(conns, key, t));
        }
    }

    /// The watch's timer fired: run the chore (again a little later if it is still busy from
    /// before the change or the job queue is full).
    pub(super) fn fire_watch(&mut self, ticket: Ticket, now: Instant) {
        let Some(watch) = &mut self.watch else {
            return;
        };
        if watch.pending != Some(ticket) {
            return;
        }
        watch.pending = None;
        let chore = watch.chore;
        match self.submit_chore(chore) {
            SubmitChore::Submitted | SubmitChore::NoBackend => {}
            SubmitChore::Busy | SubmitChore::QueueFull => self.arm_watch(now + QUIET),
        }
    }
}

/// What an event with `mask` about the directory entry `name` means (sans-IO, the whole policy
/// of which events count).
pub fn effect(mask: Mask, name: &Path, relevant: fn(&Path) -> bool) -> Effect {
    if mask.overflow {
        return Effect::Rescan;
    }
    if mask.is_dir || !relevant(name) {
        return Effect::Ignore;
    }
    if mask.closed_after_write || mask.moved_in {
        Effect::Settle
    } else if mask.written {
        Effect::Defer
    } else {
        Effect::Ignore
    }
}

/// The parts of an inotify event mask [`effect`] looks at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mask {
    /// `IN_CLOSE_WRITE`: a file open for writing was closed.
    pub closed_after_write: bool,
    /// `IN_MOVED_TO`: an entry was renamed into the directory.
    pub moved_in: bool,
    /// `IN_MODIFY` or `IN_CREATE`: a file is being written.
    pub written: bool,
    /// `IN_ISDIR`: the entry is a directory.
    pub is_dir: bool,
    /// `IN_Q_OVERFLOW`: events were lost.
    pub overflow: bool,
}

#[cfg(target_os = "linux")]
mod os {
    //! inotify through the `inotify` crate (a safe wrapper over the three system calls).
    use std::ffi::OsStr;
    use std::io;
    use std::os::fd::AsRawFd;
    use std::path::{Path, PathBuf};

    use inotify::{EventMask, Inotify, WatchMask};
    use mio::event::Source;
    use mio::unix::SourceFd;
    use mio::{Interest, Registry, Token};

    use super::Mask;

    /// One event, as [`DirWatch::drain`] reports it.
    pub enum Seen<'a> {
        /// About an entry of the directory.
        File(Mask, &'a OsStr),
        /// The kernel's queue overflowed: events were lost.
        Overflow,
        /// The directory itself went away (removed, moved, or its filesystem unmounted).
        Gone,
    }

    /// An inotify instance watching one directory.
    pub struct DirWatch {
        inotify: Inotify,
        path: PathBuf,
    }

    impl DirWatch {
        pub fn new(dir: &Path) -> io::Result<Self> {
            let inotify = Inotify::init()?;
            inotify.watches().add(
                dir,
                WatchMask::CLOSE_WRITE
                    | WatchMask::MOVED_TO
                    | WatchMask::MODIFY
                    | WatchMask::CREATE
                    | WatchMask::DELETE_SELF
                    | WatchMask::MOVE_SELF
                    | WatchMask::ONLYDIR,
            )?;
            Ok(Self {
                inotify,
                path: dir.to_path_buf(),
            })
        }

        pub fn path(&self) -> std::path::Display<'_> {
            self.path.display()
        }

        /// Reads every queued event (the descriptor is non-blocking) and hands each to `seen`.
        pub fn drain(&mut self, mut seen: impl FnMut(Seen<'_>)) -> io::Result<()> {
            // Room for at least one event with the longest name (16 + 256 bytes) many times over.
            let mut buffer = [0u8; 4096];
            loop {
                let events = match self.inotify.read_events(&mut buffer) {
                    Ok(events) => events,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                for event in events {
                    let m = event.mask;
                    if m.contains(EventMask::Q_OVERFLOW) {
                        seen(Seen::Overflow);
                    } else if m.intersects(
                        EventMask::DELETE_SELF | EventMask::MOVE_SELF | EventMask::IGNORED,
                    ) {
                        seen(Seen::Gone);
                    } else if let Some(name) = event.name {
                        let mask = Mask {
                            closed_after_write: m.contains(EventMask::CLOSE_WRITE),
                            moved_in: m.contains(EventMask::MOVED_TO),
                            written: m.intersects(EventMask::MODIFY | EventMask::CREATE),
                            is_dir: m.contains(EventMask::ISDIR),
                            overflow: false,
                        };
                        seen(Seen::File(mask, name));
                    }
                }
            }
        }
    }

    impl Source for DirWatch {
        fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
            SourceFd(&self.inotify.as_raw_fd()).register(r, t, i)
        }
        fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
            SourceFd(&self.inotify.as_raw_fd()).reregister(r, t, i)
        }
        fn deregister(&mut self, r: &Registry) -> io::Result<()> {
            SourceFd(&self.inotify.as_raw_fd()).deregister(r)
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod os {
    //! No file notification here: [`DirWatch::new`] says so and nothing is ever registered.
    use std::ffi::OsStr;
    use std::io;
    use std::path::Path;

    use mio::event::Source;
    use mio::{Interest, Registry, Token};

    use super::{Mask, WatchError};

    pub enum Seen<'a> {
        File(Mask, &'a OsStr),
        Overflow,
        Gone,
    }

    pub enum DirWatch {}

    impl DirWatch {
        pub fn new(_dir: &Path) -> Result<Self, WatchError> {
            Err(WatchError::Unsupported)
        }
        pub fn path(&self) -> &'static str {
            match *self {}
        }
        pub fn drain(&mut self, _seen: impl FnMut(Seen<'_>)) -> io::Result<()> {
            match *self {}
        }
    }

    impl Source for DirWatch {
        fn register(&mut self, _: &Registry, _: Token, _: Interest) -> io::Result<()> {
            match *self {}
        }
        fn reregister(&mut self, _: &Registry, _: Token, _: Interest) -> io::Result<()> {
            match *self {}
        }
        fn deregister(&mut self, _: &Registry) -> io::Result<()> {
            match *self {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(path: &Path) -> bool {
        crate::embedded::policy_format::is_policy_file(path)
    }

    const CLOSED: Mask = Mask {
        closed_after_write: true,
        moved_in: false,
        written: false,
        is_dir: false,
        overflow: false,
    };
    const MOVED_IN: Mask = Mask {
        moved_in: true,
        closed_after_write: false,
        ..CLOSED
    };
    const WRITTEN: Mask = Mask {
        written: true,
        closed_after_write: false,
        ..CLOSED
    };

    #[test]
    fn a_policy_file_closed_or_renamed_into_place_settles_a_change() {
        for name in ["p.json", "p.yml", "p.yaml"] {
            assert_eq!(effect(CLOSED, Path::new(name), policy), Effect::Settle);
            assert_eq!(effect(MOVED_IN, Path::new(name), policy), Effect::Settle);
        }
    }

    #[test]
    fn a_policy_file_still_being_written_only_defers() {
        assert_eq!(effect(WRITTEN, Path::new("p.json"), policy), Effect::Defer);
    }

    #[test]
    fn editors_temp_and_swap_files_do_not_count() {
        // fleet-edge's own and loadgen's temp files, vim's swap, backup and probe files,
        // emacs's autosave, a sed -i temp file.
        for name in [
            ".p.json.tmp",
            "p.json.loadgen-tmp",
            ".p.json.swp",
            "p.json~",
            "4913",
            "#p.json#",
            "sedAbc123",
        ] {
            for mask in [CLOSED, MOVED_IN, WRITTEN] {
                assert_eq!(
                    effect(mask, Path::new(name), policy),
                    Effect::Ignore,
                    "{name}"
                );
            }
        }
        let dir = Mask {
            is_dir: true,
            ..MOVED_IN
        };
        assert_eq!(effect(dir, Path::new("d.json"), policy), Effect::Ignore);
    }

    #[test]
    fn lost_events_rescan() {
        let overflow = Mask {
            overflow: true,
            ..Mask::default()
        };
        assert_eq!(effect(overflow, Path::new(""), policy), Effect::Rescan);
    }

    /// The kernel side: what [`os::DirWatch`] reports for real file operations, read once the
    /// descriptor is readable (bounded waits; the events are queued by the system calls
    /// themselves, so each wait ends at once).
    #[cfg(target_os = "linux")]
    mod kernel {
        use std::io::Write;

        use mio::{Events, Poll};

        use super::*;
        use crate::tls::test_support::TempDir;

        struct Watched {
            poll: Poll,
            dir: os::DirWatch,
            events: Events,
        }

        impl Watched {
            fn new(path: &Path) -> Self {
                let poll = Poll::new().unwrap();
                let mut dir = os::DirWatch::new(path).unwrap();
                poll.registry()
                    .register(&mut dir, WATCH, Interest::READABLE)
                    .unwrap();
                Self {
                    poll,
                    dir,
                    events: Events::with_capacity(4),
                }
            }

            /// The effects of everything queued, waiting (at most 10 s) for something to be.
            fn effects(&mut self) -> Vec<(Effect, String)> {
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    let mut out = Vec::new();
                    self.dir
                        .drain(|e| match e {
                            os::Seen::File(m, name) => {
                                let name = Path::new(name);
                                out.push((effect(m, name, policy), name.display().to_string()))
                            }
                            os::Seen::Overflow => out.push((Effect::Rescan, String::new())),
                            os::Seen::Gone => out.push((Effect::Ignore, "<gone>".into())),
                        })
                        .unwrap();
                    if !out.is_empty() {
                        return out;
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    assert!(!left.is_zero(), "no inotify event within 10 s");
                    self.poll.poll(&mut self.events, Some(left)).unwrap();
                }
            }

            fn settled(&mut self) -> Vec<String> {
                self.effects()
                    .into_iter()
                    .filter(|(e, _)| *e == Effect::Settle)
                    .map(|(_, n)| n)
                    .collect()
            }
        }

        #[test]
        fn an_atomic_rename_into_place_settles_once_for_the_policy_file() {
            let tmp = TempDir::new("watch-rename");
            let mut w = Watched::new(tmp.path());
            std::fs::write(tmp.path().join(".p.json.tmp"), b"{}").unwrap();
            std::fs::rename(tmp.path().join(".p.json.tmp"), tmp.path().join("p.json")).unwrap();
            let mut settled = Vec::new();
            while settled.is_empty() {
                settled = w.settled();
            }
            assert_eq!(
                settled,
                ["p.json"],
                "the temp file's own events do not count"
            );
        }

        #[test]
        fn a_file_written_in_several_steps_settles_only_when_closed() {
            let tmp = TempDir::new("watch-steps");
            let mut w = Watched::new(tmp.path());
            let mut file = std::fs::File::create(tmp.path().join("p.json")).unwrap();
            file.write_all(b"{\"id\": ").unwrap();
            let first = w.effects();
            assert!(first.iter().all(|(e, _)| *e == Effect::Defer), "{first:?}");
            file.write_all(b"\"p\"}").unwrap();
            file.sync_all().unwrap();
            let second = w.effects();
            assert!(
                second.iter().all(|(e, _)| *e == Effect::Defer),
                "{second:?}"
            );
            drop(file);
            assert_eq!(w.settled(), ["p.json"]);
        }

        #[test]
        fn an_editors_swap_file_alone_settles_nothing() {
            let tmp = TempDir::new("watch-swap");
            let mut w = Watched::new(tmp.path());
            std::fs::write(tmp.path().join(".p.json.swp"), b"swap").unwrap();
            std::fs::write(tmp.path().join("p.json~"), b"backup").unwrap();
            // A marker written last: once its event is read, the swap files' were read too.
            std::fs::write(tmp.path().join("marker.json"), b"{}").unwrap();
            let mut effects = Vec::new();
            while !effects
                .iter()
                .any(|(e, n)| *e == Effect::Settle && n == "marker.json")
            {
                effects.extend(w.effects());
            }
            let settled: Vec<&str> = effects
                .iter()
                .filter(|(e, _)| *e == Effect::Settle)
                .map(|(_, n)| n.as_str())
                .collect();
            assert_eq!(settled, ["marker.json"]);
        }

        #[test]
        fn the_directory_going_away_is_reported() {
            let tmp = TempDir::new("watch-gone");
            let dir = tmp.path().join("policies");
            std::fs::create_dir(&dir).unwrap();
            let mut w = Watched::new(&dir);
            std::fs::remove_dir(&dir).unwrap();
            let mut effects = Vec::new();
            while !effects
                .iter()
                .any(|(_, n): &(Effect, String)| n == "<gone>")
            {
                effects.extend(w.effects());
            }
        }
    }
}
