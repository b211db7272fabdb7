//! A throw-away PKI: a CA and a server certificate signed by it (rcgen), served with rustls.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub struct Pki {
    pub ca_pem: String,
    pub server_config: Arc<rustls::ServerConfig>,
    /// A client certificate the CA signed (user `falco-verify-ci`), and its key: the server
    /// takes it instead of a bearer token.
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

/// A name the server certificate carries that resolves nowhere: reachable only through a
/// proxy (the fake CONNECT proxy maps every name to the server).
pub const PROXIED_HOST: &str = "kubernetes.proxied.test";

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn make_ca(common_name: &str) -> Ca {
    let key = KeyPair::generate().expect("generate CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "falco-verify tests");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).expect("self-sign CA");
    Ca { cert, key }
}

/// PEM of a fresh CA that signed nothing the fake server uses (for a "wrong CA" kubeconfig).
pub fn unrelated_ca_pem() -> String {
    make_ca("unrelated-ca").cert.pem()
}

/// A new CA and a rustls server config whose certificate it signed. The certificate names
/// `127.0.0.1` (IP SAN) and `localhost`, or only `wrong.example.invalid` if `wrong_name`.
pub fn make_pki(wrong_name: bool) -> Pki {
    let ca = make_ca("fake-kubernetes-ca");
    let sans: Vec<String> = if wrong_name {
        vec!["wrong.example.invalid".to_string()]
    } else {
        vec![
            "127.0.0.1".to_string(),
            "localhost".to_string(),
            PROXIED_HOST.to_string(),
        ]
    };
    let key = KeyPair::generate().expect("generate server key");
    let mut params = CertificateParams::new(sans).expect("server cert params");
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "kube-apiserver");
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params
        .signed_by(&key, &ca.cert, &ca.key)
        .expect("sign server cert");

    let client_key = KeyPair::generate().expect("generate client key");
    let mut client_params = CertificateParams::new(Vec::<String>::new()).expect("client params");
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "falco-verify-ci");
    client_params.distinguished_name = dn;
    client_params.is_ca = IsCa::ExplicitNoCa;
    client_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params
        .signed_by(&client_key, &ca.cert, &ca.key)
        .expect("sign client cert");

    let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone(), ca.cert.der().clone()];
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(ca.cert.der().clone())
        .expect("CA as a client root");
    // A client certificate is asked for but optional: token clients are unaffected.
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .expect("client verifier");
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key_der)
        .expect("server certificate");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Pki {
        ca_pem: ca.cert.pem(),
        server_config: Arc::new(config),
        client_cert_pem: client_cert.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}
