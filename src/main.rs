use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    towerhook::cli::run(towerhook::cli::Cli::parse())
}
