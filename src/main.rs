//! `kubectl-falco_verify`: parse the arguments, run the check or the special mode asked for
//! (completion, man page), exit with the contract's code.

use std::process::ExitCode;

use falco_verify::args::{self, Parsed};
use falco_verify::{app, completion};

fn main() -> ExitCode {
    let env = args::Environment::from_process();
    let exit = match args::parse(std::env::args_os().collect(), &env, chrono::Utc::now()) {
        Ok(Parsed::Check(invocation)) => app::run(*invocation),
        Ok(Parsed::Special(mode)) => completion::run(mode, &env),
        Err(e) => e.report(),
    };
    exit.into()
}
