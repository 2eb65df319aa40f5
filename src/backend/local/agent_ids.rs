//! A set of agent ids kept compactly: the listing index's marks (`committer::AgentMarks`) hold
//! the id of every agent written since the last listing, which in a parked fleet is every agent
//! (each one's `last_checkin` is refreshed every 30 s). Ids in the form the server issues (a
//! lowercase hyphenated UUID, 36 characters) are kept as 16 bytes in the table itself instead of
//! a 36-byte heap string behind a 24-byte slot; any other id is kept as its text (issue 21).

use std::collections::HashSet;

/// Agent ids, without duplicates.
#[derive(Debug, Default)]
pub(super) struct AgentIds {
    uuids: HashSet<u128>,
    other: HashSet<Box<str>>,
}

impl AgentIds {
    /// Adds `id`.
    pub(super) fn insert(&mut self, id: &str) {
        match parse_uuid(id) {
            Some(uuid) => {
                self.uuids.insert(uuid);
            }
            None => {
                if !self.other.contains(id) {
                    self.other.insert(id.into());
                }
            }
        }
    }

    /// Adds every id of `ids`.
    pub(super) fn extend(&mut self, ids: AgentIds) {
        self.uuids.extend(ids.uuids);
        self.other.extend(ids.other);
    }

    /// How many ids are kept.
    pub(super) fn len(&self) -> usize {
        self.uuids.len() + self.other.len()
    }

    /// True when none is.
    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ids as written, in no particular order.
    pub(super) fn into_strings(self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.len());
        out.extend(self.uuids.into_iter().map(format_uuid));
        out.extend(self.other.into_iter().map(String::from));
        out
    }
}

/// Where a canonical UUID has its hyphens.
const HYPHENS: [usize; 4] = [8, 13, 18, 23];

/// The 128 bits of a lowercase hyphenated UUID (`None` for anything else, uppercase included,
/// so that [`format_uuid`] gives back exactly the text it came from).
fn parse_uuid(id: &str) -> Option<u128> {
    if id.len() != 36 {
        return None;
    }
    let mut value = 0u128;
    for (i, b) in id.bytes().enumerate() {
        if HYPHENS.contains(&i) {
            if b != b'-' {
                return None;
            }
            continue;
        }
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        value = (value << 4) | u128::from(digit);
    }
    Some(value)
}

/// The text [`parse_uuid`] read `value` from: a lowercase hyphenated UUID (also how
/// `backend::ops::uuid_v4` writes the ids it makes).
pub(crate) fn format_uuid(value: u128) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(36);
    for i in 0..32 {
        if HYPHENS.contains(&out.len()) {
            out.push('-');
        }
        let digit = (value >> (4 * (31 - i))) & 0xf;
        out.push(char::from(DIGITS[digit as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_come_back_as_written_and_other_ids_as_text() {
        let ids = [
            "38fbceba-4012-46d2-88f4-e3409432004b",
            "00000000-0000-0000-0000-000000000000",
            "ffffffff-ffff-ffff-ffff-ffffffffffff",
            "38FBCEBA-4012-46D2-88F4-E3409432004B",
            "38fbceba4012-46d2-88f4-e3409432004b-",
            "my-agent",
            "",
        ];
        let mut set = AgentIds::default();
        for id in ids.iter().chain(&ids) {
            set.insert(id);
        }
        assert_eq!(set.len(), ids.len());
        assert_eq!(set.uuids.len(), 3);
        let mut back = set.into_strings();
        back.sort();
        let mut want: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(back, want);
    }

    #[test]
    fn extend_merges_without_duplicates() {
        let mut a = AgentIds::default();
        a.insert("38fbceba-4012-46d2-88f4-e3409432004b");
        a.insert("x");
        let mut b = AgentIds::default();
        b.insert("38fbceba-4012-46d2-88f4-e3409432004b");
        b.insert("x");
        b.insert("y");
        a.extend(b);
        assert_eq!(a.len(), 3);
        assert!(!a.is_empty());
    }
}
