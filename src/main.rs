use std::process::ExitCode;

use clap::Parser;

#[allow(unsafe_code)] // set_var before any other thread exists.
fn main() -> ExitCode {
    // Odoo sets TZ=UTC for its whole process, so in the module a snippet's naive
    // `datetime.now()` and `fromtimestamp()` are UTC whatever the host's zone: the same
    // here, before the interpreter reads it. towerhook's own times are UTC anyway.
    // SAFETY: nothing else runs yet: no other thread can read the environment meanwhile.
    unsafe { std::env::set_var("TZ", "UTC") };
    towerhook::cli::run(towerhook::cli::Cli::parse())
}
