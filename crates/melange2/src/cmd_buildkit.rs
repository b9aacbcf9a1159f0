//! `melange2 buildkit …`: daemon information.

use clap::{Args, Subcommand};
use melange2_buildkit::{Address, TlsFiles};
use std::path::PathBuf;

/// How to reach buildkitd; shared by every command that talks to it.
#[derive(Args, Clone, Debug)]
pub struct DaemonArgs {
    /// BuildKit daemon address (unix://, tcp://, docker-container://).
    #[arg(long, env = "BUILDKIT_HOST")]
    pub buildkit_addr: Option<String>,
    /// CA certificate for tcp:// with TLS.
    #[arg(long)]
    pub tlscacert: Option<PathBuf>,
    /// Client certificate for tcp:// with mTLS.
    #[arg(long)]
    pub tlscert: Option<PathBuf>,
    /// Client key for tcp:// with mTLS.
    #[arg(long)]
    pub tlskey: Option<PathBuf>,
    /// Server name to verify in the daemon's certificate.
    #[arg(long)]
    pub tlsservername: Option<String>,
}

impl DaemonArgs {
    /// The address and TLS files these flags name.
    pub fn resolve(&self) -> anyhow::Result<(Address, TlsFiles)> {
        let addr = match &self.buildkit_addr {
            Some(a) => Address::parse(a)?,
            None => Address::from_env()?,
        };
        let tls = TlsFiles {
            ca: self.tlscacert.clone(),
            cert: self.tlscert.clone(),
            key: self.tlskey.clone(),
            server_name: self.tlsservername.clone(),
        };
        Ok((addr, tls))
    }
}

#[derive(Subcommand)]
pub enum BuildkitCommand {
    /// Print the daemon's version, workers and platforms.
    Info {
        #[command(flatten)]
        daemon: DaemonArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Stop the local buildkitd that melange2 (or scripts/buildkit.sh) started.
    Stop,
}

pub fn run(cmd: BuildkitCommand) -> anyhow::Result<()> {
    match cmd {
        BuildkitCommand::Info { daemon, json } => {
            let (addr, tls) = daemon.resolve()?;
            let rt = tokio::runtime::Runtime::new()?;
            let report = rt.block_on(melange2_buildkit::daemon_report(&addr, &tls))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report.to_json())?);
            } else {
                print!("{report}");
            }
            Ok(())
        }
        BuildkitCommand::Stop => {
            let local = melange2_buildkit::local::LocalDaemon::default();
            if local.stop()? {
                println!(
                    "stopped the local buildkitd ({})",
                    local.state_dir.display()
                );
            } else {
                println!(
                    "no local buildkitd is running ({})",
                    local.state_dir.display()
                );
            }
            Ok(())
        }
    }
}
