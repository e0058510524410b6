//! Patroni (Debian's package, with PostgreSQL) uses Praetor as its DCS: two nodes elect a
//! leader and fail over when it dies. The scenario is `tests/patroni/failover.sh`, also
//! runnable by hand; `scripts/deps.sh` installs patroni and postgresql.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn patroni_elects_and_fails_over() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("bash")
        .arg(root.join("tests/patroni/failover.sh"))
        .arg(integration_tests::harness::praetor_bin())
        .output()
        .expect("run the Patroni scenario");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("PATRONI-FAILOVER-OK"),
        "Patroni scenario failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
