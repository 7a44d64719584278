//! USER resolution: `name`, `uid`, `name:group`, `uid:gid` looked up in the
//! image's own `/etc/passwd` and `/etc/group`, as Docker does; supplementary
//! groups only when no group is named.

/// The identity a step runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (the primary gid included).
    pub groups: Vec<u32>,
    pub home: String,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 || line.starts_with('#') {
            return None;
        }
        Some(PasswdEntry { name: f[0], uid: f[2].parse().ok()?, gid: f[3].parse().ok()?, home: f[5] })
    })
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn group_entries(group: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    group.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 || line.starts_with('#') {
            return None;
        }
        Some(GroupEntry {
            name: f[0],
            gid: f[2].parse().ok()?,
            members: f[3].split(',').filter(|m| !m.is_empty()).collect(),
        })
    })
}

/// Resolves a USER value against the image's passwd and group files
/// (either may be missing).
pub fn resolve(user: &str, passwd: Option<&str>, group: Option<&str>) -> Result<Identity, String> {
    // No USER means uid 0, as in Docker: found in passwd for its home and
    // groups when there is an entry, and still root in an image without one.
    let user = if user.is_empty() { "0" } else { user };
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = passwd.unwrap_or("");
    let group = group.unwrap_or("");
    let entry = passwd_entries(passwd).find(|e| match user_part.parse::<u32>() {
        Ok(uid) => e.uid == uid,
        Err(_) => e.name == user_part,
    });
    let (uid, mut gid, home, name) = match (&entry, user_part.parse::<u32>()) {
        (Some(e), _) => (e.uid, e.gid, e.home.to_string(), Some(e.name)),
        (None, Ok(uid)) => (uid, 0, "/".to_string(), None),
        (None, Err(_)) => {
            return Err(format!("unable to find user {user_part}: no matching entries in passwd file"));
        }
    };
    if let Some(g) = group_part {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group_entries(group)
                .find(|e| e.name == g)
                .map(|e| e.gid)
                .ok_or_else(|| format!("unable to find group {g}: no matching entries in group file"))?,
        };
    }
    // An explicit group is the only one: the groups /etc/group lists the
    // user in are added only for a bare `name` or `uid` (BuildKit and
    // containerd's rule).
    let mut groups = vec![gid];
    if let (Some(name), None) = (name, group_part) {
        for g in group_entries(group) {
            if g.members.contains(&name) && !groups.contains(&g.gid) {
                groups.push(g.gid);
            }
        }
    }
    Ok(Identity { uid, gid, groups, home })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\napp:x:1000:\nstaff:x:50:app,other\n";

    #[test]
    fn names_numbers_and_groups() {
        let app = resolve("app", Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!(
            (app.uid, app.gid, app.groups.clone(), app.home.as_str()),
            (1000, 1000, vec![1000, 50], "/home/app")
        );
        let root = resolve("", Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!((root.uid, root.gid, root.home.as_str()), (0, 0, "/root"));
        let numeric = resolve("4242", Some(PASSWD), None).unwrap();
        assert_eq!((numeric.uid, numeric.gid, numeric.home.as_str()), (4242, 0, "/"));
        let with_group = resolve("app:staff", Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!((with_group.uid, with_group.gid, with_group.groups), (1000, 50, vec![50]));
        let own_group = resolve("app:app", Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!(own_group.groups, vec![1000], "an explicit group drops the supplementary ones");
        assert_eq!(resolve("1000:7", Some(PASSWD), None).unwrap().gid, 7);
    }

    #[test]
    fn unknown_names_are_errors() {
        assert!(
            resolve("ghost", Some(PASSWD), Some(GROUP)).unwrap_err().contains("unable to find user ghost")
        );
        assert!(
            resolve("app:ghosts", Some(PASSWD), Some(GROUP))
                .unwrap_err()
                .contains("unable to find group ghosts")
        );
        assert!(resolve("app", None, None).is_err());
    }

    #[test]
    fn no_user_is_root_even_without_a_passwd_file() {
        let root = resolve("", None, None).unwrap();
        assert_eq!((root.uid, root.gid, root.groups, root.home.as_str()), (0, 0, vec![0], "/"));
    }
}
