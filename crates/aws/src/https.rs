//! The HTTPS client every function's SDK clients share: the SDK's default client (hyper 1, rustls on
//! aws-lc, the proxy settings of the environment, the connector settings and sleep of each SDK
//! client), with one difference: it trusts Mozilla's roots compiled into the binary
//! (`webpki-root-certs`, the set reqwest already trusts in the deliver functions) instead of loading
//! the image's certificate store. Loading that store reads and parses every file of
//! `/etc/ssl/certs` (about 140 on a Debian image) at cold start, which was most of a function's
//! init time.

use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_http_client::{Builder, ConnectorBuilder, HttpClientError, proxy::ProxyConfig};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The SDK's default HTTPS client with the compiled-in roots, and no others.
pub fn client() -> Result<SharedHttpClient, HttpClientError> {
    let context = TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(roots_pem()))
        .build()?;
    // What the SDK's `default_https_client` does for the latest behavior version, with `context`.
    Ok(
        Builder::new().build_with_connector_fn(move |settings, components| {
            let mut connector = ConnectorBuilder::default()
                .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
                .tls_context(context.clone());
            connector.set_connector_settings(settings.cloned());
            if let Some(components) = components {
                connector.set_sleep_impl(components.sleep_impl());
            }
            connector.set_proxy_config(Some(ProxyConfig::from_env()));
            connector.build()
        }),
    )
}

/// Mozilla's roots as one PEM bundle, the only form the SDK's trust store takes (encoding about
/// 150 certificates in memory costs well under a millisecond; reading them from files cost tens).
fn roots_pem() -> Vec<u8> {
    let mut pem = Vec::with_capacity(300 * 1024);
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        let body = STANDARD.encode(cert.as_ref());
        for line in body.as_bytes().chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_holds_every_compiled_in_root_as_a_parsable_certificate() {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        let pem = roots_pem();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .expect("the bundle is valid PEM");
        assert_eq!(certs.len(), webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
        assert!(certs.len() > 100, "{} roots", certs.len());
        assert!(
            certs
                .iter()
                .zip(webpki_root_certs::TLS_SERVER_ROOT_CERTS)
                .all(|(a, b)| a.as_ref() == b.as_ref())
        );
    }

    #[test]
    fn the_client_builds_without_reading_the_certificate_store() {
        assert!(client().is_ok());
    }
}
