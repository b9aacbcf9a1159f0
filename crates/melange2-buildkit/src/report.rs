//! `melange2 buildkit info`: what the daemon is and what it can run.

use std::fmt;

use crate::{Address, BuildkitError, Client, DaemonInfo, TlsFiles, WorkerInfo};

/// Version and workers of a daemon.
#[derive(Clone, Debug)]
pub struct DaemonReport {
    /// Version information.
    pub info: DaemonInfo,
    /// Workers with their platforms.
    pub workers: Vec<WorkerInfo>,
}

impl DaemonReport {
    /// The report as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "address": self.info.address,
            "package": self.info.package,
            "version": self.info.version,
            "revision": self.info.revision,
            "workers": self.workers.iter().map(|w| serde_json::json!({
                "id": w.id,
                "platforms": w.platforms.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                "labels": w.labels,
            })).collect::<Vec<_>>(),
        })
    }
}

impl fmt::Display for DaemonReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Address:   {}", self.info.address)?;
        writeln!(f, "BuildKit:  {} {}", self.info.package, self.info.version)?;
        writeln!(f, "Revision:  {}", self.info.revision)?;
        for w in &self.workers {
            writeln!(f, "Worker:    {}", w.id)?;
            let platforms: Vec<String> = w.platforms.iter().map(|p| p.to_string()).collect();
            writeln!(f, "  Platforms:   {}", platforms.join(", "))?;
            for key in ["executor", "snapshotter", "network"] {
                if let Some(v) = w
                    .labels
                    .get(&format!("org.mobyproject.buildkit.worker.{key}"))
                {
                    writeln!(f, "  {:<12} {v}", format!("{key}:"))?;
                }
            }
        }
        Ok(())
    }
}

/// Connect and describe the daemon.
pub async fn daemon_report(addr: &Address, tls: &TlsFiles) -> Result<DaemonReport, BuildkitError> {
    let client = Client::connect(addr, tls).await?;
    let workers = client.workers().await?;
    Ok(DaemonReport {
        info: client.daemon().clone(),
        workers,
    })
}
