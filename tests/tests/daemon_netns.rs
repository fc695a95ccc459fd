//! The daemon in a network namespace, with nftables: the live table follows the site file.
//!
//! Privileged: skipped with a reason unless run as root.

use std::time::Duration;

use sited_tests::daemon::Daemon;
use sited_tests::netns::Lab;
use sited_tests::require_root;

const T: Duration = Duration::from_secs(30);

fn site(admins: &str) -> String {
    format!(
        "[site]\nname = \"ns\"\nlayout = \"valt\"\n\n[networks]\nclients = [\"192.0.2.0/24\"]\nadmins = [\"{admins}\"]\n\n[features]\nadmin = true\n\n[[nodes]]\nname = \"app\"\naddress = \"192.0.2.1\"\nroles = [\"application\", \"media\"]\n"
    )
}

fn table(lab: &Lab) -> String {
    String::from_utf8_lossy(
        &lab.try_exec(&lab.node, &["nft", "list", "table", "inet", "sited"])
            .stdout,
    )
    .into_owned()
}

#[test]
fn the_live_table_follows_the_site_file() {
    require_root!("nft");
    let lab = Lab::new(&[]);
    let d = Daemon::start_in(
        &lab.node,
        "netns",
        &site("198.51.100.0/24"),
        &["--node", "app"],
    );
    d.wait_for("the first table", T, || {
        table(&lab).contains("198.51.100.0/24")
    });
    // The web listener is up in the namespace, on the real port 80.
    let health = lab.try_exec(&lab.node, &["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/80 && printf 'GET /api/v1/health HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3"]);
    assert!(
        String::from_utf8_lossy(&health.stdout).contains("\"site\":\"ns\""),
        "{}",
        d.log()
    );

    std::fs::write(d.config(), site("203.0.113.0/24")).unwrap();
    d.wait_for("the new admin network in the live table", T, || {
        let t = table(&lab);
        t.contains("203.0.113.0/24") && !t.contains("198.51.100.0/24")
    });

    let before = table(&lab);
    std::fs::write(d.config(), site("not-a-network")).unwrap();
    d.wait_for("the invalid edit to be logged", T, || {
        d.log().contains("error[bad-cidr]")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        table(&lab),
        before,
        "an invalid edit leaves the live table alone"
    );
}
