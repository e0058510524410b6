//! The webhook's serving certificate: a CA and a leaf for the webhook Service made with
//! rcgen, kept in a Secret, and the CA patched into the MutatingWebhookConfiguration's
//! `caBundle` so the API server trusts the webhook.

use std::collections::BTreeMap;

use base64::Engine;
use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::{Span, Timestamp};
use k8s_openapi::ByteString;
use kube::api::{Patch as KubePatch, PatchParams};
use kube::{Api, Client};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use crate::controller::build::FIELD_MANAGER;

/// Secret annotation listing the certificate's DNS names.
pub const SANS_ANNOTATION: &str = "praetor.dev/dns-names";
/// Secret annotation with the certificate's expiry (RFC 3339).
pub const NOT_AFTER_ANNOTATION: &str = "praetor.dev/not-after";
/// Certificates are valid this many days...
pub const VALID_DAYS: i64 = 365;
/// ...and replaced when fewer than this many remain.
pub const RENEW_DAYS: i64 = 30;

/// Errors managing the certificate.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// rcgen failed.
    #[error("generating the webhook certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// Reading or writing the Secret failed.
    #[error("storing the webhook certificate in Secret {name}: {source}")]
    Secret {
        /// Secret name.
        name: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
    /// Reading or patching the MutatingWebhookConfiguration failed.
    #[error("patching caBundle of MutatingWebhookConfiguration {name}: {source}")]
    WebhookConfiguration {
        /// Its name.
        name: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
}

/// A CA and a serving certificate, PEM-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookCert {
    /// CA certificate (goes into `caBundle`).
    pub ca_pem: String,
    /// Serving certificate.
    pub cert_pem: String,
    /// Serving key.
    pub key_pem: String,
    /// DNS names of the serving certificate.
    pub dns_names: Vec<String>,
    /// Expiry.
    pub not_after: Timestamp,
}

/// The DNS names the API server may use for the webhook Service.
pub fn service_dns_names(service: &str, namespace: &str, cluster_domain: &str) -> Vec<String> {
    vec![
        service.to_string(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.{cluster_domain}"),
    ]
}

/// The UTC calendar date of `ts` (rcgen takes dates; the time of day is dropped).
fn ymd(ts: Timestamp) -> (i32, u8, u8) {
    let date = ts.to_zoned(k8s_openapi::jiff::tz::TimeZone::UTC).date();
    (i32::from(date.year()), date.month() as u8, date.day() as u8)
}

/// Generates a fresh CA and a serving certificate for `dns_names`, valid from yesterday for
/// [`VALID_DAYS`] days.
pub fn generate(dns_names: &[String], now: Timestamp) -> Result<WebhookCert, CertError> {
    let not_before = now - Span::new().hours(24);
    let not_after = now + Span::new().hours(24 * VALID_DAYS);

    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "praetor-operator webhook CA");
    ca_params.distinguished_name = dn;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let (by, bm, bd) = ymd(not_before);
    let (ay, am, ad) = ymd(not_after);
    ca_params.not_before = rcgen::date_time_ymd(by, bm, bd);
    ca_params.not_after = rcgen::date_time_ymd(ay, am, ad);
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(dns_names.to_vec())?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        dns_names.first().cloned().unwrap_or_default(),
    );
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = rcgen::date_time_ymd(by, bm, bd);
    params.not_after = rcgen::date_time_ymd(ay, am, ad);
    let cert = params.signed_by(&key, &issuer)?;
    Ok(WebhookCert {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        dns_names: dns_names.to_vec(),
        not_after,
    })
}

fn data_str(secret: &Secret, key: &str) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(key)?;
    String::from_utf8(bytes.0.clone()).ok()
}

/// The certificate stored in `secret`, if it is complete, covers `dns_names`, and is not
/// due for renewal at `now`.
pub fn usable_cert(secret: &Secret, dns_names: &[String], now: Timestamp) -> Option<WebhookCert> {
    let notes = secret.metadata.annotations.as_ref()?;
    let stored_names: Vec<String> = notes
        .get(SANS_ANNOTATION)?
        .split(',')
        .map(str::to_string)
        .collect();
    if stored_names != dns_names {
        return None;
    }
    let not_after: Timestamp = notes.get(NOT_AFTER_ANNOTATION)?.parse().ok()?;
    if not_after < now + Span::new().hours(24 * RENEW_DAYS) {
        return None;
    }
    Some(WebhookCert {
        ca_pem: data_str(secret, "ca.crt")?,
        cert_pem: data_str(secret, "tls.crt")?,
        key_pem: data_str(secret, "tls.key")?,
        dns_names: stored_names,
        not_after,
    })
}

/// The Secret holding `cert`.
pub fn build_secret(name: &str, namespace: &str, cert: &WebhookCert) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            labels: Some(BTreeMap::from([
                (
                    "app.kubernetes.io/name".to_string(),
                    "praetor-operator".to_string(),
                ),
                (
                    "app.kubernetes.io/managed-by".to_string(),
                    FIELD_MANAGER.to_string(),
                ),
            ])),
            annotations: Some(BTreeMap::from([
                (SANS_ANNOTATION.to_string(), cert.dns_names.join(",")),
                (NOT_AFTER_ANNOTATION.to_string(), cert.not_after.to_string()),
            ])),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(BTreeMap::from([
            (
                "ca.crt".to_string(),
                ByteString(cert.ca_pem.clone().into_bytes()),
            ),
            (
                "tls.crt".to_string(),
                ByteString(cert.cert_pem.clone().into_bytes()),
            ),
            (
                "tls.key".to_string(),
                ByteString(cert.key_pem.clone().into_bytes()),
            ),
        ])),
        ..Default::default()
    }
}

/// The JSON patch setting `caBundle` (base64 of the CA PEM) on every webhook of `mwc` that
/// does not have it already. Empty when all are current.
pub fn ca_bundle_patch(mwc: &MutatingWebhookConfiguration, ca_pem: &str) -> Patch {
    let bundle = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let ops = mwc
        .webhooks
        .iter()
        .flatten()
        .enumerate()
        .filter(|(_, w)| {
            w.client_config.ca_bundle.as_ref().map(|b| b.0.as_slice()) != Some(ca_pem.as_bytes())
        })
        .map(|(i, _)| {
            PatchOperation::Add(AddOperation {
                path: PointerBuf::from_tokens([
                    "webhooks",
                    &i.to_string(),
                    "clientConfig",
                    "caBundle",
                ]),
                value: serde_json::Value::String(bundle.clone()),
            })
        })
        .collect();
    Patch(ops)
}

/// Settings of the certificate management.
#[derive(Debug, Clone)]
pub struct CertSettings {
    /// Namespace of the operator (Secret and Service live there).
    pub namespace: String,
    /// Webhook Service name.
    pub service: String,
    /// Secret holding the certificate.
    pub secret: String,
    /// MutatingWebhookConfiguration to patch.
    pub webhook_configuration: String,
    /// Cluster DNS domain.
    pub cluster_domain: String,
}

/// Loads the certificate from its Secret, or makes and stores a new one, then makes sure
/// the MutatingWebhookConfiguration trusts its CA.
pub async fn ensure_certificate(
    client: &Client,
    s: &CertSettings,
) -> Result<WebhookCert, CertError> {
    let secrets = Api::<Secret>::namespaced(client.clone(), &s.namespace);
    let dns_names = service_dns_names(&s.service, &s.namespace, &s.cluster_domain);
    let now = Timestamp::now();
    let existing = secrets
        .get_opt(&s.secret)
        .await
        .map_err(|source| CertError::Secret {
            name: s.secret.clone(),
            source,
        })?;
    let cert = match existing
        .as_ref()
        .and_then(|sec| usable_cert(sec, &dns_names, now))
    {
        Some(cert) => cert,
        None => {
            let cert = generate(&dns_names, now)?;
            secrets
                .patch(
                    &s.secret,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &KubePatch::Apply(build_secret(&s.secret, &s.namespace, &cert)),
                )
                .await
                .map_err(|source| CertError::Secret {
                    name: s.secret.clone(),
                    source,
                })?;
            tracing::info!(secret = %s.secret, "stored a new webhook certificate");
            cert
        }
    };
    let mwcs = Api::<MutatingWebhookConfiguration>::all(client.clone());
    let wrap = |source| CertError::WebhookConfiguration {
        name: s.webhook_configuration.clone(),
        source,
    };
    let mwc = mwcs.get(&s.webhook_configuration).await.map_err(wrap)?;
    let patch = ca_bundle_patch(&mwc, &cert.ca_pem);
    if !patch.0.is_empty() {
        mwcs.patch(
            &s.webhook_configuration,
            &PatchParams::default(),
            &KubePatch::<()>::Json(patch),
        )
        .await
        .map_err(wrap)?;
    }
    Ok(cert)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::admissionregistration::v1::{MutatingWebhook, WebhookClientConfig};

    fn names() -> Vec<String> {
        service_dns_names("praetor-webhook", "praetor-system", "cluster.local")
    }

    #[test]
    fn generated_cert_round_trips_through_secret() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let cert = generate(&names(), now).unwrap();
        assert!(cert.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(cert.key_pem.contains("PRIVATE KEY"));
        assert_ne!(cert.ca_pem, cert.cert_pem);
        let secret = build_secret("tls", "praetor-system", &cert);
        assert_eq!(usable_cert(&secret, &names(), now), Some(cert.clone()));
        // Other names, or close to expiry: regenerate.
        let other = service_dns_names("x", "praetor-system", "cluster.local");
        assert_eq!(usable_cert(&secret, &other, now), None);
        let late = now + Span::new().hours(24 * (VALID_DAYS - RENEW_DAYS + 1));
        assert_eq!(usable_cert(&secret, &names(), late), None);
        assert_eq!(usable_cert(&Secret::default(), &names(), now), None);
    }

    #[test]
    fn serving_cert_verifies_against_ca_with_rustls() {
        use rustls::client::danger::ServerCertVerifier;
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let cert = generate(&names(), Timestamp::now()).unwrap();
        let ca = CertificateDer::from_pem_slice(cert.ca_pem.as_bytes()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let leaf = CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).unwrap();
        let name =
            rustls::pki_types::ServerName::try_from("praetor-webhook.praetor-system.svc").unwrap();
        verifier
            .verify_server_cert(&leaf, &[], &name, &[], rustls::pki_types::UnixTime::now())
            .unwrap();
        let wrong = rustls::pki_types::ServerName::try_from("evil.example.com").unwrap();
        assert!(verifier
            .verify_server_cert(&leaf, &[], &wrong, &[], rustls::pki_types::UnixTime::now())
            .is_err());
        // The key loads as a rustls server key.
        PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap();
    }

    #[test]
    fn ca_bundle_patch_targets_outdated_webhooks() {
        let hook = |bundle: Option<&str>| MutatingWebhook {
            name: "inject.praetor.dev".into(),
            client_config: WebhookClientConfig {
                ca_bundle: bundle.map(|b| ByteString(b.as_bytes().to_vec())),
                ..Default::default()
            },
            admission_review_versions: vec!["v1".into()],
            side_effects: "None".into(),
            ..Default::default()
        };
        let mwc = MutatingWebhookConfiguration {
            webhooks: Some(vec![hook(None), hook(Some("CA"))]),
            ..Default::default()
        };
        let patch = ca_bundle_patch(&mwc, "CA");
        assert_eq!(patch.0.len(), 1);
        let mut doc = serde_json::to_value(&mwc).unwrap();
        json_patch::patch(&mut doc, &patch).unwrap();
        let back: MutatingWebhookConfiguration = serde_json::from_value(doc).unwrap();
        assert_eq!(
            back.webhooks.unwrap()[0]
                .client_config
                .ca_bundle
                .as_ref()
                .unwrap()
                .0,
            b"CA".to_vec()
        );
    }
}
