//! Conformance with BuildKit's `exclude_patterns_test.go`: `COPY` and
//! `ADD --exclude` with directory and wildcard sources, links kept as
//! links, and a destination that ends up empty. (Its second half reads the
//! same tree from a git repository, which rbuild cannot fetch.)

use std::fs;
use std::os::unix::fs::symlink;

use crate::harness::*;

#[test]
fn excluded_files_on_copy() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let files = [
        ("dir1/file-101.png", "2"),
        ("dir1/file-102.txt", "3"),
        ("dir1/file-103.jpeg", "4"),
        ("dir2/file-201.pdf", "6"),
        ("dir2/file-202.jpeg", "7"),
        ("dir2/file-203.png", "8"),
        ("dir3/file-301.mp3", "9"),
        ("dir3/file-302.mpeg", "10"),
        ("dir4/file-401.txt", "11"),
    ];
    let dockerfile = "FROM scratch AS builder1\nCOPY --exclude=*/*.png --exclude=*/*.jpeg . /1\n\
FROM scratch AS builder2\nCOPY --exclude=*/*.pdf --exclude=*/*.txt . /2\n\
FROM scratch AS builder3\nADD --exclude=*.mp3 dir3/ /3/\n\
FROM scratch AS builder4\nCOPY --exclude=*.mp3 --exclude=*.jpeg --exclude=*.png --exclude=*.pdf --exclude=*.txt dir* /4/\n\
FROM scratch AS builder5\nADD --exclude=*.mp* --exclude=*.jpeg --exclude=*.png --exclude=*.pdf dir* /5\n\
FROM scratch AS builder6\nADD --exclude=* dir* /6\n\
FROM scratch\n\
COPY --from=builder1 / /builder1\nCOPY --from=builder2 / /builder2\nCOPY --from=builder3 / /builder3\n\
COPY --from=builder4 / /builder4\nCOPY --from=builder5 / /builder5\nCOPY --from=builder6 / /builder6\n";
    // The Dockerfile lives outside the context, as in BuildKit's test, so
    // `COPY .` copies only the four directories.
    let ctx = env.context("ctx", &files);
    symlink("file-401.txt", ctx.join("dir4/file-402.txt")).unwrap();
    symlink("file-404.txt", ctx.join("dir4/file-403.txt")).unwrap();
    let df = env.context("df", &[("Dockerfile", dockerfile)]).join("Dockerfile");
    let (_, out) = build_local(&env, "ctx", &["-f", df.to_str().unwrap()]);

    let kept: &[(&str, &str)] = &[
        ("builder1/1/dir1/file-102.txt", "3"),
        ("builder1/1/dir2/file-201.pdf", "6"),
        ("builder1/1/dir3/file-301.mp3", "9"),
        ("builder1/1/dir3/file-302.mpeg", "10"),
        ("builder1/1/dir4/file-401.txt", "11"),
        ("builder1/1/dir4/file-402.txt", "->file-401.txt"),
        ("builder1/1/dir4/file-403.txt", "->file-404.txt"),
        ("builder2/2/dir1/file-101.png", "2"),
        ("builder2/2/dir1/file-103.jpeg", "4"),
        ("builder2/2/dir2/file-202.jpeg", "7"),
        ("builder2/2/dir2/file-203.png", "8"),
        ("builder2/2/dir3/file-301.mp3", "9"),
        ("builder2/2/dir3/file-302.mpeg", "10"),
        ("builder3/3/file-302.mpeg", "10"),
        ("builder4/4/file-302.mpeg", "10"),
        ("builder5/5/file-102.txt", "3"),
        ("builder5/5/file-401.txt", "11"),
        ("builder5/5/file-402.txt", "->file-401.txt"),
        ("builder5/5/file-403.txt", "->file-404.txt"),
    ];
    for (path, want) in kept {
        let p = out.join(path);
        let got = match fs::read_link(&p) {
            Ok(target) => format!("->{}", target.display()),
            Err(_) => fs::read_to_string(&p).unwrap_or_else(|e| panic!("{path} should be copied: {e}")),
        };
        assert_eq!(&got, want, "{path}");
    }
    let files_in = |dir: &str| -> Vec<String> {
        files_under(&out.join(dir))
            .into_iter()
            .filter(|p| !fs::metadata(out.join(dir).join(p)).is_ok_and(|m| m.is_dir()))
            .collect()
    };
    for (dir, count) in
        [("builder1/1", 7), ("builder2/2", 6), ("builder3/3", 1), ("builder4/4", 1), ("builder5/5", 4)]
    {
        let got = files_in(dir);
        assert_eq!(got.len(), count, "{dir} holds only what no pattern excludes: {got:?}");
    }
    assert!(files_under(&out.join("builder6/6")).is_empty(), "everything excluded: an empty directory");
}
