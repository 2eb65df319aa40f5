//! The `fleet-edge` binary: read the configuration, start logging, open the store, run the
//! server. The only place that turns errors into exit codes: 2 for configuration that cannot work
//! (every problem listed at once), 1 for a server that could not start or failed, 0 after a clean
//! shutdown.

use std::process::ExitCode;
use std::sync::Arc;

use fleet_edge::config::{self, Command, Config};
use fleet_edge::net::Listening;

#[allow(
    clippy::disallowed_methods,
    reason = "main is the process edge: the subcommands' data directory comes from the environment"
)]
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args
        .first()
        .is_some_and(|a| fleet_edge::cli::is_subcommand(a))
    {
        return match fleet_edge::cli::run(args, std::env::var("FLEET_EDGE_DATA_DIR").ok()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("fleet-edge: {e}");
                ExitCode::from(e.exit_code())
            }
        };
    }
    let config = match config::from_process() {
        Ok(Command::Run(config)) => config,
        Ok(Command::Help(text)) => {
            print!("{text}\n{}", fleet_edge::cli::management_help());
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version(text) | Command::PrintConfig(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(errors) => {
            eprintln!("fleet-edge: the configuration cannot be used:\n{errors}");
            return ExitCode::from(2);
        }
    };
    fleet_edge::logging::init(config.log_level, config.log_format.into());
    fleet_edge::panics::install();
    for warning in &config.warnings {
        log::warn!("{warning}");
    }
    match run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            log::error!("{error}");
            eprintln!("fleet-edge: {error}");
            ExitCode::from(1)
        }
    }
}

fn run(config: &Config) -> Result<(), Box<dyn std::error::Error>> {
    // Before anything reads or writes it: the data dir holds keys, tokens and credentials.
    fleet_edge::fsmode::secure_data_dir(&config.data_dir)?;
    if let Some(mirror) = &config.files.mirror_dir {
        fleet_edge::files::prepare_mirror(mirror)?;
    }
    if let Some(es) = &config.es {
        // Production mode: the state lives in Elasticsearch; several instances may share it.
        let store = fleet_edge::backend::es::EsStore::connect(es, config.startup_timeout)?;
        log::info!(
            "connected to Elasticsearch {} at {}",
            store.es_version(),
            es.hosts.join(", ")
        );
        let store: Arc<dyn fleet_edge::backend::Store> = Arc::new(store);
        // Agent mode: the Fleet Server policy's overrides, self-registration, live reload.
        fleet_edge::bootstrap::run(config, store)?;
        return Ok(());
    }
    let opened = fleet_edge::embedded::open(&config.data_dir)?;
    // --self-signed-key-type auto: RSA when a policy has Elastic Defend (it needs RSA).
    let mut config = config.clone();
    config.server.defend_policy =
        fleet_edge::embedded::policies::defend_policy(opened.policies_dir());
    if let Some(file) = &config.server.defend_policy {
        if matches!(
            config.server.tls,
            fleet_edge::config::ServerTls::SelfSigned { .. }
        ) && config.server.self_signed_key == fleet_edge::tls::self_signed::SelfSignedKey::Auto
        {
            log::info!(
                "{} has an Elastic Defend integration: a CA generated now is RSA (--self-signed-key-type auto)",
                file.display()
            );
        }
    }
    let config = &config;
    let store: Arc<dyn fleet_edge::backend::Store> = opened.store().clone();
    let enrollment = Arc::new(std::sync::OnceLock::new());
    let admin: Arc<dyn fleet_edge::mgmt::Admin> =
        Arc::new(fleet_edge::embedded::EmbeddedAdmin::new(
            opened.store().clone(),
            opened.policies_dir().to_path_buf(),
            Arc::clone(&enrollment),
            config.server.agent_offline_after,
        ));
    let sampled = Arc::clone(&admin);
    let (mut server, listening) = fleet_edge::net::bind(config, Some(store), Some(admin))?;
    let url = public_url(config, &listening);
    // Bound but not yet serving: the default policy learns the URL agents use before any agent
    // can enroll into it.
    let embedded = fleet_edge::embedded::start(
        opened,
        &fleet_edge::embedded::FirstStart {
            fleet_url: &url,
            output: config.default_output.as_ref(),
            download: config.files.mirror_dir.as_ref().map(|_| {
                fleet_edge::embedded::policies::DownloadSource {
                    source_uri: format!("{}/downloads/", url.trim_end_matches('/')),
                    ca_pem: listening
                        .generated_ca
                        .as_ref()
                        .and_then(|(path, _)| std::fs::read_to_string(path).ok()),
                }
            }),
        },
    )?;
    // The policy files are scanned by a timer of the loop, on a worker, and within milliseconds
    // of a write where the directory can be watched (inotify); SIGHUP scans at once.
    let rescan = embedded.rescan.clone();
    let scan = server.every(
        "policy files",
        fleet_edge::embedded::policies::SCAN_INTERVAL,
        std::sync::Arc::new(move || {
            if let Err(e) = rescan.now() {
                log::warn!("policy files: {e}");
            }
        }),
    );
    let policies_dir = embedded.rescan.dir();
    if let Err(e) = server.also_on_change(
        scan,
        &policies_dir,
        fleet_edge::embedded::policy_format::is_policy_file,
    ) {
        log::info!(
            "{} not watched ({e}): policy file edits are noticed by the {} ms scan",
            policies_dir.display(),
            fleet_edge::embedded::policies::SCAN_INTERVAL.as_millis()
        );
    }
    // Agents by status for the console's 24-hour chart: a sample now (if its 5-minute slot has
    // none yet), then one per slot, looked for by a timer of the loop, on a worker.
    #[allow(
        clippy::disallowed_methods,
        reason = "the chore runs on a backend worker, the process edge: the sample's time is read there"
    )]
    let sample = move || {
        if let Err(e) = fleet_edge::mgmt::history::sample(&*sampled, std::time::SystemTime::now()) {
            log::warn!("status history: {e}");
        }
    };
    sample();
    server.every(
        "status history",
        fleet_edge::mgmt::history::CHECK_EVERY,
        std::sync::Arc::new(sample),
    );
    let rescan = embedded.rescan.clone();
    server.add_reload_hook(Box::new(move || match rescan.now() {
        Ok(0) => None,
        Ok(n) => Some(format!("policy files: {n} new revision(s)")),
        Err(e) => Some(format!("policy files not scanned: {e}")),
    }));
    fleet_edge::net::announce(&listening);
    let hint = fleet_edge::embedded::Enrollment {
        url: url.clone(),
        trust: trust_flags(&listening),
    };
    quick_start(config, &embedded, &listening, &hint);
    let _ = enrollment.set(hint);
    server.run().map_err(fleet_edge::net::StartupError::Poll)?;
    Ok(())
}

/// The URL agents reach this server at: `FLEET_URL` when set, else this host's name (or the
/// bound address) and the bound port.
fn public_url(config: &Config, listening: &Listening) -> String {
    config.fleet_url.clone().unwrap_or_else(|| {
        let host = match listening.addr.ip() {
            ip if ip.is_unspecified() => {
                fleet_edge::config::system_hostname().unwrap_or_else(|| "localhost".into())
            }
            ip if ip.is_ipv6() => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        let scheme = if listening.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{host}:{}", listening.addr.port())
    })
}

/// What follows the enrollment token in the install command: the generated CA's absolute path,
/// `--insecure` over plain HTTP, nothing for an operator's certificate.
fn trust_flags(listening: &Listening) -> String {
    match (&listening.generated_ca, listening.tls.is_some()) {
        (Some((path, _)), _) => {
            let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            format!(" --certificate-authorities={}", abs.display())
        }
        (None, true) => String::new(),
        (None, false) => " --insecure".to_owned(),
    }
}

/// Prints what an operator needs to enroll the first agent (stdout; the log goes to stderr).
fn quick_start(
    config: &Config,
    embedded: &fleet_edge::embedded::Embedded,
    listening: &Listening,
    hint: &fleet_edge::embedded::Enrollment,
) {
    let url = &hint.url;
    println!(
        "fleet-edge is ready (embedded store in {}).",
        config.data_dir.display()
    );
    println!("  Fleet Server URL:   {url}");
    println!(
        "  Enrollment token:   {} (policy {})",
        embedded.token, embedded.token_policy
    );
    if let Some((path, fingerprint)) = &listening.generated_ca {
        let key = match listening.generated_key {
            Some(fleet_edge::tls::self_signed::KeyAlgorithm::Rsa2048) => "RSA".to_owned(),
            Some(other) => format!(
                "{other}; Elastic Defend needs RSA: --self-signed-key-type rsa, see README \"Elastic Defend\""
            ),
            None => String::new(),
        };
        println!("  CA certificate:     {} ({key})", path.display());
        println!("  CA fingerprint:     {fingerprint} (SHA-256)");
    }
    println!(
        "  Policies:           {} (edit a file to roll out a new revision)",
        embedded.policies_dir.display()
    );
    if let Some(mirror) = &config.files.mirror_dir {
        println!(
            "  Artifact mirror:    {}/downloads/ from {} (fleet-edge artifacts import FILE...)",
            url.trim_end_matches('/'),
            mirror.display()
        );
    }
    if !embedded.output_problems.is_empty() {
        println!(
            "  Output:             {}: agents send no data until you edit outputs in {} (or first start with --default-output-hosts)",
            embedded.output_problems.join("; "),
            embedded.token_policy_file.display()
        );
    }
    println!("Enroll an Elastic Agent with:");
    println!("  {}", hint.install_command(&embedded.token));
}
