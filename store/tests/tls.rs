//! A Redis reached over TLS (`rediss://`, as ElastiCache with encryption in transit serves it):
//! a redis-server of the test's own with a certificate from a CA made here. Until that CA is
//! trusted (`SSL_CERT_FILE`, read with the system's roots) the store refuses to connect; once it
//! is, records are written and read back over the encrypted connection.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use coderun_schema::messages::{RunRecord, VERSION};
use coderun_schema::names::Names;
use coderun_schema::run::Run;
use coderun_store::RunStore;

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs (scripts/test.sh installs it)");
    assert!(status.success(), "openssl {args:?}");
}

/// A CA, and a certificate it signed for 127.0.0.1 and localhost.
fn certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=coderun test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("write");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ],
    );
}

struct TlsRedis(Child);

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis(dir: &Path, port: u16) -> TlsRedis {
    let child = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--tls-port", &port.to_string(), "--tls-auth-clients", "no"])
        .args([
            "--tls-cert-file",
            "server.pem",
            "--tls-key-file",
            "server.key",
        ])
        .args(["--tls-ca-cert-file", "ca.pem", "--dir", "."])
        .current_dir(dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server runs (scripts/test.sh installs it)");
    let redis = TlsRedis(child);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return redis;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("redis-server never listened on its TLS port");
}

#[tokio::test]
async fn records_go_over_tls_once_the_servers_ca_is_trusted() {
    let dir = std::env::temp_dir().join(format!("coderun-redis-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a folder");
    certificates(&dir);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let _redis = start_redis(&dir, port);
    let url = format!("rediss://127.0.0.1:{port}");
    let names = Names::new(format!("test_tls_{}", std::process::id())).expect("a prefix");
    let ttl = Duration::from_secs(60);

    let untrusted = RunStore::connect(&url, names.clone(), ttl).await;
    assert!(
        untrusted.is_err(),
        "connected to a server whose certificate no trusted CA signed"
    );

    std::env::set_var("SSL_CERT_FILE", dir.join("ca.pem"));
    let store = RunStore::connect(&url, names, ttl)
        .await
        .expect("connects over TLS once its CA is trusted");
    let record = RunRecord {
        v: VERSION,
        tenant: "acme".to_owned(),
        run: Run::queued(
            "run_tls".to_owned(),
            "python".to_owned(),
            time::OffsetDateTime::now_utc(),
        ),
        submission: None,
        traceparent: None,
        job_sequence: None,
    };
    assert!(store.create(&record).await.expect("create"));
    let stored = store
        .get("run_tls")
        .await
        .expect("read")
        .expect("the record");
    assert_eq!(stored.run.id, "run_tls");
    let _ = std::fs::remove_dir_all(&dir);
}
