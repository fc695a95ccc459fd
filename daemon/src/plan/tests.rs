//! Plans of small sites, checked by hand against the reference documents.

use super::*;
use crate::catalog::{Component, Service};
use crate::config::Options;
use crate::plan::ruleset::text;

fn site(text: &str) -> Site {
    let checked = crate::plan::check(text, Options::default());
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    checked.site.unwrap()
}

fn valt(extra: &str, networks: &str, cameras: usize) -> String {
    let mut text = format!(
        "[site]\nname = \"s\"\nlayout = \"valt\"\n{extra}\n[networks]\n{networks}\n[[nodes]]\nname = \"app\"\naddress = \"192.0.2.1\"\nroles = [\"application\", \"media\"]\n"
    );
    for i in 0..cameras {
        text.push_str(&format!(
            "[[cameras]]\nname = \"c{i}\"\nurl = \"rtsp://100.{}.{}.{}/s\"\n",
            64 + i / 65536,
            (i / 256) % 256,
            i % 256
        ));
    }
    text
}

fn ports_of(plan: &Plan) -> Vec<(Service, u16, bool)> {
    plan.listeners
        .iter()
        .map(|l| (l.service, l.ports.lo, l.tls))
        .collect()
}

#[test]
fn a_single_valt_server_listens_on_the_documented_ports() {
    let s = site(&valt("", "clients = [\"192.0.2.0/24\"]", 1));
    let p = plan(&s, "app").unwrap();
    assert_eq!(
        ports_of(&p),
        [
            (Service::Web, 80, false),
            (Service::Live, 1935, false),
            (Service::Downloads, 8000, false)
        ]
    );
    // No other node: no multi-server flow, no peer set.
    assert!(p.ruleset.sets.iter().all(|s| !s.name.contains("nodes")));
    assert_eq!(p.tls, Tls::None);
}

#[test]
fn ssl_moves_the_web_and_live_ports_and_asks_for_a_certificate() {
    let s = site(&valt(
        "ssl = \"enabled\"\n[features]\nadmin = true",
        "clients = [\"192.0.2.0/24\"]\nadmins = [\"192.0.2.0/28\"]",
        0,
    ));
    let p = plan(&s, "app").unwrap();
    assert_eq!(
        ports_of(&p),
        [
            (Service::WebTls, 443, true),
            (Service::LiveTls, 444, true),
            (Service::Downloads, 8000, true),
            // The admin UI there too: an admin's login never travels in clear under SSL.
            (Service::MediaAdmin, 8088, true),
            (Service::Ssh, 22, false),
        ]
    );
    assert_eq!(
        p.tls,
        Tls::SelfSigned(vec!["s".into(), "app".into(), "192.0.2.1".into()])
    );
    assert_eq!(
        p.listeners
            .iter()
            .find(|l| l.service == Service::Ssh)
            .unwrap()
            .component,
        Component::System
    );
}

#[test]
fn loopback_services_listen_on_loopback_and_get_no_rule() {
    let s = site(
        "[site]\nname = \"t\"\nlayout = \"titop\"\n[networks]\nclients = [\"192.0.2.0/24\"]\n[[nodes]]\nname = \"n\"\naddress = \"192.0.2.1\"\nroles = [\"application\", \"media\"]\n",
    );
    let p = plan(&s, "n").unwrap();
    let loopback: Vec<(Service, u16)> = p
        .listeners
        .iter()
        .filter(|l| l.bind == Bind::Loopback)
        .map(|l| (l.service, l.ports.lo))
        .collect();
    assert_eq!(
        loopback,
        [
            (Service::ConfigApi, 8089),
            (Service::NodeApi, 8087),
            (Service::EngineEvents, 7002)
        ]
    );
    let rules = text::render(&p.ruleset);
    for port in ["8089", "8087", "7002"] {
        assert!(
            !rules.contains(&format!("dport {port}")),
            "{port} must not be opened"
        );
    }
    assert!(rules.contains("tcp dport 8088 accept"));
    assert!(
        !rules.contains("dport 8085"),
        "the REST server is closed without integration"
    );
}

#[test]
fn an_override_moves_the_rule_and_the_listener() {
    let s = site(&(valt("", "clients = [\"192.0.2.0/24\"]", 0) + "[ports]\ndownloads = 8001\n"));
    let p = plan(&s, "app").unwrap();
    assert!(ports_of(&p).contains(&(Service::Downloads, 8001, false)));
    let rules = text::render(&p.ruleset);
    assert!(rules.contains("tcp dport 8001 accept comment \"downloads:"));
    assert!(!rules.contains("dport 8000"));
}

#[test]
fn the_rule_count_does_not_grow_with_cameras_or_networks() {
    let counts: Vec<usize> = [10usize, 1000, 10000]
        .iter()
        .map(|&n| {
            let nets: Vec<String> = (0..n)
                .map(|i| format!("\"2001:db8:{:x}::/48\"", i))
                .collect();
            let text = valt(
                "egress = \"documented\"",
                &format!(
                    "clients = [{}]\ncameras = [\"100.64.0.0/10\"]",
                    nets.join(", ")
                ),
                n,
            );
            let p = plan(&site(&text), "app").unwrap();
            assert_eq!(p.cameras.len(), n);
            p.ruleset.rule_count()
        })
        .collect();
    assert_eq!(counts[0], counts[1]);
    assert_eq!(counts[1], counts[2]);
}

#[test]
fn overlapping_networks_are_merged_into_one_set_element() {
    let s = site(&valt(
        "",
        "clients = [\"192.0.2.0/24\", \"192.0.2.128/25\", \"192.0.2.7\"]",
        0,
    ));
    let p = plan(&s, "app").unwrap();
    let set = p
        .ruleset
        .sets
        .iter()
        .find(|s| s.name == "clients_v4")
        .unwrap();
    assert_eq!(set.elements, vec!["192.0.2.0/24".parse().unwrap()]);
}

#[test]
fn media_nodes_reach_the_application_node_and_not_each_other() {
    let text = "[site]\nname = \"m\"\nlayout = \"valt\"\negress = \"documented\"\n[[nodes]]\nname = \"app\"\naddress = \"192.0.2.1\"\nroles = [\"application\"]\n[[nodes]]\nname = \"m1\"\naddress = \"192.0.2.2\"\nroles = [\"media\"]\n[[nodes]]\nname = \"m2\"\naddress = \"192.0.2.3\"\nroles = [\"media\"]\n";
    let s = site(text);
    let m1 = plan(&s, "m1").unwrap();
    let app_set = m1
        .ruleset
        .sets
        .iter()
        .find(|s| s.name == "application_nodes_v4")
        .unwrap();
    assert_eq!(app_set.elements, vec!["192.0.2.1/32".parse().unwrap()]);
    assert!(m1.ruleset.sets.iter().all(|s| s.name != "media_nodes_v4"));
    let app = plan(&s, "app").unwrap();
    let media = app
        .ruleset
        .sets
        .iter()
        .find(|s| s.name == "media_nodes_v4")
        .unwrap();
    // 192.0.2.2 and 192.0.2.3, aggregated.
    assert_eq!(media.elements, vec!["192.0.2.2/31".parse().unwrap()]);
    // The application node listens for the media nodes' API calls on 80 (SSL disabled).
    let rules = text::render(&app.ruleset);
    assert!(rules.contains("chain from_media_nodes {\n\t\ttcp dport 22 accept"));
    assert!(rules.contains("tcp dport 80 accept comment \"web: VALT Multiple Server Configurations / Media Server(s) to Application Server"));
}

#[test]
fn egress_stays_open_unless_documented() {
    let open = plan(
        &site(&valt("", "cameras = [\"198.51.100.0/24\"]", 1)),
        "app",
    )
    .unwrap();
    let output = open.ruleset.chain("output").unwrap();
    assert!(output.base.unwrap().accept && output.rules.is_empty());
    let closed = plan(
        &site(&valt(
            "egress = \"documented\"",
            "cameras = [\"198.51.100.0/24\"]",
            1,
        )),
        "app",
    )
    .unwrap();
    let output = closed.ruleset.chain("output").unwrap();
    assert!(!output.base.unwrap().accept);
    let to_cameras = closed.ruleset.chain("to_cameras").unwrap();
    assert_eq!(to_cameras.rules.len(), 2, "80 and 554; no ONVIF port given");
}

#[test]
fn a_diff_names_only_what_changed() {
    let before = site(&valt("", "clients = [\"192.0.2.0/24\"]", 2));
    let after = site(&valt("", "clients = [\"198.51.100.0/28\"]", 3));
    let change = diff::diff(
        &plan(&before, "app").unwrap(),
        &plan(&after, "app").unwrap(),
    );
    assert!(
        change.rules.is_empty(),
        "a network change is a set change: {:?}",
        change.rules
    );
    assert_eq!(change.elements.len(), 2);
    assert!(change.listeners.is_empty());
    assert_eq!(change.cameras.len(), 1);
    let same = diff::diff(&plan(&after, "app").unwrap(), &plan(&after, "app").unwrap());
    assert!(same.is_empty());
    assert_eq!(diff::render(&same), "No changes.\n");
}

#[test]
fn a_moved_port_is_one_listener_change() {
    let before = site(&valt("", "clients = [\"192.0.2.0/24\"]", 0));
    let after = site(&(valt("", "clients = [\"192.0.2.0/24\"]", 0) + "[ports]\nlive = 1936\n"));
    let change = diff::diff(
        &plan(&before, "app").unwrap(),
        &plan(&after, "app").unwrap(),
    );
    assert_eq!(change.listener_services(), [Service::Live]);
    assert!(
        matches!(&change.listeners[0], diff::Edit::Changed(o, n) if o.ports.lo == 1935 && n.ports.lo == 1936)
    );
    let text = diff::render(&change);
    assert!(
        text.contains("~ listener live tcp 1935 -> live tcp 1936"),
        "{text}"
    );
}

#[test]
fn cameras_push_to_554_only_on_a_node_one_of_whose_cameras_pushes() {
    let nova = |cameras: &str| {
        format!(
            "[site]\nname = \"s\"\nlayout = \"novavms\"\n[networks]\ncameras = [\"198.51.100.0/24\"]\n[[nodes]]\nname = \"gw\"\naddress = \"192.0.2.1\"\nroles = [\"application\", \"media\"]\n[[nodes]]\nname = \"gw2\"\naddress = \"192.0.2.2\"\nroles = [\"media\"]\n{cameras}"
        )
    };
    let pulled = "[[cameras]]\nname = \"a\"\nurl = \"rtsp://198.51.100.7/s\"\nnode = \"gw\"\n";
    let pushing = "[[cameras]]\nname = \"b\"\npush = true\nusername = \"b\"\npassword_file = \"/etc/b\"\nnode = \"gw2\"\n";
    let push_port = |text: &str, node: &str| {
        let p = plan(&site(text), node).unwrap();
        let listening = p.listeners.iter().any(|l| l.service == Service::CameraPush);
        let open = p
            .flows
            .iter()
            .any(|f| f.service() == Service::CameraPush && f.direction == Direction::In);
        assert_eq!(listening, open);
        open
    };
    assert!(!push_port(&nova(pulled), "gw"));
    let both = format!("{pulled}{pushing}");
    assert!(!push_port(&nova(&both), "gw"), "gw's cameras are pulled");
    assert!(push_port(&nova(&both), "gw2"));
    // A pushing camera is never dialled: no outbound RTSP port of its own.
    let p = plan(&site(&nova(&both)), "gw2").unwrap();
    assert!(
        p.flows
            .iter()
            .filter(|f| f.service() == Service::CameraRtsp)
            .all(|f| f.ports.iter().all(|p| p.lo != 0))
    );
}
