//! The `melange2` command line: parses flags and calls one library function per command.
//!
//! Each command group lives in its own `cmd_<area>.rs` module; this file only wires them up.

mod cmd_apk;
mod cmd_build;
mod cmd_buildkit;
mod cmd_completion;
mod cmd_config;
mod cmd_graph;
mod cmd_lint;
mod cmd_rebuild;
mod cmd_resolve;
mod cmd_scan;
mod cmd_test;
mod report;

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "melange2",
    version,
    about = "Build signed APK packages from melange build files on BuildKit"
)]
struct Cli {
    /// Log level (error, warn, info, debug, trace) or a tracing filter.
    #[arg(long, global = true, env = "MELANGE2_LOG", default_value = "warn")]
    log_level: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build packages from a melange build file on BuildKit.
    Build(Box<cmd_build::BuildArgs>),
    /// Talk to the BuildKit daemon.
    #[command(subcommand)]
    Buildkit(cmd_buildkit::BuildkitCommand),
    /// Print the shell completion script (bash, zsh, fish).
    Completion(cmd_completion::CompletionArgs),
    #[command(flatten)]
    Apk(cmd_apk::ApkCommand),
    #[command(flatten)]
    Config(cmd_config::ConfigCommand),
    /// Print the dependency graph of build files and directories, and the build order.
    Graph(Box<cmd_graph::GraphArgs>),
    /// Run the package linters on .apk files.
    Lint(cmd_lint::LintArgs),
    /// Rebuild packages from the plan and environment lock they carry and compare.
    Rebuild(Box<cmd_rebuild::RebuildArgs>),
    /// Resolve packages against signed APK repositories, fetch and verify them, print the lock.
    Resolve(cmd_resolve::ResolveArgs),
    /// Run the SCA again on built packages and print the .PKGINFO it gives (or its --diff).
    Scan(cmd_scan::ScanArgs),
    /// Run a build file's tests against built packages on BuildKit.
    Test(Box<cmd_test::TestArgs>),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colour only on a terminal, and never with NO_COLOR set.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    console::set_colors_enabled_stderr(colour);
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
    let result = match cli.command {
        Command::Build(a) => cmd_build::run(*a),
        Command::Buildkit(c) => cmd_buildkit::run(c),
        Command::Completion(a) => cmd_completion::run(a, Cli::command()),
        Command::Apk(c) => cmd_apk::run(c),
        Command::Config(c) => cmd_config::run(c),
        Command::Graph(a) => cmd_graph::run(*a),
        Command::Lint(a) => cmd_lint::run(a),
        Command::Rebuild(a) => cmd_rebuild::run(*a),
        Command::Resolve(c) => cmd_resolve::run(c),
        Command::Scan(a) => cmd_scan::run(a),
        Command::Test(a) => cmd_test::run(*a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {}", report::one_line(&e));
            // 128 + the signal's number after SIGINT/SIGTERM, as a shell reports it
            match e
                .downcast_ref::<melange2_interrupt::Error>()
                .and_then(melange2_interrupt::Error::exit_code)
            {
                Some(code) => std::process::ExitCode::from(code),
                None => std::process::ExitCode::FAILURE,
            }
        }
    }
}
