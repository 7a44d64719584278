//! Image reference parsing, normalisation and printing, checked against what
//! `docker pull`, `docker tag` and `docker images` do with the same strings.

use rbuild_oci::digest::Digest;
use rbuild_oci::reference::{Reference, ReferenceErrorReason, matches_reference_filter};

const HEX: &str = "7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa";

/// (input, registry, repository, tag, familiar form)
type ValidCase = (&'static str, &'static str, &'static str, Option<&'static str>, &'static str);

const VALID: &[ValidCase] = &[
    ("busybox", "docker.io", "library/busybox", Some("latest"), "busybox:latest"),
    ("busybox:1.36", "docker.io", "library/busybox", Some("1.36"), "busybox:1.36"),
    ("library/busybox", "docker.io", "library/busybox", Some("latest"), "busybox:latest"),
    ("docker.io/busybox", "docker.io", "library/busybox", Some("latest"), "busybox:latest"),
    ("docker.io/library/busybox:glibc", "docker.io", "library/busybox", Some("glibc"), "busybox:glibc"),
    ("index.docker.io/busybox", "docker.io", "library/busybox", Some("latest"), "busybox:latest"),
    ("index.docker.io/user/app:tag", "docker.io", "user/app", Some("tag"), "user/app:tag"),
    ("user/app:tag", "docker.io", "user/app", Some("tag"), "user/app:tag"),
    ("user/team/app", "docker.io", "user/team/app", Some("latest"), "user/team/app:latest"),
    ("library/a/b", "docker.io", "library/a/b", Some("latest"), "library/a/b:latest"),
    ("myreg:5000/app:v1", "myreg:5000", "app", Some("v1"), "myreg:5000/app:v1"),
    ("myreg:5000/app", "myreg:5000", "app", Some("latest"), "myreg:5000/app:latest"),
    ("localhost/app", "localhost", "app", Some("latest"), "localhost/app:latest"),
    ("localhost:5000/ns/app:dev", "localhost:5000", "ns/app", Some("dev"), "localhost:5000/ns/app:dev"),
    ("ghcr.io/owner/repo:sha-abc", "ghcr.io", "owner/repo", Some("sha-abc"), "ghcr.io/owner/repo:sha-abc"),
    ("quay.io/app", "quay.io", "app", Some("latest"), "quay.io/app:latest"),
    ("127.0.0.1:5000/app", "127.0.0.1:5000", "app", Some("latest"), "127.0.0.1:5000/app:latest"),
    ("[::1]:5000/x", "[::1]:5000", "x", Some("latest"), "[::1]:5000/x:latest"),
    (
        "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
        "[fc00:1:2:3:4:5:6:7]:5000",
        "library/debian",
        Some("latest"),
        "[fc00:1:2:3:4:5:6:7]:5000/library/debian:latest",
    ),
    ("[fc00::1]/app", "[fc00::1]", "app", Some("latest"), "[fc00::1]/app:latest"),
    // An upper-case first component cannot be a path, so it is a registry.
    ("LOCALDOMAIN/debian", "LOCALDOMAIN", "debian", Some("latest"), "LOCALDOMAIN/debian:latest"),
    // Tags may contain upper case, dots and dashes; 128 characters is the limit.
    ("busybox:Latest_1.0-rc", "docker.io", "library/busybox", Some("Latest_1.0-rc"), "busybox:Latest_1.0-rc"),
    ("busybox:_x", "docker.io", "library/busybox", Some("_x"), "busybox:_x"),
    // Separators inside path components.
    ("a-b--c/d_e__f.g", "docker.io", "a-b--c/d_e__f.g", Some("latest"), "a-b--c/d_e__f.g:latest"),
    ("d/docker", "docker.io", "d/docker", Some("latest"), "d/docker:latest"),
    // A single component is always a Docker Hub name, even with a dot or a number.
    ("192.168.0.1", "docker.io", "library/192.168.0.1", Some("latest"), "192.168.0.1:latest"),
    ("192.168.0.1:80", "docker.io", "library/192.168.0.1", Some("80"), "192.168.0.1:80"),
    ("localhost:5000", "docker.io", "library/localhost", Some("5000"), "localhost:5000"),
    // Punycode hosts and tags that look like hosts.
    (
        "xn--n3h.com/myimage:xn--n3h.com",
        "xn--n3h.com",
        "myimage",
        Some("xn--n3h.com"),
        "xn--n3h.com/myimage:xn--n3h.com",
    ),
    // The image ID rule only applies to a bare 64-hex string.
    (
        "docker.io/7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa",
        "docker.io",
        "library/7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa",
        Some("latest"),
        "7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa:latest",
    ),
];

#[test]
fn valid_references_normalise_like_docker() {
    for &(input, registry, repository, tag, familiar) in VALID {
        let r = Reference::parse(input).unwrap_or_else(|err| panic!("{input:?}: {err}"));
        assert_eq!(r.registry, registry, "{input:?}");
        assert_eq!(r.repository, repository, "{input:?}");
        assert_eq!(r.tag.as_deref(), tag, "{input:?}");
        assert_eq!(r.digest, None, "{input:?}");
        assert_eq!(r.familiar(), familiar, "{input:?}");
        assert_eq!(r.to_string(), familiar, "{input:?}");
        // The canonical form parses back to the same reference.
        assert_eq!(Reference::parse(&r.canonical()).unwrap(), r, "{input:?}");
        assert_eq!(Reference::parse(&r.familiar()).unwrap(), r, "{input:?}");
    }
}

#[test]
fn digests_with_and_without_tags() {
    let digest = Digest::parse(&format!("sha256:{HEX}")).unwrap();

    let only_digest = Reference::parse(&format!("busybox@sha256:{HEX}")).unwrap();
    assert_eq!(only_digest.tag, None, "no default tag next to a digest");
    assert_eq!(only_digest.digest, Some(digest));
    assert_eq!(only_digest.familiar(), format!("busybox@sha256:{HEX}"));
    assert_eq!(only_digest.canonical(), format!("docker.io/library/busybox@sha256:{HEX}"));

    let both = Reference::parse(&format!("myreg:5000/app:v1@sha256:{HEX}")).unwrap();
    assert_eq!(both.tag.as_deref(), Some("v1"));
    assert_eq!(both.digest, Some(digest));
    assert_eq!(both.familiar(), format!("myreg:5000/app:v1@sha256:{HEX}"));

    // Docker reads `sha256:<hex>` alone as the image `library/sha256` with a
    // 64-character tag; it is only an ID when given to `docker inspect`.
    let odd = Reference::parse(&format!("sha256:{HEX}")).unwrap();
    assert_eq!(odd.repository, "library/sha256");
    assert_eq!(odd.tag.as_deref(), Some(HEX));
}

#[test]
fn accessors_and_forms() {
    let r = Reference::parse("busybox").unwrap();
    assert_eq!(r.name(), "docker.io/library/busybox");
    assert_eq!(r.familiar_name(), "busybox");
    assert_eq!(r.canonical(), "docker.io/library/busybox:latest");
    assert_eq!(r.familiar(), "busybox:latest");

    let r = Reference::parse("user/app:tag").unwrap();
    assert_eq!(r.familiar_name(), "user/app");
    assert_eq!(r.canonical(), "docker.io/user/app:tag");

    let r: Reference = "myreg:5000/app:v1".parse().unwrap();
    assert_eq!(r.name(), "myreg:5000/app");
    assert_eq!(r.familiar_name(), "myreg:5000/app");

    let untagged = Reference::parse_without_default_tag("busybox").unwrap();
    assert_eq!(untagged.tag, None);
    assert_eq!(untagged.familiar(), "busybox");
}

#[test]
fn localhost_registries() {
    for (input, local) in [
        ("localhost/app", true),
        ("localhost:5000/app", true),
        ("127.0.0.1/app", true),
        ("127.0.0.1:5000/app", true),
        ("127.10.20.30:80/app", true),
        ("[::1]/app", true),
        ("[::1]:5000/x", true),
        ("[0:0:0:0:0:0:0:1]:5000/x", true),
        ("LOCALHOST/app", true),
        ("busybox", false),
        ("localhost", false), // a Docker Hub image called `localhost`
        ("128.0.0.1:5000/app", false),
        ("[fc00::1]:5000/app", false),
        ("myreg:5000/app", false),
        ("localhost.example.com/app", false),
    ] {
        assert_eq!(Reference::parse(input).unwrap().is_localhost(), local, "{input:?}");
    }
}

/// (input, expected reason)
fn invalid_cases() -> Vec<(String, ReferenceErrorReason)> {
    use ReferenceErrorReason::*;
    let long_tag = "t".repeat(129);
    let long_path = format!("ns/{}", "a".repeat(253));
    vec![
        ("".into(), Empty),
        ("UPPER:tag".into(), Uppercase),
        ("Uppercase".into(), Uppercase),
        ("docker/Docker".into(), Uppercase),
        ("test:5000/Uppercase/lowercase:tag".into(), Uppercase),
        ("docker.io/docker/Docker".into(), Uppercase),
        (":tag".into(), MissingName),
        (format!("@sha256:{HEX}"), MissingName),
        ("myreg:5000/".into(), MissingName),
        ("a//b".into(), EmptyComponent),
        ("docker///docker".into(), EmptyComponent),
        ("docker/".into(), EmptyComponent),
        ("/busybox".into(), EmptyComponent),
        ("-docker".into(), InvalidComponent("-docker".into())),
        ("-docker/docker".into(), InvalidComponent("-docker".into())),
        ("docker-/docker".into(), InvalidComponent("docker-".into())),
        ("____/____".into(), InvalidComponent("____".into())),
        ("_docker/_docker".into(), InvalidComponent("_docker".into())),
        ("dock..er/docker".into(), InvalidRegistry("dock..er".into())), // has a dot: read as a host
        ("dock..er/docker".into(), InvalidRegistry("dock..er".into())), // has a dot: read as a host
        ("dock___er/docker".into(), InvalidComponent("dock___er".into())),
        ("aa/asdf$$^/aa".into(), InvalidComponent("asdf$$^".into())),
        ("https://github.com/docker/docker".into(), InvalidRegistry("https:".into())),
        ("-docker.io/docker/docker".into(), InvalidRegistry("-docker.io".into())),
        ("fc00::1:5000/debian".into(), InvalidRegistry("fc00::1:5000".into())),
        ("[fe80::1%eth0]:5000/debian".into(), InvalidRegistry("[fe80::1%eth0]:5000".into())),
        (
            "[2001:db8:3:4::192.0.2.33]:5000/debian".into(),
            InvalidRegistry("[2001:db8:3:4::192.0.2.33]:5000".into()),
        ),
        ("myreg:port/app".into(), InvalidRegistry("myreg:port".into())),
        ("myreg:/app".into(), InvalidRegistry("myreg:".into())),
        (format!("busybox:{long_tag}"), InvalidTag(long_tag.clone())),
        ("busybox:".into(), InvalidTag(String::new())),
        ("busybox:.hidden".into(), InvalidTag(".hidden".into())),
        ("busybox:-x".into(), InvalidTag("-x".into())),
        ("busybox:a:b".into(), InvalidTag("a:b".into())),
        ("busybox:a+b".into(), InvalidTag("a+b".into())),
        ("busybox@sha256:short".into(), InvalidDigest("sha256:short".into())),
        (
            "busybox@sha256:ffffffffffffffffffffffffffffffffff".into(),
            InvalidSha256("sha256:ffffffffffffffffffffffffffffffffff".into()),
        ),
        (
            format!("busybox@sha256:{}", HEX.to_uppercase()),
            InvalidSha256(format!("sha256:{}", HEX.to_uppercase())),
        ),
        (format!("busybox@sha512:{HEX}{HEX}"), UnsupportedDigestAlgorithm("sha512".into())),
        (format!("busybox@{HEX}"), InvalidDigest(HEX.into())),
        (long_path.clone(), NameTooLong),
        (format!("myreg.example.com/{}", long_path), NameTooLong),
        (HEX.into(), HexIdentifier),
    ]
}

#[test]
fn invalid_references_say_what_is_wrong() {
    let cases = invalid_cases();
    for (input, reason) in &cases {
        let err = Reference::parse(input).expect_err(input);
        assert_eq!(&err.reason, reason, "{input:?}");
        assert_eq!(&err.input, input);
        assert!(err.to_string().starts_with("invalid reference format: "), "{err}");
    }
    assert!(VALID.len() + cases.len() >= 40);
    let err = Reference::parse("UPPER:tag").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid reference format: repository name must be lowercase (in \"UPPER:tag\")"
    );
}

#[test]
fn length_limits_are_inclusive() {
    assert!(Reference::parse(&format!("busybox:{}", "t".repeat(128))).is_ok());
    // 255 characters of repository path, counting `library/` but not the registry.
    let path = format!("ns/{}", "a".repeat(252));
    assert_eq!(path.len(), 255);
    assert!(Reference::parse(&path).is_ok());
    assert!(Reference::parse(&format!("a-very-long-registry-name.example.com:5000/{path}")).is_ok());
    let official = "a".repeat(247);
    assert!(Reference::parse(&official).is_ok());
    assert_eq!(
        Reference::parse(&format!("{official}a")).unwrap_err().reason,
        ReferenceErrorReason::NameTooLong
    );
}

#[test]
fn docker_images_reference_filter() {
    let busybox = Reference::parse("busybox:latest").unwrap();
    let user_app = Reference::parse("user/app:v1").unwrap();
    let private = Reference::parse("myreg:5000/team/app:v2").unwrap();
    let pinned = Reference::parse(&format!("alpine@sha256:{HEX}")).unwrap();

    for (pattern, r, expected) in [
        ("busybox", &busybox, true),
        ("busybox:latest", &busybox, true),
        ("busybox:*", &busybox, true),
        ("busy*", &busybox, true),
        ("*", &busybox, true),
        ("*:latest", &busybox, true),
        ("busybox:1*", &busybox, false),
        ("library/busybox", &busybox, false), // matched against the familiar name
        ("docker.io/library/busybox", &busybox, false),
        ("*", &user_app, false), // `*` does not cross `/`
        ("*/*", &user_app, true),
        ("*/app", &user_app, true),
        ("user/app:v?", &user_app, true),
        ("user/app:v[0-9]", &user_app, true),
        ("user/app:v[^0-9]", &user_app, false),
        ("*/app", &private, false),
        ("myreg:5000/*/*", &private, true),
        ("myreg:5000/team/app:v2", &private, true),
        ("alpine", &pinned, true),
        ("alpine@sha256:*", &pinned, true),
        ("alpine:*", &pinned, false),
        ("[", &busybox, false), // malformed patterns match nothing
    ] {
        assert_eq!(matches_reference_filter(pattern, r), expected, "{pattern:?} vs {r}");
    }
}

/// Found by the `reference` fuzz target: the short form of a Docker Hub
/// repository whose first component looks like a host must keep the
/// registry, or it would name another image.
#[test]
fn familiar_form_keeps_docker_io_before_host_like_namespaces() {
    for input in ["docker.io/l.i/b", "docker.io/localhost/app", "index.docker.io/my.org/app:v1"] {
        let r = Reference::parse(input).unwrap();
        let back = Reference::parse(&r.familiar()).unwrap();
        assert_eq!(back, r, "{input} -> {}", r.familiar());
    }
    assert_eq!(Reference::parse("docker.io/l.i/b").unwrap().familiar(), "docker.io/l.i/b:latest");
    assert_eq!(Reference::parse("user/app").unwrap().familiar(), "user/app:latest");
}
