//! The `fleet-edge` binary: read the configuration, start logging, run the server. The only place
//! that turns errors into exit codes: 2 for configuration that cannot work (every problem listed
//! at once), 1 for a server that could not start or failed, 0 after a clean shutdown.

use std::process::ExitCode;

use fleet_edge::config::{self, Command};

fn main() -> ExitCode {
    let config = match config::from_process() {
        Ok(Command::Run(config)) => config,
        Ok(Command::Help(text) | Command::Version(text) | Command::PrintConfig(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(errors) => {
            eprintln!("fleet-edge: the configuration cannot be used:\n{errors}");
            return ExitCode::from(2);
        }
    };
    fleet_edge::logging::init(config.log_level, config.log_format.into());
    match fleet_edge::net::run(&config, None) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            log::error!("{error}");
            eprintln!("fleet-edge: {error}");
            ExitCode::from(1)
        }
    }
}
