//! Kafka with TLS and SASL for the security tests: a throwaway PKI made
//! with the `openssl` CLI (a CA, a broker certificate for 127.0.0.1 and
//! localhost, a client certificate whose key is encrypted, and a second,
//! unrelated CA), and one Apache Kafka node with three client listeners:
//! `PLAINTEXT` (the test's own clients, inter-broker and controller
//! traffic), `SASL_SSL` with SCRAM-SHA-512, and `SSL` with client
//! certificates required (mutual TLS). The broker reads PEM files
//! (`ssl.keystore.type=PEM`, `ssl.truststore.type=PEM`); SCRAM users are
//! added when the log dir is formatted.

// Each test crate uses a part of this module.
#![allow(dead_code)]

use crate::broker::{free_port, kafka_properties, Broker};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The certificates and keys of a test, as PEM files in one folder.
pub struct Pki {
    /// The CA that signed the broker and client certificates.
    pub ca: PathBuf,
    /// A CA that signed nothing the broker presents.
    pub other_ca: PathBuf,
    /// The broker's key, certificate and CA chain in one file (Kafka's
    /// PEM keystore).
    pub broker_keystore: PathBuf,
    /// The client certificate (CN=weir-client, signed by [`Pki::ca`]).
    pub client_cert: PathBuf,
    /// The client key, PKCS#8 encrypted with the key password.
    pub client_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl (is the openssl CLI installed?)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Concatenates `parts` (files of `dir`) into `dir/name`.
fn concat(dir: &Path, name: &str, parts: &[&str]) -> PathBuf {
    let mut text = String::new();
    for p in parts {
        text += &std::fs::read_to_string(dir.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write PEM");
    path
}

impl Pki {
    /// Generates every file in `dir` (P-256 keys, valid two days); the
    /// client key is encrypted with `key_password`.
    pub fn generate(dir: &Path, key_password: &str) -> Pki {
        std::fs::create_dir_all(dir).expect("pki dir");
        const EC: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        for ca in ["ca", "other-ca"] {
            let (key, pem, subj) = (
                format!("{ca}.key"),
                format!("{ca}.pem"),
                format!("/CN=weir-test-{ca}"),
            );
            let mut args = vec!["req", "-x509", "-new", "-nodes"];
            args.extend(EC);
            args.extend(["-keyout", &key, "-out", &pem, "-days", "2", "-subj", &subj]);
            args.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
            args.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
            openssl(dir, &args);
        }
        std::fs::write(
            dir.join("broker.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n\
             keyUsage=critical,digitalSignature,keyEncipherment\n",
        )
        .expect("broker.ext");
        std::fs::write(
            dir.join("client.ext"),
            "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n",
        )
        .expect("client.ext");
        for (name, cn, serial) in [
            ("broker", "/CN=localhost", "2"),
            ("client", "/CN=weir-client", "3"),
        ] {
            let (key, csr, crt, ext) = (
                format!("{name}.raw.key"),
                format!("{name}.csr"),
                format!("{name}.crt"),
                format!("{name}.ext"),
            );
            let mut args = vec!["req", "-new", "-nodes"];
            args.extend(EC);
            args.extend(["-keyout", &key, "-out", &csr, "-subj", cn]);
            openssl(dir, &args);
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-set_serial",
                    serial,
                    "-days",
                    "2",
                    "-out",
                    &crt,
                    "-extfile",
                    &ext,
                ],
            );
        }
        let pass = format!("pass:{key_password}");
        openssl(
            dir,
            &[
                "pkcs8",
                "-topk8",
                "-in",
                "client.raw.key",
                "-out",
                "client.key",
                "-passout",
                &pass,
            ],
        );
        Pki {
            ca: dir.join("ca.pem"),
            other_ca: dir.join("other-ca.pem"),
            broker_keystore: concat(
                dir,
                "broker-keystore.pem",
                &["broker.raw.key", "broker.crt", "ca.pem"],
            ),
            client_cert: dir.join("client.crt"),
            client_key: dir.join("client.key"),
        }
    }
}

/// A SCRAM-SHA-512 user the broker knows from its format.
pub struct ScramUser<'a> {
    /// User name.
    pub name: &'a str,
    /// Password.
    pub password: &'a str,
}

/// One Kafka node with `PLAINTEXT`, `SASL_SSL` (SCRAM-SHA-512) and `SSL`
/// (client certificates required) listeners on 127.0.0.1.
pub struct SecureKafka {
    /// The node; its `port` and `client_config` are the PLAINTEXT listener.
    pub broker: Broker,
    /// The SASL_SSL listener's port.
    pub sasl_ssl_port: u16,
    /// The SSL (mutual TLS) listener's port.
    pub ssl_port: u16,
}

/// Replaces the one line of `props` that starts with `key=`.
fn set_line(props: &str, key: &str, value: &str) -> String {
    let prefix = format!("{key}=");
    assert_eq!(
        props.lines().filter(|l| l.starts_with(&prefix)).count(),
        1,
        "one `{key}` line in the broker properties"
    );
    props
        .lines()
        .map(|l| {
            if l.starts_with(&prefix) {
                format!("{prefix}{value}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

impl SecureKafka {
    /// Formats (adding `users`) and starts the node in a folder of `dir`,
    /// with the broker keystore and the CA of `pki`; returns once it
    /// answers metadata on PLAINTEXT.
    pub fn start(dir: &Path, pki: &Pki, users: &[ScramUser<'_>]) -> SecureKafka {
        let (port, controller, sasl_ssl_port, ssl_port) =
            (free_port(), free_port(), free_port(), free_port());
        let home = dir.join(format!("kafka-{port}"));
        std::fs::create_dir_all(&home).expect("kafka home");
        let mut props = kafka_properties(port, controller, &home.join("data"));
        props = set_line(
            &props,
            "listeners",
            &format!(
                "PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{sasl_ssl_port},\
                 SSL://127.0.0.1:{ssl_port},CONTROLLER://127.0.0.1:{controller}"
            ),
        );
        props = set_line(
            &props,
            "advertised.listeners",
            &format!(
                "PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{sasl_ssl_port},SSL://127.0.0.1:{ssl_port}"
            ),
        );
        props = set_line(
            &props,
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL,CONTROLLER:PLAINTEXT",
        );
        props += &format!(
            "ssl.keystore.type=PEM\n\
             ssl.keystore.location={}\n\
             ssl.truststore.type=PEM\n\
             ssl.truststore.location={}\n\
             sasl.enabled.mechanisms=SCRAM-SHA-512\n\
             listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;\n\
             listener.name.ssl.ssl.client.auth=required\n",
            pki.broker_keystore.display(),
            pki.ca.display()
        );
        let path = home.join("server.properties");
        std::fs::write(&path, props).expect("server.properties");
        let mut format_args = Vec::new();
        for u in users {
            format_args.push("--add-scram".to_owned());
            format_args.push(format!(
                "SCRAM-SHA-512=[name={},password={}]",
                u.name, u.password
            ));
        }
        let broker = Broker::start_kafka_with(&home, &path, port, &format_args);
        SecureKafka {
            broker,
            sasl_ssl_port,
            ssl_port,
        }
    }
}
