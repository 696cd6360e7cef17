//! The TLS configuration every HTTP client of the process shares.

/// The bundled webpki roots plus the platform's (`SSL_CERT_FILE` / `SSL_CERT_DIR` included),
/// offering HTTP/2 and HTTP/1.1.
///
/// Why once: reading the platform's root store costs tens of milliseconds per client, paid on
/// every client build (cold starts, and every test that builds a client) when reqwest loads it.
pub(super) fn shared_tls_config() -> Result<rustls::ClientConfig, String> {
    static TLS: std::sync::OnceLock<Result<rustls::ClientConfig, String>> =
        std::sync::OnceLock::new();
    TLS.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        // Unreadable platform certificates are skipped, as reqwest does: the bundled roots remain.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot build TLS configuration: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    })
    .clone()
}
