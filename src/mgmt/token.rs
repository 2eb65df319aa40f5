//! The admin token of the management API: 32 random bytes, URL-safe base64, in
//! `<data-dir>/admin-token` (mode 0600), created on first start and reused; compared in constant
//! time.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;

/// The token file's path.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin-token")
}

/// Reads the token, creating it on first use.
pub fn load_or_create(data_dir: &Path) -> std::io::Result<String> {
    let path = path(data_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| std::io::Error::other("the OS random source failed"))?;
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path)?;
    file.write_all(token.as_bytes())?;
    file.sync_all()?;
    Ok(token)
}

/// The named operator tokens' file: `<data-dir>/operator-tokens` (mode 0600), one operator a
/// line, `NAME ROLE TOKEN` (role `admin` or `viewer`), `#` comments. Read at start and on
/// SIGHUP; a missing file is no operators.
pub const OPERATORS_FILE: &str = "operator-tokens";

/// What a caller may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything (the admin token, an `admin` operator).
    Admin,
    /// Read only: every GET of the API and the console's pages, no write.
    Viewer,
}

impl Role {
    /// The role's name in the file and in session cookies.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    /// The role named `s`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// A named operator token.
#[derive(Clone, PartialEq, Eq)]
pub struct Operator {
    /// `[A-Za-z0-9_-]{1,64}`; `admin` is the admin token's name and taken.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The secret (at least 16 printable characters).
    pub token: String,
}

impl std::fmt::Debug for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token: Debug output may reach a log.
        write!(f, "Operator({} {})", self.name, self.role.as_str())
    }
}

/// Who may call the management API: the admin token and the named operators.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The admin token (`<data-dir>/admin-token`).
    pub admin: String,
    /// The named operators (`<data-dir>/operator-tokens`).
    pub operators: Vec<Operator>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("operators", &self.operators)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Only the admin token.
    pub fn admin(token: impl Into<String>) -> Self {
        Credentials {
            admin: token.into(),
            operators: Vec::new(),
        }
    }

    /// The name and role whose token `presented` is (every token is compared, in constant
    /// time each). An empty admin token matches nothing.
    pub fn identify(&self, presented: &str) -> Option<(&str, Role)> {
        let mut found = None;
        if !self.admin.is_empty() && equal(presented, &self.admin) {
            found = Some(("admin", Role::Admin));
        }
        for op in &self.operators {
            if equal(presented, &op.token) && found.is_none() {
                found = Some((op.name.as_str(), op.role));
            }
        }
        found
    }

    /// The role of the operator `name` now (`admin` is the admin token): a session of an
    /// operator removed from the file, or whose role changed, ends at the next reload.
    pub fn role_of(&self, name: &str) -> Option<Role> {
        if name == "admin" {
            return Some(Role::Admin);
        }
        self.operators
            .iter()
            .find(|op| op.name == name)
            .map(|op| op.role)
    }
}

/// The operators in `<data-dir>/operator-tokens` (none when the file does not exist); an error
/// sentence naming the line for a malformed one (the token is never quoted).
pub fn load_operators(data_dir: &Path) -> Result<Vec<Operator>, String> {
    let path = data_dir.join(OPERATORS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    parse_operators(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses the operators file's text.
pub fn parse_operators(text: &str) -> Result<Vec<Operator>, String> {
    let mut out: Vec<Operator> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [name, role, token] = fields.as_slice() else {
            return Err(format!(
                "line {}: expected NAME ROLE TOKEN, found {} field(s)",
                n + 1,
                fields.len()
            ));
        };
        let name_ok = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b));
        if !name_ok || *name == "admin" {
            return Err(format!(
                "line {}: the name {name:?} is not 1 to 64 of A-Z a-z 0-9 _ - (and not \"admin\")",
                n + 1
            ));
        }
        let Some(role) = Role::parse(role) else {
            return Err(format!(
                "line {}: the role {role:?} is not admin or viewer",
                n + 1
            ));
        };
        if token.len() < 16 {
            return Err(format!(
                "line {}: the token of {name} is shorter than 16 characters",
                n + 1
            ));
        }
        if out.iter().any(|o| o.name == *name) {
            return Err(format!("line {}: {name} is named twice", n + 1));
        }
        out.push(Operator {
            name: (*name).to_owned(),
            role,
            token: (*token).to_owned(),
        });
    }
    Ok(out)
}

/// Constant-time comparison of two tokens.
pub fn equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_private_and_reused() {
        let dir =
            std::env::temp_dir().join(format!("fleet-edge-admin-token-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let first = load_or_create(&dir).unwrap();
        assert_eq!(first.len(), 43);
        assert_eq!(load_or_create(&dir).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(path(&dir)).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn operators_are_parsed_and_identified() {
        let ops = parse_operators(
            "# name role token\nalice viewer 0123456789abcdef-alice\n\nbob admin 0123456789abcdef-bob\n",
        )
        .unwrap();
        let creds = Credentials {
            admin: "0123456789abcdef-admin".into(),
            operators: ops,
        };
        assert_eq!(
            creds.identify("0123456789abcdef-alice"),
            Some(("alice", Role::Viewer))
        );
        assert_eq!(
            creds.identify("0123456789abcdef-bob"),
            Some(("bob", Role::Admin))
        );
        assert_eq!(
            creds.identify("0123456789abcdef-admin"),
            Some(("admin", Role::Admin))
        );
        assert_eq!(creds.identify("0123456789abcdef-carol"), None);
        assert_eq!(creds.role_of("alice"), Some(Role::Viewer));
        assert_eq!(creds.role_of("carol"), None);
        assert!(!format!("{creds:?}").contains("0123456789abcdef"));
        assert_eq!(Credentials::admin("").identify(""), None);
        for bad in [
            "alice viewer",
            "alice reader 0123456789abcdef-x",
            "admin viewer 0123456789abcdef-x",
            "al.ice viewer 0123456789abcdef-x",
            "alice viewer short",
            "a viewer 0123456789abcdef-x\na admin 0123456789abcdef-y",
        ] {
            let e = parse_operators(bad).unwrap_err();
            assert!(e.starts_with("line "), "{e}");
            assert!(!e.contains("0123456789abcdef"), "{e}");
        }
    }

    #[test]
    fn comparison() {
        assert!(equal("abc", "abc"));
        assert!(!equal("abc", "abd"));
        assert!(!equal("abc", "abcd"));
    }
}
