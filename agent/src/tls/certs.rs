//! Certificates for a quick start, as `consul tls ca create` / `tls cert create` make them:
//! a CA, and server, client and CLI certificates signed by it (ECDSA P-256).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, KeyPair, KeyUsagePurpose, NameConstraints, SanType,
};
use std::net::IpAddr;

/// Certificate generation failures.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("invalid name {0:?}")]
    Name(String),
}

/// A certificate and its private key, PEM encoded.
#[derive(Debug, Clone)]
pub struct Pem {
    pub cert: String,
    pub key: String,
}

/// Which kind of leaf certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Server,
    Client,
    Cli,
}

impl Kind {
    /// Its word in file names (`dc1-server-consul-0.pem`).
    pub fn word(self) -> &'static str {
        match self {
            Kind::Server => "server",
            Kind::Client => "client",
            Kind::Cli => "cli",
        }
    }
}

/// Validity from now for `days`.
fn validity(params: &mut CertificateParams, days: u32) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let date = |secs: i64| {
        let (y, m, d, ..) = crate::types::utc_parts(secs);
        rcgen::date_time_ymd(y as i32, m as u8, d as u8)
    };
    // From yesterday, so a clock a little behind still accepts it.
    params.not_before = date(now - 86_400);
    params.not_after = date(now + i64::from(days) * 86_400);
}

/// A new CA (`<domain>-agent-ca.pem`); with `constrain`, only names under `domain` (plus
/// `localhost` and `additional`) may be signed by it.
pub fn create_ca(
    domain: &str,
    days: u32,
    constrain: bool,
    additional: &[String],
) -> Result<Pem, CertError> {
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::default();
    let serial: u64 = rand::random::<u64>() >> 1;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("Praetor Agent CA {serial}"));
    dn.push(DnType::OrganizationName, "Praetor");
    dn.push(DnType::CountryName, "US");
    p.distinguished_name = dn;
    p.serial_number = Some(serial.into());
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    if constrain {
        let mut permitted = vec![
            GeneralSubtree::DnsName(domain.to_string()),
            GeneralSubtree::DnsName("localhost".into()),
        ];
        permitted.extend(
            additional
                .iter()
                .map(|d| GeneralSubtree::DnsName(d.clone())),
        );
        p.name_constraints = Some(NameConstraints {
            permitted_subtrees: permitted,
            excluded_subtrees: vec![],
        });
    }
    validity(&mut p, days);
    let cert = p.self_signed(&key)?;
    Ok(Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// A leaf certificate signed by the CA: `server.<dc>.<domain>` (server and client
/// authentication), `client.<dc>.<domain>` or `cli.client.<dc>.<domain>` (client only),
/// with `localhost`, 127.0.0.1 and the additional names and addresses.
#[allow(clippy::too_many_arguments)]
pub fn create_cert(
    ca: &Pem,
    kind: Kind,
    dc: &str,
    domain: &str,
    days: u32,
    dns_names: &[String],
    ips: &[IpAddr],
) -> Result<Pem, CertError> {
    let ca_key = KeyPair::from_pem(&ca.key)?;
    let ca_cert = CertificateParams::from_ca_cert_pem(&ca.cert)?.self_signed(&ca_key)?;
    let name = match kind {
        Kind::Server => format!("server.{dc}.{domain}"),
        Kind::Client => format!("client.{dc}.{domain}"),
        Kind::Cli => format!("cli.client.{dc}.{domain}"),
    };
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name.clone());
    p.distinguished_name = dn;
    p.serial_number = Some((rand::random::<u64>() >> 1).into());
    let mut sans = vec![name, "localhost".to_string()];
    sans.extend(dns_names.iter().cloned());
    for s in sans {
        let ia5 = s.clone().try_into().map_err(|_| CertError::Name(s))?;
        p.subject_alt_names.push(SanType::DnsName(ia5));
    }
    if kind != Kind::Cli {
        p.subject_alt_names
            .push(SanType::IpAddress(IpAddr::from([127, 0, 0, 1])));
    }
    p.subject_alt_names
        .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = match kind {
        Kind::Cli => vec![ExtendedKeyUsagePurpose::ClientAuth],
        _ => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    };
    p.use_authority_key_identifier_extension = true;
    validity(&mut p, days);
    let key = KeyPair::generate()?;
    let cert = p.signed_by(&key, &ca_cert, &ca_key)?;
    Ok(Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_certificate_verifies_against_its_ca_and_name() {
        let dir = tempfile::tempdir().unwrap();
        let ca = create_ca("consul", 30, false, &[]).unwrap();
        let srv = create_cert(&ca, Kind::Server, "dc1", "consul", 30, &[], &[]).unwrap();
        let write = |n: &str, s: &str| {
            let p = dir.path().join(n);
            std::fs::write(&p, s).unwrap();
            p
        };
        let s = super::super::TlsSettings {
            ca_file: Some(write("ca.pem", &ca.cert)),
            cert_file: Some(write("s.pem", &srv.cert)),
            key_file: Some(write("s-key.pem", &srv.key)),
            verify_incoming: true,
            verify_outgoing: true,
            verify_server_hostname: true,
        };
        // both ends build from the generated files
        s.server_config("test").unwrap();
        s.client_config("server.dc1.consul").unwrap();
        let certs = super::super::load_certs(s.cert_file.as_deref().unwrap()).unwrap();
        let roots = {
            let mut r = rustls::RootCertStore::empty();
            for c in super::super::load_certs(s.ca_file.as_deref().unwrap()).unwrap() {
                r.add(c).unwrap();
            }
            std::sync::Arc::new(r)
        };
        let v = rustls::client::WebPkiServerVerifier::builder_with_provider(
            roots,
            std::sync::Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        use rustls::client::danger::ServerCertVerifier;
        let now = rustls::pki_types::UnixTime::now();
        let ok = |name: &str| {
            v.verify_server_cert(
                &certs[0],
                &[],
                &rustls::pki_types::ServerName::try_from(name.to_string()).unwrap(),
                &[],
                now,
            )
            .is_ok()
        };
        assert!(ok("server.dc1.consul"));
        assert!(ok("localhost"));
        assert!(!ok("server.dc2.consul"));
        // a certificate from another CA does not verify
        let other = create_ca("consul", 30, false, &[]).unwrap();
        let foreign = create_cert(&other, Kind::Server, "dc1", "consul", 30, &[], &[]).unwrap();
        let fpath = write("f.pem", &foreign.cert);
        let fcert = super::super::load_certs(&fpath).unwrap();
        assert!(v
            .verify_server_cert(
                &fcert[0],
                &[],
                &rustls::pki_types::ServerName::try_from("server.dc1.consul").unwrap(),
                &[],
                now
            )
            .is_err());
    }
}
