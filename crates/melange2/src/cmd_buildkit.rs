//! `melange2 buildkit …`: daemon information.

use clap::{Args, Subcommand};
use melange2_buildkit::{Address, TlsFiles};
use std::path::PathBuf;

/// How to reach buildkitd; shared by every command that talks to it.
#[derive(Args, Clone, Debug)]
pub struct DaemonArgs {
    /// BuildKit daemon address (unix://, tcp://, docker-container://); repeat it, or separate
    /// addresses with commas, for a pool of daemons.
    #[arg(long, env = "BUILDKIT_HOST", value_delimiter = ',')]
    pub buildkit_addr: Vec<String>,
    /// YAML file describing a pool of daemons (address, tls files, max-jobs, labels).
    #[arg(long, value_name = "FILE")]
    pub builders: Option<PathBuf>,
    /// Refuse to build an architecture that no daemon runs natively (instead of emulating it).
    #[arg(long)]
    pub no_emulation: bool,
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
    fn addresses(&self) -> Vec<String> {
        self.buildkit_addr
            .iter()
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect()
    }

    /// The one daemon of a command that uses one: its address and TLS files.
    pub fn resolve(&self) -> anyhow::Result<(Address, TlsFiles)> {
        let addrs = self.addresses();
        if addrs.len() > 1 || self.builders.is_some() {
            anyhow::bail!(
                "this command uses one daemon; a pool (several --buildkit-addr, --builders) \
                 applies to `melange2 build` and `melange2 buildkit info`"
            );
        }
        let addr = match addrs.first() {
            Some(a) => Address::parse(a)?,
            None => Address::from_env()?,
        };
        Ok((addr, self.tls()))
    }

    /// The TLS files these flags name.
    pub fn tls(&self) -> TlsFiles {
        TlsFiles {
            ca: self.tlscacert.clone(),
            cert: self.tlscert.clone(),
            key: self.tlskey.clone(),
            server_name: self.tlsservername.clone(),
        }
    }

    /// The one address given (flag or `BUILDKIT_HOST`), if any; checked when first needed.
    pub fn address(&self) -> anyhow::Result<Option<String>> {
        let addrs = self.addresses();
        if addrs.len() > 1 || self.builders.is_some() {
            anyhow::bail!("this command uses one daemon");
        }
        Ok(addrs.into_iter().next())
    }

    /// The pool these flags describe: every `--buildkit-addr` (with the TLS flags) and every
    /// daemon of `--builders`; none given: the default daemon.
    pub fn pool(&self) -> anyhow::Result<melange2_schedule::Pool> {
        let mut specs = Vec::new();
        for a in self.addresses() {
            Address::parse(&a)?;
            specs.push(melange2_schedule::DaemonSpec {
                address: Some(a),
                tls: self.tls(),
                ..Default::default()
            });
        }
        if let Some(f) = &self.builders {
            specs.extend(melange2_schedule::load_builders(f)?);
        }
        if specs.is_empty() {
            specs.push(melange2_schedule::DaemonSpec {
                tls: self.tls(),
                ..Default::default()
            });
        }
        Ok(melange2_schedule::Pool::new(specs, self.no_emulation))
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
            let rt = tokio::runtime::Runtime::new()?;
            if daemon.addresses().len() <= 1 && daemon.builders.is_none() {
                let (addr, tls) = daemon.resolve()?;
                let report = rt.block_on(melange2_buildkit::daemon_report(&addr, &tls))?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&report.to_json())?);
                } else {
                    print!("{report}");
                }
                return Ok(());
            }
            let pool = daemon.pool()?;
            let (text, reachable) = rt.block_on(melange2_schedule::pool_info(&pool, json));
            print!("{text}");
            if reachable == 0 {
                anyhow::bail!("no daemon of the pool is reachable");
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
