//! `tls ca create` and `tls cert create`: a CA and agent certificates for a quick start,
//! with Consul's flags, file names and messages. Local files only; no agent is contacted.

use super::verb::{flag, int};
use super::{dispatch, Sub, Verb};
use crate::tls::certs::{create_ca, create_cert, Kind, Pem};
use std::path::Path;

const HELP: &str = "
Usage: praetor tls <subcommand> <subcommand> [options]

  This command has subcommands for interacting with Consul TLS.

  Here are some simple examples, and more detailed examples are available
  in the subcommands or the documentation.

  Create a CA

    $ praetor tls ca create

  Create a server certificate

    $ praetor tls cert create -server

  Create a client certificate

    $ praetor tls cert create -client
";

const SUBS: &[Sub] = &[
    ("ca", "Helpers for CAs", ca),
    ("cert", "Helpers for certificates", cert),
];

/// `tls <subcommand>`
pub(super) fn run(args: &[String]) -> i32 {
    dispatch(args, HELP, SUBS)
}

const CA_HELP: &str = "
Usage: praetor tls ca <subcommand> [options]

  This command has subcommands for interacting with Certificate Authorities.

      $ praetor tls ca create
";

fn ca(args: &[String]) -> i32 {
    dispatch(
        args,
        CA_HELP,
        &[("create", "Create a new Consul CA", ca_create)],
    )
}

const CERT_HELP: &str = "
Usage: praetor tls cert <subcommand> [options]

  This command has subcommands for interacting with certificates.

      $ praetor tls cert create -server
      $ praetor tls cert create -client
";

fn cert(args: &[String]) -> i32 {
    dispatch(
        args,
        CERT_HELP,
        &[("create", "Create a new certificate", cert_create)],
    )
}

/// The `-days` flag: `default` when not given, at most 100 years.
fn days(p: &crate::flags::Parsed, default: u32) -> Result<u32, i32> {
    match int(p, "days") {
        0 => Ok(default),
        d if (1..=36_500).contains(&d) => Ok(d as u32),
        d => {
            eprintln!("==> Invalid -days: {d}");
            Err(1)
        }
    }
}

/// Write a file that must not exist yet (0600 for keys).
fn save(path: &str, data: &str, secret: bool) -> Result<(), i32> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if secret { 0o600 } else { 0o644 });
    }
    let r = opts
        .open(path)
        .and_then(|mut f| f.write_all(data.as_bytes()));
    match r {
        Ok(()) => {
            println!("==> Saved {path}");
            Ok(())
        }
        Err(e) => {
            eprintln!("==> {}", crate::api::go_io_error("open", path, &e));
            Err(1)
        }
    }
}

const CA_CREATE_HELP: &str = "
Usage: praetor tls ca create [options]

  Create a new Consul CA:

  $ praetor tls ca create
  ==> Saved consul-agent-ca.pem
  ==> Saved consul-agent-ca-key.pem
";

fn ca_create(args: &[String]) -> i32 {
    let mut v = Verb::new(CA_CREATE_HELP);
    v.int("days", "Provide number of days the CA is valid for from now on. Defaults to 5 years.")
        .string("domain", Some("consul"), "Domain of consul cluster. Only used in combination with -name-constraint. Defaults to consul.")
        .bool("name-constraint", "Add name constraints for the CA. Results in rejecting certificates for other DNS than specified. If turned on localhost and -domain will be added to the allowed DNS. If the UI is going to be served over HTTPS its DNS has to be added with -additional-constraint. It is not possible to add that after the fact! Defaults to false.")
        .list("additional-name-constraint", "Add name constraints for the CA. Results in rejecting certificates for other DNS than specified. Can be used multiple times. Only used in combination with -name-constraint.")
        .string("common-name", None, "Common Name of CA. Defaults to Consul Agent CA.");
    let p = or_exit!(v.parse(args));
    let days = or_exit!(days(&p, 1825));
    let domain = p.get_str("domain").unwrap_or("consul").to_string();
    let cert_file = format!("{domain}-agent-ca.pem");
    let key_file = format!("{domain}-agent-ca-key.pem");
    for f in [&cert_file, &key_file] {
        if Path::new(f).exists() {
            eprintln!("==> CA file {f} already exists");
            return 1;
        }
    }
    let extra: Vec<String> = p
        .get_all("additional-name-constraint")
        .into_iter()
        .map(str::to_string)
        .collect();
    let pem = match create_ca(&domain, days, flag(&p, "name-constraint"), &extra) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("==> Error generating CA: {e}");
            return 1;
        }
    };
    or_exit!(save(&cert_file, &pem.cert, false));
    or_exit!(save(&key_file, &pem.key, true));
    0
}

const CERT_CREATE_HELP: &str = "
Usage: praetor tls cert create [options]

  Create a new certificate signed by the CA (consul-agent-ca.pem and its key by default):

  $ praetor tls cert create -server
  ==> WARNING: Server Certificates grants authority to become a
      server and access all state in the cluster including root keys
      and all ACL tokens. Do not distribute them to production hosts
      that are not server nodes. Store them as securely as CA keys.
  ==> Using consul-agent-ca.pem and consul-agent-ca-key.pem
  ==> Saved dc1-server-consul-0.pem
  ==> Saved dc1-server-consul-0-key.pem
  $ praetor tls cert create -client
  ==> Using consul-agent-ca.pem and consul-agent-ca-key.pem
  ==> Saved dc1-client-consul-0.pem
  ==> Saved dc1-client-consul-0-key.pem
";

fn cert_create(args: &[String]) -> i32 {
    let mut v = Verb::new(CERT_CREATE_HELP);
    v.string("ca", Some("#DOMAIN#-agent-ca.pem"), "Provide path to the ca. Defaults to #DOMAIN#-agent-ca.pem.")
        .string("key", Some("#DOMAIN#-agent-ca-key.pem"), "Provide path to the key. Defaults to #DOMAIN#-agent-ca-key.pem.")
        .bool("server", "Generate server certificate.")
        .bool("client", "Generate client certificate.")
        .bool("cli", "Generate cli certificate.")
        .int("days", "Provide number of days the certificate is valid for from now on. Defaults to 1 year.")
        .string("dc", Some("dc1"), "Provide the datacenter. Matters only for -server certificates. Defaults to dc1.")
        .string("domain", Some("consul"), "Provide the domain. Matters only for -server certificates.")
        .string("node", None, "When generating a server cert and this is set an additional dns name is included of the form <node>.server.<datacenter>.<domain>.")
        .list("additional-dnsname", "Provide an additional dnsname for Subject Alternative Names. localhost is always included. This flag may be provided multiple times.")
        .list("additional-ipaddress", "Provide an additional ipaddress for Subject Alternative Names. 127.0.0.1 is always included. This flag may be provided multiple times.");
    let p = or_exit!(v.parse(args));
    let kinds: Vec<Kind> = [
        ("server", Kind::Server),
        ("client", Kind::Client),
        ("cli", Kind::Cli),
    ]
    .into_iter()
    .filter(|(f, _)| flag(&p, f))
    .map(|(_, k)| k)
    .collect();
    let kind = match kinds.as_slice() {
        [k] => *k,
        _ => {
            eprintln!("==> Please provide either -server, -client, or -cli");
            return 1;
        }
    };
    let dc = p.get_str("dc").unwrap_or("dc1").to_string();
    let domain = p.get_str("domain").unwrap_or("consul").to_string();
    let days = or_exit!(days(&p, 365));
    let ca_file = p
        .get_str("ca")
        .unwrap_or("#DOMAIN#-agent-ca.pem")
        .replace("#DOMAIN#", &domain);
    let key_file = p
        .get_str("key")
        .unwrap_or("#DOMAIN#-agent-ca-key.pem")
        .replace("#DOMAIN#", &domain);
    let read = |f: &str, what: &str| {
        std::fs::read_to_string(f).map_err(|e| {
            eprintln!(
                "==> Failed to read {what}: {}",
                crate::api::go_io_error("open", f, &e)
            );
            1
        })
    };
    let ca = Pem {
        cert: or_exit!(read(&ca_file, "CA")),
        key: or_exit!(read(&key_file, "CA key")),
    };
    let mut dns: Vec<String> = p
        .get_all("additional-dnsname")
        .into_iter()
        .map(str::to_string)
        .collect();
    if let (Kind::Server, Some(node)) = (kind, p.get_str("node").filter(|n| !n.is_empty())) {
        dns.push(format!("{node}.server.{dc}.{domain}"));
    }
    let mut ips = Vec::new();
    for ip in p.get_all("additional-ipaddress") {
        match ip.parse() {
            Ok(a) => ips.push(a),
            Err(_) => {
                eprintln!("==> {ip} is not a valid IP address");
                return 1;
            }
        }
    }
    if kind == Kind::Server {
        println!(
            "==> WARNING: Server Certificates grants authority to become a\n    server and access all state in the cluster including root keys\n    and all ACL tokens. Do not distribute them to production hosts\n    that are not server nodes. Store them as securely as CA keys."
        );
    }
    println!("==> Using {ca_file} and {key_file}");
    let pem = match create_cert(&ca, kind, &dc, &domain, days, &dns, &ips) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("==> Error generating certificate: {e}");
            return 1;
        }
    };
    let prefix = format!("{dc}-{}-{domain}", kind.word());
    let n = (0..)
        .find(|i| !Path::new(&format!("{prefix}-{i}.pem")).exists())
        .unwrap_or(0);
    or_exit!(save(&format!("{prefix}-{n}.pem"), &pem.cert, false));
    or_exit!(save(&format!("{prefix}-{n}-key.pem"), &pem.key, true));
    0
}
