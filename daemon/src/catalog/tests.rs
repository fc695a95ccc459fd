//! The catalog's own invariants.

use super::*;

#[test]
fn one_port_per_service_in_each_layout() {
    for layout in Layout::ALL {
        for row in rows(layout).filter(|r| r.in_production()) {
            let (ports, proto) = default_ports(layout, row.service).unwrap();
            // Outbound camera and system rows may share a service over several ports (DNS on UDP
            // and TCP, updates on 80 and 443); a listener's service has one port.
            if matches!(row.to, Endpoint::Node(_)) {
                assert_eq!(
                    (row.ports, row.proto),
                    (ports, proto),
                    "{layout}: {:?}",
                    row.service
                );
            }
        }
    }
}

#[test]
fn listening_services_are_served_or_honestly_not() {
    for layout in Layout::ALL {
        for service in listener_services(layout) {
            assert_ne!(
                service.component(),
                Component::Outbound,
                "{layout}: {service} listens but is outbound-only"
            );
        }
    }
}

#[test]
fn every_row_cites_where_it_came_from() {
    for layout in Layout::ALL {
        for row in rows(layout) {
            assert!(
                !row.references.is_empty(),
                "{layout}: {:?} cites nothing",
                row.service
            );
            assert!(!row.purpose.is_empty());
            assert!(row.ports.lo <= row.ports.hi && row.ports.lo > 0);
        }
    }
}

#[test]
fn service_names_round_trip() {
    for s in Service::ALL {
        assert_eq!(Service::from_name(s.name()), Some(s));
    }
    for l in Layout::ALL {
        assert_eq!(Layout::from_name(l.name()), Some(l));
    }
}

#[test]
fn ranges_move_as_a_whole() {
    assert_eq!(
        Ports::range(49152, 49252).moved_to(40000),
        Some(Ports::range(40000, 40100))
    );
    assert_eq!(Ports::range(49152, 49252).moved_to(65500), None);
    assert!(Ports::one(80).overlaps(Ports::range(1, 80)));
    assert!(!Ports::one(81).overlaps(Ports::range(1, 80)));
}

#[test]
fn loopback_rows_show_as_loopback_only() {
    let row = rows(Layout::Titop)
        .find(|r| r.service == Service::ConfigApi)
        .unwrap();
    assert_eq!(row.condition_text(), "loopback only");
    assert_eq!(row.condition_words(), vec!["loopback_only".to_string()]);
}
