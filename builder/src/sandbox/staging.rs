//! `chroot` isolation where no mount can be made (kaniko's situation): what
//! the sandbox would mount is copied into the step's root before the
//! command runs and taken out again after it, before the snapshotter
//! compares the root with its layers, so none of it ends in the layer.
//!
//! * /proc, /sys and /dev: directories (made if missing); in /dev, the
//!   character devices null, zero, full, random, urandom and tty, made
//!   with mknod (CAP_MKNOD, in Docker's default set) where the image has
//!   none. /proc and /sys stay empty: no kernel file reaches the step;
//! * /etc/resolv.conf and /etc/hosts: the build's copies, where the image
//!   has none (an image's own file is left as it is);
//! * RUN mounts: a bind source (context, stage, secret, script) is copied
//!   in and removed after; a writable cache mount is copied back into the
//!   cache directory while its lock is still held; a tmpfs is an empty
//!   directory; a directory the image has at a mount target is moved
//!   aside meanwhile and put back.
//!
//! Everything made is undone in reverse order, whether the command
//! succeeded or not; a failure to undo fails the step, so a secret can
//! never be committed. A directory that had to be made for a target stays
//! touched, as the sandbox's mount points leave it (the same layer either
//! way); one whose entry was only moved aside gets its times back.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{Mode, SFlag, mknod};
use rbuild_layer::{LayerStack, OverlayXattrs};

use super::SandboxError;
use super::placeholders;
use super::rootpath::resolve_in_root;
use super::spec::{ExtraMount, SandboxSpec, TouchedParent};

/// The devices every step gets, as Docker gives them.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// One thing to undo after the step.
enum Undo {
    /// Something staging created (a file, a device, an empty directory).
    Remove(PathBuf),
    /// A copied-in tree or file.
    RemoveTree(PathBuf),
    /// A writable cache mount: its content goes back to the cache dir.
    CopyBack { inside: PathBuf, source: PathBuf },
    /// A directory or file of the image that was at a mount target.
    PutBack { aside: PathBuf, original: PathBuf },
}

/// What [`stage`] did to a root, to be undone with [`Staged::undo`].
#[must_use = "a staged root must be undone before it is committed"]
pub(super) struct Staged {
    undo: Vec<Undo>,
    xattrs: OverlayXattrs,
    /// The image's directories staging made or moved things in.
    touched: Vec<TouchedParent>,
}

struct Stager<'a> {
    root: &'a Path,
    aside_dir: PathBuf,
    xattrs: OverlayXattrs,
    store_root: &'a Path,
    undo: Vec<Undo>,
    touched: Vec<TouchedParent>,
    /// Directories staging made: what it makes in them goes away with them.
    made_dirs: HashSet<PathBuf>,
}

fn err(what: String) -> impl FnOnce(std::io::Error) -> SandboxError {
    move |e| SandboxError::Setup(format!("{what}: {e}"))
}

/// Copies into `root` what `spec` would have mounted. `scratch` is the
/// step's private scratch dir (on the root's filesystem).
pub(super) fn stage(root: &Path, scratch: &Path, spec: &SandboxSpec) -> Result<Staged, SandboxError> {
    let mut s = Stager {
        root,
        aside_dir: scratch.join("aside"),
        xattrs: if spec.userxattr { OverlayXattrs::User } else { OverlayXattrs::Trusted },
        store_root: &spec.store_root,
        undo: Vec::new(),
        touched: Vec::new(),
        made_dirs: HashSet::new(),
    };
    let staged = s.stage_all(spec);
    placeholders::note_after(&mut s.touched, root);
    let done = Staged { undo: s.undo, xattrs: s.xattrs, touched: s.touched };
    match staged {
        Ok(()) => Ok(done),
        Err(e) => {
            // Leave the root as it was, then report the first failure.
            let _ = done.undo();
            Err(e)
        }
    }
}

impl Stager<'_> {
    fn stage_all(&mut self, spec: &SandboxSpec) -> Result<(), SandboxError> {
        for dir in ["/proc", "/sys", "/dev"] {
            self.ensure_dir(dir)?;
        }
        for name in DEVICES {
            self.device(name)?;
        }
        let shm = self.resolve("/dev/shm")?;
        if fs::symlink_metadata(&shm).is_err() {
            self.ensure_dir("/dev/shm")?;
            fs::set_permissions(&shm, fs::Permissions::from_mode(0o1777))
                .map_err(err("make /dev/shm writable".into()))?;
        }
        for (source, target) in &spec.etc_binds {
            let inside = self.resolve(target)?;
            if fs::symlink_metadata(&inside).is_err() {
                self.ensure_parent(target)?;
                self.about_to_change(&inside);
                fs::copy(source, &inside).map_err(err(format!("copy {target} into the root")))?;
                self.undo.push(Undo::Remove(inside));
            }
        }
        for m in &spec.mounts {
            self.mount(m)?;
        }
        Ok(())
    }

    fn resolve(&self, path: &str) -> Result<PathBuf, SandboxError> {
        resolve_in_root(self.root, path).map_err(err(format!("resolve {path} in the step's root")))
    }

    /// Notes the directory `path` is about to be made or moved in, unless
    /// staging made that directory itself.
    fn about_to_change(&mut self, path: &Path) {
        if let Some(parent) = path.parent()
            && !self.made_dirs.contains(parent)
        {
            placeholders::note_before(&mut self.touched, self.root, parent);
        }
    }

    /// Makes `path` and its missing parents as directories.
    fn ensure_dir(&mut self, path: &str) -> Result<PathBuf, SandboxError> {
        let mut prefix = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            prefix.push('/');
            prefix.push_str(part);
            let here = self.resolve(&prefix)?;
            if fs::symlink_metadata(&here).is_ok() {
                continue;
            }
            self.about_to_change(&here);
            fs::create_dir(&here).map_err(err(format!("create {prefix} in the step's root")))?;
            let _ = fs::set_permissions(&here, fs::Permissions::from_mode(0o755));
            self.made_dirs.insert(here.clone());
            self.undo.push(Undo::Remove(here));
        }
        self.resolve(path)
    }

    fn ensure_parent(&mut self, path: &str) -> Result<PathBuf, SandboxError> {
        let parent = Path::new(path).parent().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        self.ensure_dir(&parent)
    }

    /// `/dev/NAME` as the host's device of that name, unless the image has
    /// one.
    fn device(&mut self, name: &str) -> Result<(), SandboxError> {
        let inside = self.resolve(&format!("/dev/{name}"))?;
        if fs::symlink_metadata(&inside).is_ok() {
            return Ok(());
        }
        let host = Path::new("/dev").join(name);
        let rdev = fs::metadata(&host).map_err(err(format!("read the host's {}", host.display())))?.rdev();
        let mode = Mode::from_bits_truncate(0o666);
        self.about_to_change(&inside);
        mknod(&inside, SFlag::S_IFCHR, mode, rdev).map_err(|e| {
            SandboxError::Setup(format!(
                "chroot isolation cannot make /dev/{name} in the step's root: mknod: {e}; it needs \
                 CAP_MKNOD (in Docker's and Kubernetes' default set: was it dropped, e.g. with \
                 --cap-drop=ALL? add --cap-add=MKNOD) and a store on a filesystem not mounted nodev"
            ))
        })?;
        // mknod applied the umask.
        fs::set_permissions(&inside, fs::Permissions::from_mode(0o666))
            .map_err(err(format!("set the mode of /dev/{name}")))?;
        self.undo.push(Undo::Remove(inside));
        Ok(())
    }

    /// Stages one RUN mount at its target.
    fn mount(&mut self, m: &ExtraMount) -> Result<(), SandboxError> {
        let (ExtraMount::Bind { target, .. }
        | ExtraMount::Tmpfs { target, .. }
        | ExtraMount::Layers { target, .. }) = m;
        self.ensure_parent(target)?;
        let inside = self.resolve(target)?;
        // The mount hides what the image has here and changes nothing
        // else: the parent keeps its times, as under a real mount.
        self.about_to_change(&inside);
        if fs::symlink_metadata(&inside).is_ok() {
            fs::create_dir_all(&self.aside_dir).map_err(err("create the step's aside dir".into()))?;
            let aside = self.aside_dir.join(self.undo.len().to_string());
            fs::rename(&inside, &aside).map_err(err(format!("move the image's {target} aside")))?;
            self.undo.push(Undo::PutBack { aside, original: inside.clone() });
        }
        self.undo.push(Undo::RemoveTree(inside.clone()));
        match m {
            ExtraMount::Bind { source, readonly, .. } => {
                copy_in(source, &inside, self.xattrs).map_err(|e| {
                    SandboxError::Setup(format!(
                        "copy {} to {target} in the step's root: {e}",
                        source.display()
                    ))
                })?;
                if !readonly {
                    self.undo.push(Undo::CopyBack { inside, source: source.clone() });
                }
            }
            ExtraMount::Tmpfs { .. } => {
                fs::create_dir(&inside).map_err(err(format!("create {target} in the step's root")))?;
                fs::set_permissions(&inside, fs::Permissions::from_mode(0o1777))
                    .map_err(err(format!("set the mode of {target}")))?;
            }
            ExtraMount::Layers { lowers, .. } => {
                fs::create_dir(&inside).map_err(err(format!("create {target} in the step's root")))?;
                let dirs = lowers.iter().map(|l| self.store_root.join(l)).collect();
                LayerStack::new(dirs, self.xattrs)
                    .export_dir(&inside)
                    .map_err(|e| SandboxError::Setup(format!("copy layers to {target}: {e}")))?;
            }
        }
        Ok(())
    }
}

/// Copies a host file or directory tree to `dest` (which must not exist),
/// keeping content, owners, modes, times, links and xattrs.
fn copy_in(source: &Path, dest: &Path, xattrs: OverlayXattrs) -> Result<(), String> {
    let meta = fs::metadata(source).map_err(|e| e.to_string())?;
    if meta.is_dir() {
        fs::create_dir(dest).map_err(|e| e.to_string())?;
        LayerStack::new(vec![source.to_path_buf()], xattrs).export_dir(dest).map_err(|e| e.to_string())?;
    } else {
        fs::copy(source, dest).map_err(|e| e.to_string())?;
    }
    // export_dir leaves `dest` itself as made: give it the source's owner and mode.
    std::os::unix::fs::lchown(dest, Some(meta.uid()), Some(meta.gid())).map_err(|e| e.to_string())?;
    fs::set_permissions(dest, fs::Permissions::from_mode(meta.mode() & 0o7777)).map_err(|e| e.to_string())
}

/// Replaces the cache directory (or file) `source` with what the step left
/// at `inside`: a fresh copy renamed into place, so a failure leaves the
/// old content whole.
fn copy_back(inside: &Path, source: &Path, xattrs: OverlayXattrs) -> Result<(), String> {
    if fs::symlink_metadata(inside).map(|m| m.is_symlink()).unwrap_or(true) {
        // The step removed the mount or put a link there: nothing to keep.
        return Ok(());
    }
    let suffix = rbuild_cache::store::unique_suffix();
    let fresh = source.with_extension(format!("copyback-{suffix}"));
    let old = source.with_extension(format!("old-{suffix}"));
    copy_in(inside, &fresh, xattrs)?;
    fs::rename(source, &old).map_err(|e| e.to_string())?;
    fs::rename(&fresh, source).map_err(|e| e.to_string())?;
    rbuild_cache::store::remove_tree(&old).map_err(|e| e.to_string())
}

fn remove_any(path: &Path) -> std::io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => rbuild_cache::store::remove_tree(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

impl Staged {
    /// The image's directories staging made or moved things in, with
    /// their times before and after.
    pub(super) fn touched(&self) -> &[TouchedParent] {
        &self.touched
    }

    /// Takes out everything staged, newest first; the first failure is the
    /// error, after everything else was tried.
    pub(super) fn undo(self) -> Result<(), SandboxError> {
        let xattrs = self.xattrs;
        let mut first: Option<String> = None;
        let mut note = |r: Result<(), String>| {
            if let Err(e) = r {
                first.get_or_insert(e);
            }
        };
        for step in self.undo.into_iter().rev() {
            match step {
                Undo::Remove(p) => note(match fs::symlink_metadata(&p) {
                    // A directory the step filled is the step's: keep it.
                    Ok(m) if m.is_dir() => {
                        let _ = fs::remove_dir(&p);
                        Ok(())
                    }
                    Ok(_) => fs::remove_file(&p).map_err(|e| format!("remove {}: {e}", p.display())),
                    Err(_) => Ok(()),
                }),
                Undo::RemoveTree(p) => {
                    note(remove_any(&p).map_err(|e| format!("remove {}: {e}", p.display())))
                }
                Undo::CopyBack { inside, source } => note(
                    copy_back(&inside, &source, xattrs)
                        .map_err(|e| format!("copy the cache mount back to {}: {e}", source.display())),
                ),
                Undo::PutBack { aside, original } => note(
                    fs::rename(&aside, &original)
                        .map_err(|e| format!("put the image's {} back: {e}", original.display())),
                ),
            }
        }
        match first {
            None => Ok(()),
            Some(e) => {
                Err(SandboxError::Setup(format!("could not take the step's mounts out of its root: {e}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Staging a root and undoing it leaves the image's tree as it was:
    //! content moved aside comes back, copies and devices go, a cache
    //! mount's changes reach its directory. Runs as root (mknod, chown).

    use std::os::unix::fs::FileTypeExt;

    use super::*;
    use crate::sandbox::spec::{NetMode, Process};

    fn spec(store_root: &Path, root: &Path, mounts: Vec<ExtraMount>) -> SandboxSpec {
        SandboxSpec {
            store_root: store_root.to_path_buf(),
            lowers: Vec::new(),
            empty_lower: root.to_path_buf(),
            upper: root.to_path_buf(),
            work: root.to_path_buf(),
            merged: root.to_path_buf(),
            prepared_root: Some(root.to_path_buf()),
            userxattr: false,
            process: Process {
                argv: vec!["true".into()],
                env: Vec::new(),
                cwd: "/".into(),
                uid: 0,
                gid: 0,
                groups: Vec::new(),
            },
            hostname: "rbuild".into(),
            network: NetMode::Shared,
            nat: None,
            etc_binds: Vec::new(),
            mounts,
            status_file: root.join("status"),
            seccomp_filter: None,
            unconfined: false,
            ulimits: Vec::new(),
            shm_size: None,
            chroot: None,
        }
    }

    #[test]
    fn undo_leaves_the_image_tree_as_it_was_and_copies_cache_changes_back() {
        rbuild_test_support::require!(rbuild_test_support::prereq::root());
        let base = tempfile::tempdir().unwrap();
        let (root, scratch, host) =
            (base.path().join("root"), base.path().join("scratch"), base.path().join("host"));
        for d in [&root, &scratch, &host, &root.join("dev"), &root.join("var/cache/apt")] {
            fs::create_dir_all(d).unwrap();
        }
        fs::write(root.join("var/cache/apt/image-file"), "the image's").unwrap();
        let secret = host.join("secret");
        fs::write(&secret, "s3cret").unwrap();
        let cache = host.join("cache");
        fs::create_dir(&cache).unwrap();
        fs::write(cache.join("old"), "from an earlier build").unwrap();
        let mounts = vec![
            ExtraMount::Bind { source: secret.clone(), target: "/run/secrets/tok".into(), readonly: true },
            ExtraMount::Bind { source: cache.clone(), target: "/var/cache/apt".into(), readonly: false },
            ExtraMount::Tmpfs { target: "/scratch".into(), size: None },
        ];
        let times_before = fs::metadata(root.join("var/cache")).unwrap().modified().unwrap();
        let staged = stage(&root, &scratch, &spec(base.path(), &root, mounts)).unwrap();

        assert_eq!(fs::read_to_string(root.join("run/secrets/tok")).unwrap(), "s3cret");
        assert!(!root.join("var/cache/apt/image-file").exists(), "the cache mount hides the image's files");
        assert_eq!(fs::read_to_string(root.join("var/cache/apt/old")).unwrap(), "from an earlier build");
        assert!(fs::symlink_metadata(root.join("dev/null")).unwrap().file_type().is_char_device());
        assert!(root.join("proc").is_dir() && root.join("scratch").is_dir());
        // What the step does.
        fs::write(root.join("var/cache/apt/new"), "this build's").unwrap();
        fs::write(root.join("scratch/tmp"), "gone after").unwrap();

        let put_back = placeholders::plan(&root, staged.touched());
        staged.undo().unwrap();
        let step_root =
            crate::snapshot::StepRoot { scratch: scratch.clone(), upper: root.clone(), mount: None };
        placeholders::put_back(&step_root, put_back);
        let mut left: Vec<String> = walk(&root);
        left.sort();
        assert_eq!(left, ["dev", "var", "var/cache", "var/cache/apt", "var/cache/apt/image-file"]);
        assert_eq!(fs::read_to_string(root.join("var/cache/apt/image-file")).unwrap(), "the image's");
        assert_eq!(fs::metadata(root.join("var/cache")).unwrap().modified().unwrap(), times_before);
        assert_eq!(fs::read_to_string(cache.join("new")).unwrap(), "this build's", "copied back");
        assert_eq!(fs::read_to_string(cache.join("old")).unwrap(), "from an earlier build");
        assert_eq!(fs::read_to_string(&secret).unwrap(), "s3cret");
    }

    fn walk(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
                if p.is_dir() && !p.is_symlink() {
                    stack.push(p);
                }
            }
        }
        out
    }
}
