//! Resolution table: versions, virtuals, priorities, pins, conflicts,
//! missing providers, cycles, install_if and architectures, against signed
//! repositories built by the tests (see `fixture/`).

mod common;
mod fixture;

use melange2_resolve::{Options, Repositories};

enum Expect {
    /// Install order as `name-version`, optionally `name-version[repo]`
    /// (repo = last path component of the repository it came from).
    Order(&'static [&'static str]),
    /// Every substring must appear in the error message.
    Err(&'static [&'static str]),
}
use Expect::{Err as E, Order as O};

struct Case {
    name: &'static str,
    arch: &'static str,
    request: &'static str,
    expect: Expect,
}

const fn c(name: &'static str, request: &'static str, expect: Expect) -> Case {
    Case {
        name,
        arch: "x86_64",
        request,
        expect,
    }
}

const CASES: &[Case] = &[
    c("single package", "make", O(&["make-4.4.1-r0"])),
    c(
        "dependency tree in install order",
        "build-base",
        O(&[
            "glibc-2.39-r0",
            "busybox-1.36.1-r0",
            "isl-0.26-r1",
            "make-4.4.1-r0",
            "zlib-1.3.1-r0",
            "binutils-2.42-r0",
            "gcc-13.2.0-r0",
            "build-base-1-r7",
        ]),
    ),
    c(
        "missing so: provider shows the chain",
        "broken-base",
        E(&["broken-base → broken-gcc → so:libisl.so.99: no provider"]),
    ),
    c(
        "highest version wins (final over rc, pinned ignored)",
        "foo",
        O(&["foo-2.0-r0"]),
    ),
    c("= exact", "foo=1.2-r0", O(&["foo-1.2-r0"])),
    c(">= picks the highest", "foo>=1.2", O(&["foo-2.0-r0"])),
    c(
        "< 2 excludes 2.0_rc1 (apk ordering)",
        "foo<2",
        O(&["foo-1.2.5-r0"]),
    ),
    c("< 2.0 admits 2.0_rc1", "foo<2.0", O(&["foo-2.0_rc1-r0"])),
    c("~ fuzzy", "foo~1.2", O(&["foo-1.2.5-r0"])),
    c("=~ fuzzy", "foo=~1.0", O(&["foo-1.0-r0"])),
    c("<= inclusive", "foo<=1.2-r0", O(&["foo-1.2-r0"])),
    c(
        "> beyond every unpinned version",
        "foo>2.0-r0",
        E(&[
            "foo>2.0-r0: no suitable provider",
            "foo-3.0-r0 (only in repository pinned @local; request foo@local)",
        ]),
    ),
    c(
        "name@tag prefers the pinned repository",
        "foo@local",
        O(&["foo-3.0-r0[local]"]),
    ),
    c(
        "pin after the version",
        "foo>=3@local",
        O(&["foo-3.0-r0[local]"]),
    ),
    c(
        "pinned request still accepts untagged packages",
        "foo@local<3",
        O(&["foo-2.0-r0[main]"]),
    ),
    c(
        "pin propagates to dependencies",
        "localonly@local",
        O(&["localdep-1-r0[local]", "localonly-1-r0[local]"]),
    ),
    c(
        "pinned-only package needs the tag",
        "localonly",
        E(&[
            "localonly: no suitable provider: localonly-1-r0 (only in repository pinned @local; request localonly@local)",
        ]),
    ),
    c(
        "pinned request and an unpinned one",
        "localonly@local foo",
        O(&["foo-2.0-r0[main]", "localdep-1-r0", "localonly-1-r0"]),
    ),
    c(
        "virtual: provider_priority decides",
        "py3-bar",
        O(&["py3.12-bar-1.0-r0"]),
    ),
    c(
        "virtual already provided by a requested package",
        "py3.11-bar py3-bar",
        O(&["py3.11-bar-1.0-r0"]),
    ),
    c(
        "versioned dependency cannot use a virtual provide",
        "wants-bar",
        E(&[
            "wants-bar → py3-bar>=1: no suitable provider",
            "py3.11-bar-1.0-r0 (provides py3-bar without a version)",
        ]),
    ),
    c("virtual: higher priority", "shell", O(&["sh-b-1-r0"])),
    c("package with a conflict alone", "lib-a", O(&["lib-a-1-r0"])),
    c(
        "!conflict in a dependency list",
        "lib-a lib-b",
        E(&["lib-b: no suitable provider: lib-b-1-r0 (conflicts with lib-a-1-r0 (!lib-b))"]),
    ),
    c(
        "cmd: provide: highest provided version",
        "cmd:sh",
        O(&["glibc-2.39-r0", "bash-5.2.21-r0"]),
    ),
    c(
        "!name in the request",
        "cmd:sh !bash",
        O(&["glibc-2.39-r0", "busybox-1.36.1-r0"]),
    ),
    c(
        "two packages owning one versioned provide conflict",
        "busybox bash",
        E(&[
            "busybox: no suitable provider: busybox-1.36.1-r0 (bash-5.2.21-r0 is selected and also provides cmd:sh)",
        ]),
    ),
    c(
        "same version in two repositories: first configured wins",
        "dup",
        O(&["dup-1.0-r0[main]"]),
    ),
    c(
        "higher version in a later repository wins",
        "other",
        O(&["other-2.0-r0[third]"]),
    ),
    c(
        "cycle installed together, ordered by name",
        "cyc-top",
        O(&["cyc-a-1-r0", "cyc-b-1-r0", "make-4.4.1-r0", "cyc-top-1-r0"]),
    ),
    c(
        "cycle reached from inside",
        "cyc-b",
        O(&["cyc-a-1-r0", "cyc-b-1-r0"]),
    ),
    c(
        "same origin at the same version preferred",
        "ofoo=1.0-r0 ofoo-lib",
        O(&["ofoo-1.0-r0", "ofoo-lib-1.0-r0"]),
    ),
    c(
        "origin rule only applies when selected",
        "ofoo-lib",
        O(&["ofoo-lib-1.1-r0"]),
    ),
    c(
        "install_if: all conditions met",
        "bash completion-base",
        O(&[
            "bash-completion-1-r0",
            "completion-base-1-r0",
            "glibc-2.39-r0",
            "bash-5.2.21-r0",
        ]),
    ),
    c(
        "install_if: condition not met",
        "bash",
        O(&["glibc-2.39-r0", "bash-5.2.21-r0"]),
    ),
    c(
        "install_if with an exact version",
        "glibc=2.38-r5",
        O(&["glibc-2.38-r5", "lang-pack-1-r0"]),
    ),
    c(
        "noarch package in the arch index",
        "docs-common",
        O(&["docs-common-1-r0"]),
    ),
    c(
        "record of another arch in the index is ignored",
        "misplaced",
        E(&["misplaced: no provider"]),
    ),
    Case {
        name: "aarch64 index",
        arch: "aarch64",
        request: "armonly make",
        expect: O(&["armonly-1-r0", "make-4.4.1-r0"]),
    },
    Case {
        name: "Go arch name",
        arch: "arm64",
        request: "armonly",
        expect: O(&["armonly-1-r0"]),
    },
    c(
        "package of another arch only",
        "armonly",
        E(&["armonly: no provider"]),
    ),
    c(
        "package providing its own dependency",
        "selfy",
        O(&["selfy-1-r0"]),
    ),
    c(
        "so: versions compare below package versions",
        "needs-crypto",
        O(&["libcrypto3-3.3.0-r0", "needs-crypto-1-r0"]),
    ),
    c(
        "so: version too low",
        "needs-crypto4",
        E(&[
            "needs-crypto4 → so:libcrypto.so.3>=4: no suitable provider: libcrypto3-3.3.0-r0 (provides so:libcrypto.so.3=3)",
        ]),
    ),
    c(
        "versioned provides of one name conflict",
        "mta-a mta-b",
        E(&[
            "mta-b: no suitable provider: mta-b-1-r0 (mta-a-1-r0 is selected and also provides mta)",
        ]),
    ),
    c(
        "versioned provide: highest version",
        "mta",
        O(&["mta-b-1-r0"]),
    ),
    c(
        "request pins a version a dependency cannot use",
        "zlib=1.2.13-r2 zlib-dev",
        E(&[
            "zlib-dev → zlib=1.3.1-r0: no suitable provider",
            "zlib-1.3.1-r0 (the request requires zlib=1.2.13-r2)",
        ]),
    ),
    c("empty request", "", O(&[])),
    c("unknown name", "nosuch", E(&["nosuch: no provider"])),
    c(
        "malformed constraint",
        "foo>>1",
        E(&["request: dependency \"foo>>1\": unknown operator \">>\""]),
    ),
    c(
        "request conflict breaks a dependency",
        "!glibc busybox",
        E(&[
            "busybox → so:libc.so.6: no suitable provider: ",
            "glibc-2.39-r0 (conflicts with the request (!glibc))",
        ]),
    ),
    c(
        "conflict on a provided name",
        "anti-bash bash",
        E(&[
            "bash: no suitable provider: bash-5.2.21-r0 (conflicts with anti-bash-1-r0 (!cmd:bash))",
        ]),
    ),
    c(
        "replaces does not conflict",
        "coreutils busybox",
        O(&["coreutils-9.4-r0", "glibc-2.39-r0", "busybox-1.36.1-r0"]),
    ),
    c(
        "constraints intersect",
        "foo foo>=1.2.5 foo<2.0",
        O(&["foo-2.0_rc1-r0"]),
    ),
    c(
        "so: constraint",
        "so:libz.so.1>=1.3",
        O(&["glibc-2.39-r0", "zlib-1.3.1-r0"]),
    ),
    c(
        "pc: constraint",
        "pc:zlib<1.3",
        O(&["glibc-2.39-r0", "zlib-1.2.13-r2"]),
    ),
];

fn load(arch: &str, cache: &std::path::Path) -> Repositories {
    let f = fixture::shared();
    let repositories = if melange2_resolve::normalize_arch(arch).unwrap() == "x86_64" {
        f.repositories()
    } else {
        vec![f.main().display().to_string()]
    };
    let opts = Options {
        arch: arch.to_string(),
        repositories,
        keyring: vec![f.key().display().to_string()],
        cache_dir: Some(cache.to_path_buf()),
        ..Options::default()
    };
    common::rt().block_on(Repositories::load(&opts)).unwrap()
}

fn repo_label(spec: &str) -> String {
    spec.rsplit('/').next().unwrap_or(spec).to_string()
}

#[test]
fn resolution_table() {
    common::init_logging();
    let cache = tempfile::tempdir().unwrap();
    let mut loaded = std::collections::BTreeMap::new();
    let mut failures = Vec::new();
    assert!(CASES.len() >= 30);
    for case in CASES {
        let repos = loaded
            .entry(case.arch)
            .or_insert_with(|| load(case.arch, cache.path()));
        let request: Vec<&str> = case.request.split_whitespace().collect();
        let got = repos.lock(&request);
        match (&case.expect, got) {
            (Expect::Order(want), Ok(lock)) => {
                let actual: Vec<String> = lock
                    .packages
                    .iter()
                    .zip(want.iter().chain(std::iter::repeat(&"")))
                    .map(|(p, w)| {
                        let base = format!("{}-{}", p.name, p.version);
                        if w.contains('[') {
                            format!("{base}[{}]", repo_label(&p.repository))
                        } else {
                            base
                        }
                    })
                    .collect();
                if actual != *want {
                    failures.push(format!(
                        "{}: {:?}: got {actual:?}, want {want:?}",
                        case.name, case.request
                    ));
                }
                // determinism: same lock for the reversed request, and twice
                let mut rev = request.clone();
                rev.reverse();
                if repos.lock(&rev).ok().as_ref() != Some(&lock)
                    || repos.lock(&request).ok() != Some(lock)
                {
                    failures.push(format!("{}: not deterministic", case.name));
                }
            }
            (Expect::Order(want), Err(e)) => failures.push(format!(
                "{}: {:?}: error {e}, want {want:?}",
                case.name, case.request
            )),
            (Expect::Err(parts), Ok(lock)) => failures.push(format!(
                "{}: {:?}: resolved to {:?}, want error {parts:?}",
                case.name,
                case.request,
                lock.packages
                    .iter()
                    .map(|p| format!("{}-{}", p.name, p.version))
                    .collect::<Vec<_>>()
            )),
            (Expect::Err(parts), Err(e)) => {
                let msg = e.to_string();
                for part in *parts {
                    if !msg.contains(part) {
                        failures.push(format!("{}: error {msg:?} lacks {part:?}", case.name));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}
