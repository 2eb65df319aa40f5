//! A fleet-edge server in this test process, over any `Store`, on 127.0.0.1 with real TLS. Used
//! by the protocol tests so that the same scripted agents run against every backend. Dropping
//! it drains the server and joins its thread.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use fleet_edge::api::health::Health;
use fleet_edge::backend::Store;
use fleet_edge::config::{self, Command};
use fleet_edge::net::{Server, ShutdownHandle};

use super::client::tls_config;
use super::Pki;

/// A running in-process server.
pub struct InProc {
    pub addr: std::net::SocketAddr,
    pub pki: Pki,
    shutdown: ShutdownHandle,
    pub stats: Arc<fleet_edge::net::Stats>,
    thread: Option<JoinHandle<()>>,
}

/// Knobs the protocol tests turn.
pub struct Options {
    pub long_poll: &'static str,
    pub checkin_flush: Duration,
    pub client_auth_required: bool,
    /// How long a remote output's cluster that failed fails fast.
    pub remote_retry_after: Duration,
    /// Route limits to use instead of the table the machine's memory selects.
    pub limits_table: Option<&'static fleet_edge::api::limits::SizingTable>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            long_poll: "2s",
            checkin_flush: Duration::from_millis(200),
            client_auth_required: false,
            remote_retry_after: Duration::from_secs(30),
            limits_table: None,
        }
    }
}

impl InProc {
    pub fn start(store: Arc<dyn Store>, options: Options) -> Self {
        Self::start_prepared(store, options, |_| {})
    }

    /// [`InProc::start`], with `prepare` given the server before it runs (chores, watches).
    pub fn start_prepared(
        store: Arc<dyn Store>,
        options: Options,
        prepare: impl FnOnce(&mut Server),
    ) -> Self {
        let pki = Pki::new();
        let cert = pki.server.cert_path.to_str().unwrap().to_owned();
        let key = pki.server.key_path.to_str().unwrap().to_owned();
        let ca = pki.ca_path.to_str().unwrap().to_owned();
        let mut args = vec![
            "--fleet-server-cert".to_owned(),
            cert,
            "--fleet-server-cert-key".to_owned(),
            key,
            "--checkin-long-poll".to_owned(),
            options.long_poll.to_owned(),
            "--checkin-jitter".to_owned(),
            "0s".to_owned(),
        ];
        if options.client_auth_required {
            args.extend([
                "--certificate-authorities".to_owned(),
                ca,
                "--fleet-server-client-auth".to_owned(),
                "required".to_owned(),
            ]);
        }
        let Command::Run(config) =
            config::parse(args.into_iter().map(Into::into).collect(), &|_| None).unwrap()
        else {
            panic!("not a run command");
        };
        let fleet_edge::config::ServerTls::Provided(material) = &config.server.tls else {
            panic!("expected a provided certificate");
        };
        let tls = fleet_edge::tls::server_config(
            material,
            config.server.client_auth,
            &config.server.client_cas,
        )
        .unwrap();
        let listener = mio::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut settings = fleet_edge::net::settings(&config);
        settings.checkin_flush = options.checkin_flush;
        settings.checkin_timestamp = Duration::from_millis(200);
        settings.pbkdf2_iterations = 1000;
        settings.backend.remote.retry_after = options.remote_retry_after;
        if let Some(table) = options.limits_table {
            settings.limits_table = Some(table);
        }
        let mut server = Server::new(
            listener,
            Some(tls),
            settings,
            Health::Healthy,
            7,
            Some(store),
            None,
        )
        .unwrap();
        prepare(&mut server);
        let shutdown = server.shutdown_handle();
        let stats = server.stats();
        let thread = std::thread::spawn(move || {
            server.run().unwrap();
        });
        Self {
            addr,
            pki,
            shutdown,
            stats,
            thread: Some(thread),
        }
    }

    /// Client TLS config trusting this server (no client certificate).
    pub fn tls(&self) -> Arc<rustls::ClientConfig> {
        tls_config(&self.pki.roots(), None)
    }

    /// Client TLS config presenting the PKI's agent certificate.
    pub fn mtls(&self) -> Arc<rustls::ClientConfig> {
        tls_config(
            &self.pki.roots(),
            Some((self.pki.client.chain(), self.pki.client.key())),
        )
    }

    /// Waits until `n` checkins are parked (bounded: 20 s).
    pub fn wait_parked(&self, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while self.stats.parked.load(std::sync::atomic::Ordering::Relaxed) < n {
            assert!(
                std::time::Instant::now() < deadline,
                "never saw {n} parked checkin(s)"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Drains the server and waits for it to stop.
    pub fn stop(&mut self) {
        self.shutdown.shutdown();
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for InProc {
    fn drop(&mut self) {
        self.stop();
    }
}
