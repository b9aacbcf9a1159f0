//! APK v2 packages and repositories for melange2.
//!
//! Contract: byte-level compatibility with apk-tools and apko (spec parts C
//! and D), reproducible output (same input → same bytes, whatever the
//! number of threads), bounded memory for large trees, and hostile input
//! producing errors — never panics or writes outside a target directory.
//!
//! Main entry points:
//! * Writing: [`PackageTree`] (from a directory, a tar stream, or code) +
//!   [`PkgInfo`] + [`ControlFiles`] → [`write_package`] →
//!   [`WrittenPackage`] (its [`WrittenPackage::index_entry`] feeds the index
//!   without re-reading the file).
//! * Reading/verifying: [`PackageReader`] (streaming), [`read_package`],
//!   [`verify_package`] (signature + datahash + per-file SHA-1 + optional
//!   index checksum).
//! * Indexes: [`ApkIndex`], [`IndexEntry`], [`read_index`],
//!   [`index_packages`], [`sign_index_file`].
//! * Keys: [`generate_key`], [`generate_key_files`], [`SigningKey`],
//!   [`Keyring`].
//! * Versions: [`version::compare`], [`version::fuzzy_match`],
//!   [`version::Version`].
//! * Installed db: [`render_installed_entry`].
//! * Fixtures: [`RepoBuilder`].

pub mod error;
pub mod gzip;
pub mod index;
pub mod installed;
pub mod keys;
pub mod pkginfo;
pub mod reader;
pub mod repo;
pub mod tar;
pub mod tree;
pub mod version;
pub mod writer;

pub use error::{Error, Result};
pub use gzip::{DEFAULT_BLOCK_SIZE, GzOptions};
pub use index::{
    ApkIndex, IndexEntry, IndexSignatures, index_packages, parse_index_text,
    parse_index_text_with_notes, read_index, sign_index_file,
};
pub use installed::{InstalledFile, render_installed_entry, render_installed_entry_from_data};
pub use keys::{
    DEFAULT_KEY_BITS, Keyring, SignatureAlgorithm, SigningKey, generate_key, generate_key_files,
};
pub use pkginfo::PkgInfo;
pub use reader::{
    DataEntry, DataSummary, PackageContents, PackageReader, SignatureEntry, read_package,
    verify_package, verify_package_from_index,
};
pub use repo::{RepoBuilder, VerifiedFile, sign_package_file, verify_file};
pub use tar::EntryType;
pub use tree::{PackageTree, TreeEntry};
pub use version::Version;
pub use writer::{
    ControlFiles, Scriptlet, WriteOptions, WrittenPackage, decode_q1, q1_checksum, write_package,
    write_package_from_dir, write_package_to,
};
