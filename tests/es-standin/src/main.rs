//! The `es-standin` binary: `es-standin [--listen ADDR:PORT] [--version V] [--user NAME:PASSWORD]
//! [--service-token NAME:SECRET | TOKEN]... [--refresh-interval 1s|-1] [--refresh-on-write]
//! [--tls-cert PEM --tls-key PEM [--tls-client-ca PEM [--tls-client-auth required|optional]]]
//! [--no-compression] [--node-name N] [--cluster-name N] [--control-listen ADDR:PORT]`; the first
//! stdout line is the bound URL, the second the service token, the third (if any) the control URL. `es-standin seed ...` drives the Kibana-like seeding helper against a
//! running stand-in.

use es_standin::{
    security, util, Client, ClientAuth, ClientTls, Options, Seeder, StandIn, TlsSettings,
};
use std::io::Write;
use std::process::ExitCode;

const USAGE: &str = "usage:
  es-standin [--listen ADDR:PORT] [--version 9.6.0] [--user elastic:PASSWORD]
             [--service-token NAME:SECRET|TOKEN]... [--refresh-interval 1s|-1] [--refresh-on-write]
             [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE] [--tls-client-auth required|optional]]
             [--no-compression] [--node-name NAME] [--cluster-name NAME] [--control-listen ADDR:PORT]
  es-standin seed --url URL [--user elastic:PASSWORD] [--ca FILE|--insecure] COMMAND
     COMMAND: fleet-server-policy --policy-id ID
              agent-policy --policy-id ID
              policy-revision --policy-id ID
              enrollment-key --policy-id ID [--name NAME]
              action --type TYPE --agents ID,ID [--data JSON]";

fn fail(msg: &str) -> ExitCode {
    eprintln!("es-standin: {msg}\n{USAGE}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut args = pico_args::Arguments::from_env();
    if args.contains(["-h", "--help"]) {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match args.subcommand() {
        Ok(Some(s)) if s == "seed" => seed(args),
        Ok(Some(other)) => fail(&format!("unknown subcommand [{other}]")),
        Ok(None) => serve(args),
        Err(e) => fail(&e.to_string()),
    }
}

fn read(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))
}

fn serve(mut args: pico_args::Arguments) -> ExitCode {
    let mut o = Options::default();
    let parsed: Result<(), String> = (|| {
        if let Some(l) = args
            .opt_value_from_str::<_, String>("--listen")
            .map_err(|e| e.to_string())?
        {
            o.listen = l.parse().map_err(|_| format!("bad --listen [{l}]"))?;
        }
        if let Some(v) = args
            .opt_value_from_str("--version")
            .map_err(|e| e.to_string())?
        {
            o.version = v;
        }
        if let Some(u) = args
            .opt_value_from_str::<_, String>("--user")
            .map_err(|e| e.to_string())?
        {
            let (n, p) = u.split_once(':').ok_or("--user must be NAME:PASSWORD")?;
            o.superuser = (n.to_string(), p.to_string());
        }
        let tokens: Vec<String> = args
            .values_from_str("--service-token")
            .map_err(|e| e.to_string())?;
        if !tokens.is_empty() {
            o.service_tokens.clear();
            for t in tokens {
                match security::decode_service_token(&t) {
                    Some(pair) => o.service_tokens.push(pair),
                    None => {
                        let (n, s) = t
                            .split_once(':')
                            .ok_or("--service-token must be NAME:SECRET or a token value")?;
                        o.service_tokens.push((n.to_string(), s.to_string()));
                    }
                }
            }
        }
        if let Some(r) = args
            .opt_value_from_str::<_, String>("--refresh-interval")
            .map_err(|e| e.to_string())?
        {
            o.refresh_interval = if r.trim() == "-1" {
                None
            } else {
                Some(util::parse_time(&r).ok_or(format!("bad --refresh-interval [{r}]"))?)
            };
        }
        o.refresh_on_write = args.contains("--refresh-on-write");
        o.compression = !args.contains("--no-compression");
        if let Some(n) = args
            .opt_value_from_str("--node-name")
            .map_err(|e| e.to_string())?
        {
            o.node_name = n;
        }
        if let Some(n) = args
            .opt_value_from_str("--cluster-name")
            .map_err(|e| e.to_string())?
        {
            o.cluster_name = n;
        }
        if let Some(c) = args
            .opt_value_from_str::<_, String>("--control-listen")
            .map_err(|e| e.to_string())?
        {
            o.control_listen = Some(
                c.parse()
                    .map_err(|_| format!("bad --control-listen [{c}]"))?,
            );
        }
        let cert: Option<String> = args
            .opt_value_from_str("--tls-cert")
            .map_err(|e| e.to_string())?;
        let key: Option<String> = args
            .opt_value_from_str("--tls-key")
            .map_err(|e| e.to_string())?;
        let ca: Option<String> = args
            .opt_value_from_str("--tls-client-ca")
            .map_err(|e| e.to_string())?;
        let mode: Option<String> = args
            .opt_value_from_str("--tls-client-auth")
            .map_err(|e| e.to_string())?;
        match (cert, key) {
            (Some(c), Some(k)) => {
                let client_auth = match mode.as_deref() {
                    None | Some("required") => ClientAuth::Required,
                    Some("optional") => ClientAuth::Optional,
                    Some(m) => return Err(format!("bad --tls-client-auth [{m}]")),
                };
                o.tls = Some(TlsSettings {
                    cert_pem: read(&c)?,
                    key_pem: read(&k)?,
                    client_ca_pem: ca.map(|p| read(&p)).transpose()?,
                    client_auth,
                });
            }
            (None, None) if ca.is_none() => {}
            _ => {
                return Err(
                    "--tls-cert and --tls-key go together (and --tls-client-ca needs them)".into(),
                )
            }
        }
        let rest = args.clone().finish();
        if !rest.is_empty() {
            return Err(format!("unexpected arguments {rest:?}"));
        }
        Ok(())
    })();
    if let Err(e) = parsed {
        return fail(&e);
    }
    let es = match StandIn::start(o) {
        Ok(es) => es,
        Err(e) => {
            eprintln!("es-standin: {e}");
            return ExitCode::from(1);
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", es.url());
    let _ = writeln!(out, "service_token={}", es.service_token());
    if let Some(c) = es.control_url() {
        let _ = writeln!(out, "control={c}");
    }
    let _ = out.flush();
    drop(out);
    loop {
        std::thread::park();
    }
}

fn seed(mut args: pico_args::Arguments) -> ExitCode {
    let res: Result<String, String> = (|| {
        let url: String = args.value_from_str("--url").map_err(|e| e.to_string())?;
        let user: String = args
            .opt_value_from_str("--user")
            .map_err(|e| e.to_string())?
            .unwrap_or_else(|| "elastic:changeme".into());
        let ca: Option<String> = args.opt_value_from_str("--ca").map_err(|e| e.to_string())?;
        let insecure = args.contains("--insecure");
        let tls = ClientTls {
            ca_pem: ca.map(|p| read(&p)).transpose()?,
            insecure,
            client_cert: None,
        };
        use base64::Engine;
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(&user)
        );
        let client = Client::new(&url, Some(tls))?.with_auth(&auth);
        let s = Seeder::new(client, &url);
        let cmd = args
            .subcommand()
            .map_err(|e| e.to_string())?
            .ok_or("missing seed command")?;
        let pid = |a: &mut pico_args::Arguments| -> Result<String, String> {
            a.value_from_str("--policy-id").map_err(|e| e.to_string())
        };
        let out = match cmd.as_str() {
            "fleet-server-policy" => s.fleet_server_policy(&pid(&mut args)?).map_err(|e| e.0)?,
            "agent-policy" => s.agent_policy(&pid(&mut args)?).map_err(|e| e.0)?,
            "policy-revision" => s.new_revision(&pid(&mut args)?).map_err(|e| e.0)?,
            "enrollment-key" => {
                let p = pid(&mut args)?;
                let name: String = args
                    .opt_value_from_str("--name")
                    .map_err(|e| e.to_string())?
                    .unwrap_or_else(|| "Default".into());
                let k = s.enrollment_key(&p, &name).map_err(|e| e.0)?;
                serde_json::json!({"api_key_id": k.api_key_id, "api_key": k.api_key, "doc_id": k.doc_id, "policy_id": k.policy_id})
            }
            "action" => {
                let ty: String = args.value_from_str("--type").map_err(|e| e.to_string())?;
                let agents: String = args.value_from_str("--agents").map_err(|e| e.to_string())?;
                let data: Option<String> = args
                    .opt_value_from_str("--data")
                    .map_err(|e| e.to_string())?;
                let data = match data {
                    Some(d) => {
                        serde_json::from_str(&d).map_err(|e| format!("--data is not JSON: {e}"))?
                    }
                    None => serde_json::Value::Null,
                };
                let list: Vec<&str> = agents.split(',').filter(|a| !a.is_empty()).collect();
                serde_json::json!({"action_id": s.action(&ty, &list, data).map_err(|e| e.0)?})
            }
            other => return Err(format!("unknown seed command [{other}]")),
        };
        Ok(out.to_string())
    })();
    match res {
        Ok(s) => {
            println!("{s}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}
