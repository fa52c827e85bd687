//! A Redis reached over TLS (`rediss://`, as ElastiCache with encryption in transit serves it):
//! redis-servers of the test's own with certificates from a CA made here. Until that CA is
//! trusted (`SSL_CERT_FILE`, read instead of the system's CAs) the store refuses the server's
//! certificate; once it is, records are written and read back over the encrypted connection,
//! and a certificate the CA signed for another name is still refused.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use coderun_schema::names::Names;
use coderun_store::RunStore;

mod support;

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

/// A CA, a certificate it signed for 127.0.0.1 and localhost (`server`), and one it signed for
/// another name only (`elsewhere`).
fn certificates(dir: &Path) {
    let ca = "-x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=coderun-test-CA -keyout ca.key -out ca.pem";
    openssl(
        dir,
        &["req"].into_iter().chain(ca.split(' ')).collect::<Vec<_>>(),
    );
    for (name, names) in [
        ("server", "IP:127.0.0.1,DNS:localhost"),
        ("elsewhere", "DNS:elsewhere.invalid"),
    ] {
        std::fs::write(
            dir.join(format!("{name}.ext")),
            format!("subjectAltName={names}\n"),
        )
        .expect("write");
        let request = format!(
            "req -newkey rsa:2048 -nodes -subj /CN=coderun-test -keyout {name}.key -out {name}.csr"
        );
        openssl(dir, &request.split(' ').collect::<Vec<_>>());
        let sign = format!(
            "x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
             -extfile {name}.ext -out {name}.pem"
        );
        openssl(dir, &sign.split_whitespace().collect::<Vec<_>>());
    }
}

struct TlsRedis(Child);

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// A redis-server serving TLS only, on `port` of 127.0.0.1, with the certificate `name`.
fn start_redis(dir: &Path, port: u16, name: &str) -> TlsRedis {
    let options = format!(
        "--port 0 --bind 127.0.0.1 --appendonly no --tls-port {port} --tls-auth-clients no \
         --tls-cert-file {name}.pem --tls-key-file {name}.key --tls-ca-cert-file ca.pem --dir ."
    );
    let child = Command::new("redis-server")
        .args(options.split_whitespace())
        .args(["--save", ""])
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

/// Why connecting to `url` failed, or `None` when it did not.
async fn refusal(url: &str, names: &Names) -> Option<String> {
    RunStore::connect(url, names.clone(), Duration::from_secs(60))
        .await
        .err()
        .map(|error| format!("{error:?}"))
}

#[tokio::test]
async fn records_go_over_tls_once_the_servers_ca_is_trusted() {
    let dir = std::env::temp_dir().join(format!("coderun-redis-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a folder");
    certificates(&dir);
    let port = free_port();
    let _redis = start_redis(&dir, port, "server");
    let url = format!("rediss://127.0.0.1:{port}");
    let names = Names::new(format!("test_tls_{}", std::process::id())).expect("a prefix");

    let untrusted = refusal(&url, &names).await;
    assert!(
        untrusted
            .as_ref()
            .is_some_and(|error| error.contains("UnknownIssuer")),
        "a certificate no trusted CA signed: {untrusted:?}"
    );

    std::env::set_var("SSL_CERT_FILE", dir.join("ca.pem"));
    let other_port = free_port();
    let _elsewhere = start_redis(&dir, other_port, "elsewhere");
    let wrong_name = refusal(&format!("rediss://127.0.0.1:{other_port}"), &names).await;
    assert!(
        wrong_name
            .as_ref()
            .is_some_and(|error| error.contains("not valid for name")),
        "a trusted certificate for another name: {wrong_name:?}"
    );

    let store = RunStore::connect(&url, names, Duration::from_secs(60))
        .await
        .expect("connects over TLS once its CA is trusted");
    let record = support::record("run_tls");
    assert!(store.create(&record).await.expect("create"));
    let stored = store
        .get("run_tls")
        .await
        .expect("read")
        .expect("the record");
    assert_eq!(stored.run.id, "run_tls");
    let _ = std::fs::remove_dir_all(&dir);
}
