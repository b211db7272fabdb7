//! `kubectl-falco_verify`: resolve the arguments, run the check, exit with the contract's code.

use std::process::ExitCode;

use falco_verify::{app, args, completion};

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(code) = completion::dispatch(&argv) {
        return code;
    }
    let env = args::Environment::from_process();
    let exit = match args::resolve(argv, &env, chrono::Utc::now()) {
        Ok(invocation) => app::run(invocation),
        Err(e) => e.report(),
    };
    exit.into()
}
