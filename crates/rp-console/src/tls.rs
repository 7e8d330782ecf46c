//! `rp serve`'s own TLS (`--tls-cert`, `--tls-key`): the certificate chain and its key read
//! from PEM files, checked before anything listens ([`Tls::load`], every failure named by
//! [`TlsError`]), and [`serve_with_shutdown`], which serves a router over TLS with the same
//! connection limits as the plain listener (HTTP/1.1; the handshake and then the request head
//! within the header read timeout, a connection cap, a graceful shutdown).

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use rp_payout::axum::ConnectionLimits;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Why the certificate or its key cannot be served, each naming the file at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file cannot be read (missing, unreadable).
    #[error("cannot read the TLS {what} file {}: {source}", path.display())]
    Read {
        /// `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not PEM text (DER, say, or a damaged block).
    #[error("the TLS {what} file {} is not PEM: {reason}", path.display())]
    NotPem {
        /// `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The certificate file holds no `CERTIFICATE` block.
    #[error(
        "the TLS certificate file {} has no certificate (a PEM \"CERTIFICATE\" block){found}",
        path.display()
    )]
    NoCertificate {
        /// The file.
        path: PathBuf,
        /// What it holds instead (`, only: …`), or nothing.
        found: String,
    },
    /// The key file holds no unencrypted private key.
    #[error(
        "the TLS key file {} has no private key (an unencrypted PEM \"PRIVATE KEY\", \
         \"RSA PRIVATE KEY\" or \"EC PRIVATE KEY\" block){found}",
        path.display()
    )]
    NoKey {
        /// The file.
        path: PathBuf,
        /// What it holds instead, or why (an encrypted key).
        found: String,
    },
    /// The key is not one the TLS library can sign with (algorithm, size, encoding).
    #[error("the TLS key in {} is not supported: {reason}", path.display())]
    UnsupportedKey {
        /// The key file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The key is not the certificate's.
    #[error(
        "the TLS key in {} does not match the certificate in {} (the first certificate of the \
         file must be the server's, and the key its own)",
        key.display(),
        cert.display()
    )]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The certificate and key together are refused for another reason.
    #[error("the TLS certificate {} with the key {} cannot be used: {reason}", cert.display(), key.display())]
    Refused {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        reason: String,
    },
}

/// A loaded certificate chain and key: what accepts TLS connections.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads the certificate chain (`cert`: PEM, the server's certificate first, then its
    /// intermediates) and its private key (`key`: PEM, PKCS#8, PKCS#1 or SEC1, unencrypted),
    /// and checks that they belong together. HTTP/1.1 only, TLS 1.2 and 1.3.
    ///
    /// # Errors
    ///
    /// [`TlsError`]: which file, and what is wrong with it.
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        let chain = certificates(cert)?;
        let private = private_key(key)?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        check_key(&provider, &chain, private.clone_key(), cert, key)?;
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|builder| {
                builder
                    .with_no_client_auth()
                    .with_single_cert(chain, private)
            })
            .map_err(|e| TlsError::Refused {
                cert: cert.to_owned(),
                key: key.to_owned(),
                reason: e.to_string(),
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }
}

/// The PEM sections of `path`, with their kinds.
fn sections(what: &'static str, path: &Path) -> Result<Vec<(SectionKind, Vec<u8>)>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })?;
    let not_pem = |reason: String| TlsError::NotPem {
        what,
        path: path.to_owned(),
        reason,
    };
    let sections = <(SectionKind, Vec<u8>) as PemObject>::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| not_pem(e.to_string()))?;
    if sections.is_empty() && !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(not_pem(
            "no \"-----BEGIN\" line (a DER file? convert it with openssl x509 -inform der / \
             openssl pkey -inform der)"
                .to_owned(),
        ));
    }
    Ok(sections)
}

/// What a file holds when it lacks what was looked for: `, only: KIND, KIND`.
fn found(sections: &[(SectionKind, Vec<u8>)]) -> String {
    if sections.is_empty() {
        return String::new();
    }
    let kinds: Vec<&str> = sections.iter().map(|(kind, _)| label(*kind)).collect();
    format!(", only: {}", kinds.join(", "))
}

/// The PEM label of a section kind, as it reads in the file.
fn label(kind: SectionKind) -> &'static str {
    match kind {
        SectionKind::Certificate => "\"CERTIFICATE\"",
        SectionKind::PublicKey => "\"PUBLIC KEY\"",
        SectionKind::RsaPrivateKey => "\"RSA PRIVATE KEY\"",
        SectionKind::PrivateKey => "\"PRIVATE KEY\"",
        SectionKind::EcPrivateKey => "\"EC PRIVATE KEY\"",
        SectionKind::Crl => "\"X509 CRL\"",
        SectionKind::Csr => "\"CERTIFICATE REQUEST\"",
        _ => "another kind of block",
    }
}

/// The certificate chain in `path`.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let sections = sections("certificate", path)?;
    let chain: Vec<CertificateDer<'static>> = sections
        .iter()
        .filter(|(kind, _)| *kind == SectionKind::Certificate)
        .map(|(_, der)| CertificateDer::from(der.clone()))
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
            found: found(&sections),
        });
    }
    Ok(chain)
}

/// The first private key in `path`.
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let sections = sections("key", path)?;
    let key = sections
        .iter()
        .find_map(|(kind, der)| PrivateKeyDer::from_pem(*kind, der.clone()));
    key.ok_or_else(|| {
        let encrypted = std::fs::read(path).is_ok_and(|bytes| {
            bytes
                .windows(29)
                .any(|w| w == b"BEGIN ENCRYPTED PRIVATE KEY--")
        });
        TlsError::NoKey {
            path: path.to_owned(),
            found: if encrypted {
                ", only an encrypted one: decrypt it first (openssl pkey -in KEY -out PLAIN)"
                    .to_owned()
            } else {
                found(&sections)
            },
        }
    })
}

/// Whether the TLS library can sign with `private`, and whether it is the key of the chain's
/// first certificate.
fn check_key(
    provider: &CryptoProvider,
    chain: &[CertificateDer<'static>],
    private: PrivateKeyDer<'static>,
    cert: &Path,
    key: &Path,
) -> Result<(), TlsError> {
    let signing = provider
        .key_provider
        .load_private_key(private)
        .map_err(|e| TlsError::UnsupportedKey {
            path: key.to_owned(),
            reason: e.to_string(),
        })?;
    let certified = rustls::sign::CertifiedKey::new(chain.to_vec(), signing);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(()),
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::KeyMismatch {
            cert: cert.to_owned(),
            key: key.to_owned(),
        }),
        Err(e) => Err(TlsError::Refused {
            cert: cert.to_owned(),
            key: key.to_owned(),
            reason: e.to_string(),
        }),
    }
}

/// Serves `app` on `listener` over TLS until `signal` completes: as
/// [`rp_payout::axum::serve_with_shutdown`] does in clear (HTTP/1.1, at most
/// `limits.max_connections` at once, each request head within `limits.header_read_timeout`),
/// and the TLS handshake must end within that timeout too. A failed handshake (plain HTTP
/// sent to this port, say) closes its connection and is logged at debug level.
pub(crate) async fn serve_with_shutdown(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    tls: Tls,
    signal: impl Future<Output = ()> + Send,
) {
    let handshake_time = limits.header_read_timeout;
    let acceptor = tls.acceptor;
    let handshake = move |stream: tokio::net::TcpStream| {
        let acceptor = acceptor.clone();
        async move {
            match tokio::time::timeout(handshake_time, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => Some(stream),
                Ok(Err(error)) => {
                    tracing::debug!(%error, "TLS handshake failed");
                    None
                }
                Err(_) => {
                    tracing::debug!("TLS handshake not finished in time");
                    None
                }
            }
        }
    };
    rp_payout::axum::serve_with_shutdown_via(listener, app, limits, signal, handshake).await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// A fresh directory for this test's files.
    fn dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("rp-console-tls-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A self-signed certificate for localhost and its key, as PEM.
    fn self_signed() -> (String, String) {
        let made = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .unwrap();
        (made.cert.pem(), made.signing_key.serialize_pem())
    }

    fn write(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn refused(cert: &Path, key: &Path) -> String {
        match Tls::load(cert, key) {
            Ok(_) => panic!("{} with {} was accepted", cert.display(), key.display()),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn a_certificate_and_its_key_load() {
        let dir = dir("good");
        let (cert, key) = self_signed();
        let cert = write(&dir, "cert.pem", cert.as_bytes());
        let key = write(&dir, "key.pem", key.as_bytes());
        assert!(Tls::load(&cert, &key).is_ok());
    }

    #[test]
    fn every_failure_names_its_file_and_reason() {
        let dir = dir("bad");
        let (cert_pem, key_pem) = self_signed();
        let cert = write(&dir, "cert.pem", cert_pem.as_bytes());
        let key = write(&dir, "key.pem", key_pem.as_bytes());

        let missing = dir.join("nowhere.pem");
        let text = refused(&missing, &key);
        assert!(
            text.contains("cannot read the TLS certificate file") && text.contains("nowhere.pem"),
            "{text}"
        );
        let text = refused(&cert, &missing);
        assert!(text.contains("cannot read the TLS key file"), "{text}");

        let der = write(&dir, "cert.der", &[0x30, 0x82, 0x01, 0x0a, 0x02, 0x82]);
        let text = refused(&der, &key);
        assert!(
            text.contains("cert.der is not PEM") && text.contains("DER"),
            "{text}"
        );
        let broken = write(
            &dir,
            "broken.pem",
            b"-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
        );
        let text = refused(&broken, &key);
        assert!(text.contains("broken.pem is not PEM"), "{text}");

        // The files swapped: no certificate in the one, no key in the other.
        let text = refused(&key, &key);
        assert!(
            text.contains("has no certificate") && text.contains("only: \"PRIVATE KEY\""),
            "{text}"
        );
        let text = refused(&cert, &cert);
        assert!(
            text.contains("cert.pem has no private key") && text.contains("only: \"CERTIFICATE\""),
            "{text}"
        );
        let encrypted = write(
            &dir,
            "encrypted.pem",
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n",
        );
        let text = refused(&cert, &encrypted);
        assert!(text.contains("decrypt it first"), "{text}");

        // Another certificate's key.
        let (_, other_key) = self_signed();
        let other = write(&dir, "other-key.pem", other_key.as_bytes());
        let text = refused(&cert, &other);
        assert!(
            text.contains("other-key.pem does not match the certificate in")
                && text.contains("cert.pem"),
            "{text}"
        );

        // A key block whose content is no key rustls can use.
        let junk = write(
            &dir,
            "junk-key.pem",
            b"-----BEGIN PRIVATE KEY-----\nAAECAwQFBgcICQ==\n-----END PRIVATE KEY-----\n",
        );
        let text = refused(&cert, &junk);
        assert!(text.contains("junk-key.pem is not supported"), "{text}");
    }
}
