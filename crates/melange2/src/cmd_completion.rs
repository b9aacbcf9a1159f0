//! `melange2 completion bash|zsh|fish`: the shell completion script, from the command
//! line's own definition (clap_complete).

use clap::Args;
use clap_complete::Shell;

#[derive(Args, Debug)]
pub struct CompletionArgs {
    /// The shell: bash, zsh or fish.
    #[arg(value_parser = ["bash", "zsh", "fish"])]
    pub shell: String,
}

/// Write the script for `a.shell` to stdout.
pub fn run(a: CompletionArgs, mut cmd: clap::Command) -> anyhow::Result<()> {
    let shell = match a.shell.as_str() {
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        "fish" => Shell::Fish,
        other => anyhow::bail!("unknown shell {other:?} (bash, zsh, fish)"),
    };
    let name = cmd.get_name().to_string();
    clap_complete::generate(shell, &mut cmd, name, &mut std::io::stdout());
    Ok(())
}
