//! Pieces of a build that `melange2 test` shares: finding the build file, local directories as
//! layers, accounts, the platform check and the source-date epoch from the environment.

use std::path::{Path, PathBuf};

use melange2_buildkit::Client;
use melange2_environment::{Group, User};
use melange2_llb::{CopyOptions, FileActions, LocalSource, OpOptions, Platform, State};
use sha2::{Digest, Sha256};

use crate::BuildError;

/// Find the build file as melange does when none is given.
pub fn find_config(given: Option<&Path>) -> Result<PathBuf, BuildError> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    for c in ["melange.yaml", ".melange.yaml"] {
        if Path::new(c).is_file() {
            return Ok(PathBuf::from(c));
        }
    }
    Err(BuildError::Input(
        "no build file given and no melange.yaml in the current directory".into(),
    ))
}

/// `$SOURCE_DATE_EPOCH`, or 0 when unset; a value that is not a number is an error.
pub fn source_date_epoch_env() -> Result<u64, BuildError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|_| {
            BuildError::Input(format!(
                "SOURCE_DATE_EPOCH={v:?} is not a number of seconds"
            ))
        }),
        _ => Ok(0),
    }
}

/// A short stable hash (16 hex digits) for local source names.
pub fn short_hash(s: &str) -> String {
    hex::encode(&Sha256::digest(s.as_bytes())[..8])
}

/// Patterns of `.melangeignore` (one per line, `#` comments).
pub fn melangeignore(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join(".melangeignore"))
        .map(|t| {
            t.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A local directory as a content-addressed layer (the copy's cache key follows its content).
pub fn local_layer(
    name: &str,
    unique: &str,
    exclude: Vec<String>,
    label: &str,
) -> Result<State, BuildError> {
    let src = LocalSource::new(name)
        .unique(format!("melange2:{unique}"))
        .shared_key_hint(name)
        .exclude(exclude)
        .options(OpOptions::named(format!("send {label}")))
        .build();
    Ok(State::scratch().file(
        FileActions::new().copy(
            &src,
            "/",
            "/",
            CopyOptions {
                contents_only: true,
                ..Default::default()
            },
        ),
        OpOptions::named(format!("copy {label}")),
    )?)
}

/// A source directory (checked, canonical) as a layer: its local source name, directory and
/// state; `.melangeignore` patterns are left out.
pub fn source_layer(dir: &Path, prefix: &str) -> Result<(String, PathBuf, State), BuildError> {
    if !dir.is_dir() {
        return Err(BuildError::Input(format!(
            "source directory {} does not exist",
            dir.display()
        )));
    }
    let abs = std::fs::canonicalize(dir)
        .map_err(|e| BuildError::Input(format!("{}: {e}", dir.display())))?;
    let name = format!("{prefix}-{}", short_hash(&abs.display().to_string()));
    let unique = abs.display().to_string();
    let state = local_layer(&name, &unique, melangeignore(&abs), "source directory")?;
    Ok((name, abs, state))
}

/// The accounts of a plan's environment for the environment's `/etc/passwd` and `/etc/group`.
pub fn accounts(a: &melange2_config::plan::Accounts) -> (Vec<User>, Vec<Group>) {
    let users = a
        .users
        .iter()
        .map(|u| User {
            username: u.username.clone(),
            uid: u.uid.unwrap_or(1000),
            gid: u.gid.or(u.uid).unwrap_or(1000),
            home: (!u.homedir.is_empty()).then(|| u.homedir.clone()),
            shell: (!u.shell.is_empty()).then(|| u.shell.clone()),
        })
        .collect();
    let groups = a
        .groups
        .iter()
        .map(|g| Group {
            groupname: g.groupname.clone(),
            gid: g.gid,
            members: g.members.clone(),
        })
        .collect();
    (users, groups)
}

/// Refuse architectures the daemon's workers cannot run, before anything runs, naming the
/// platforms it does support.
pub async fn check_platforms(client: &Client, archs: &[String]) -> Result<(), BuildError> {
    let workers = client.workers().await?;
    let platforms: Vec<Platform> = workers.iter().flat_map(|w| w.platforms.clone()).collect();
    for a in archs {
        let want = Platform::from_apk_arch(a)?;
        let ok = platforms.iter().any(|p| {
            p.os == want.os
                && p.architecture == want.architecture
                && (want.variant.is_empty() || p.variant == want.variant)
        });
        if !ok {
            let list: Vec<String> = platforms.iter().map(|p| p.to_string()).collect();
            return Err(BuildError::Platform(format!(
                "the daemon at {} cannot run {a} ({want}); it supports {}. Build on a native \
                 worker or register QEMU binfmt handlers on the daemon's host",
                client.daemon().address,
                list.join(", ")
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use melange2_buildkit::CacheOption;

    use crate::recipe_cache;

    #[test]
    fn each_recipe_and_arch_gets_its_own_cache_tag() {
        let c = CacheOption::parse_export(
            "type=registry,ref=127.0.0.1:5000/cache:main,mode=max,registry.insecure=true",
        )
        .unwrap();
        let r = recipe_cache(&c, "hello", "x86_64");
        assert_eq!(
            r.reference(),
            Some("127.0.0.1:5000/cache:main-hello-x86_64")
        );
        assert_eq!(r.attrs.get("mode").map(String::as_str), Some("max"));
        let untagged = CacheOption::parse_export("type=registry,ref=reg.test/c").unwrap();
        assert_eq!(
            recipe_cache(&untagged, "a+b", "aarch64").reference(),
            Some("reg.test/c:melange2-a-b-aarch64")
        );
    }
}
