//! The file system a data dir lives on, from `/proc/self/mountinfo`: its mount point, type,
//! device and options, so payd can say at start when the data dir's file system is mounted
//! with online `discard`.
//!
//! Why it matters (docs/BENCHMARKS.md, sessions 51–52): with `discard`, every file deleted on
//! that file system (a WAL after its memtables' flush, table files after a compaction, a
//! previous run's files) sends the device a discard, and the journal's synced writes queue
//! behind it. On the AMD EPYC VM payd's group writes at 10,000 payments/s took over 25 ms
//! once every 14 s with `discard` and once every 41 s without (230 s and 450 s of runs), and
//! every payment in flight waits for such a write. Operators mount the data dir without
//! `discard` and trim on a timer (`fstrim.timer`) instead; payd cannot change the mount, so
//! it warns and exports `rongpay_store_online_discard`.

use std::path::{Path, PathBuf};

/// One mounted file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where it is mounted.
    pub point: PathBuf,
    /// Its type (`ext4`, `xfs`, `tmpfs`, ...).
    pub fs_type: String,
    /// Its device or source (`/dev/vda`).
    pub source: String,
    /// The mount's own options and the file system's (super block) options, in that order.
    pub options: Vec<String>,
}

impl Mount {
    /// Whether blocks freed on this file system are discarded as they are freed (the
    /// `discard` option of ext4, xfs, btrfs; btrfs's `discard=async` counts too).
    pub fn online_discard(&self) -> bool {
        self.options
            .iter()
            .any(|o| o == "discard" || o.starts_with("discard="))
    }
}

/// The mount holding `path` according to this process's `/proc/self/mountinfo`; `None` where
/// there is no such file (not Linux) or the path cannot be resolved.
pub fn of(path: &Path) -> Option<Mount> {
    let path = std::fs::canonicalize(path).ok()?;
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    holding(&table, &path)
}

/// The mount in `mountinfo` (the text of `/proc/<pid>/mountinfo`) holding the absolute,
/// resolved `path`: the one whose mount point is its longest ancestor, the last mounted one
/// where several share a point (the later mount hides the earlier).
pub fn holding(mountinfo: &str, path: &Path) -> Option<Mount> {
    let mut best: Option<Mount> = None;
    for line in mountinfo.lines() {
        let Some(mount) = parse_line(line) else {
            continue;
        };
        if !path.starts_with(&mount.point) {
            continue;
        }
        let deeper = best
            .as_ref()
            .is_none_or(|b| mount.point.components().count() >= b.point.components().count());
        if deeper {
            best = Some(mount);
        }
    }
    best
}

/// One line: `36 35 98:0 /root /mnt rw,noatime master:1 - ext4 /dev/vda rw,discard` (see
/// proc(5)): the mount point is field 5, the mount's options field 6, then optional fields
/// up to `-`, then the type, the source and the super block's options.
fn parse_line(line: &str) -> Option<Mount> {
    let mut fields = line.split(' ');
    let point = unescape(fields.nth(4)?);
    let mut options: Vec<String> = fields.next()?.split(',').map(str::to_owned).collect();
    fields.by_ref().find(|f| *f == "-")?;
    let fs_type = unescape(fields.next()?);
    let source = unescape(fields.next()?);
    if let Some(superblock) = fields.next() {
        options.extend(superblock.split(',').map(str::to_owned));
    }
    Some(Mount {
        point: PathBuf::from(point),
        fs_type,
        source,
        options,
    })
}

/// The kernel writes a space, tab, newline and backslash in a path as `\040`, `\011`, `\012`
/// and `\134`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits.iter().fold(0u32, |v, d| v * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This VM's table, trimmed, with a tmpfs over /dev/shm and a data disk under /srv.
    const TABLE: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard,resv_strict,resuid=65534
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:2 - proc proc rw
24 22 0:22 / /dev/shm rw,nosuid,nodev shared:3 - tmpfs tmpfs rw,inode64
30 22 254:16 / /srv/pay\\040data rw,noatime shared:9 - xfs /dev/vdb rw,attr2,inode64,noquota
31 22 254:32 / /srv/payd rw,noatime shared:10 master:4 - btrfs /dev/vdc rw,ssd,discard=async,space_cache=v2
";

    fn at(path: &str) -> Mount {
        holding(TABLE, Path::new(path)).expect("a mount holds every absolute path")
    }

    #[test]
    fn the_deepest_mount_point_holding_the_path_is_the_one() {
        let root = at("/work/main/data");
        assert_eq!(root.point, Path::new("/"));
        assert_eq!(root.fs_type, "ext4");
        assert_eq!(root.source, "/dev/vda");
        assert!(root.online_discard(), "{root:?}");

        let shm = at("/dev/shm/payd");
        assert_eq!(shm.fs_type, "tmpfs");
        assert!(!shm.online_discard());

        // An escaped space in the point; no discard among the xfs mount's options.
        let xfs = at("/srv/pay data/rocks");
        assert_eq!(xfs.point, Path::new("/srv/pay data"));
        assert!(!xfs.online_discard(), "{xfs:?}");

        // `/srv/payd` is not inside `/srv/pay data`, nor `/srv/pay` inside `/srv/payd`:
        // components, not string prefixes.
        let btrfs = at("/srv/payd/x");
        assert_eq!(btrfs.fs_type, "btrfs");
        assert!(btrfs.online_discard(), "discard=async: {btrfs:?}");
        assert_eq!(at("/srv/pay").point, Path::new("/"));
    }

    #[test]
    fn a_later_mount_on_the_same_point_hides_the_earlier_one() {
        let table = format!("{TABLE}40 22 0:50 / /srv/payd rw,relatime - tmpfs tmpfs rw\n");
        let m = holding(&table, Path::new("/srv/payd/data")).unwrap();
        assert_eq!(m.fs_type, "tmpfs");
        assert!(!m.online_discard());
    }

    #[test]
    fn lines_it_cannot_read_are_skipped() {
        let table = "garbage\n\n22 1 254:0 / / rw - ext4 /dev/vda rw,discard\n1 2 3\n";
        assert!(holding(table, Path::new("/x")).unwrap().online_discard());
        assert_eq!(holding("", Path::new("/x")), None);
        assert_eq!(unescape("a\\040b\\134c\\0"), "a b\\c\\0");
    }

    #[test]
    fn this_process_finds_the_mount_of_its_own_directory() {
        if !Path::new("/proc/self/mountinfo").exists() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let m = of(dir.path()).expect("a mount holds the temp dir");
        assert!(std::fs::canonicalize(dir.path())
            .unwrap()
            .starts_with(&m.point));
        assert!(!m.fs_type.is_empty());
    }
}
