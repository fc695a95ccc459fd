//! Validation: from the file's types to a [`Site`], reporting every problem with a hint.
//!
//! Runs after the shape check, so the file's types are filled in. Each check adds diagnostics and
//! goes on; a [`Site`] is returned only when no error was found. Warnings never stop a site.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use super::camera;
use super::diagnostic::{Code, Diagnostic, Severity, did_you_mean, quoted_list};
use super::file::{self, Role, SiteFile};
use super::locate::{Locator, Seg};
use super::site::{Device, Features, Node, Site, TlsFiles, User};
use crate::base::Error;
use crate::catalog::{self, Layout, Roles, Service, Zone};

/// What to check beyond the file itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Also check the files the appliance reads at run time (`--on-node`).
    pub on_node: bool,
}

/// One application node serves about this many cameras (VALT: "more than 50 cameras").
pub const CAMERAS_PER_NODE: usize = 50;

/// Checks a shaped file. Returns the site if there was no error, and every diagnostic.
pub fn validate(
    file: SiteFile,
    at: &Locator<'_, '_>,
    options: Options,
    rules: &[super::Rule],
) -> (Option<Site>, Vec<Diagnostic>) {
    let mut v = Validator {
        at,
        found: Vec::new(),
    };
    let site = v.site(file, options);
    for rule in rules {
        v.found.extend(rule(&site, at));
    }
    let failed = v.found.iter().any(|d| d.severity == Severity::Error);
    (if failed { None } else { Some(site) }, v.found)
}

struct Validator<'l, 'd, 'i> {
    at: &'l Locator<'d, 'i>,
    found: Vec<Diagnostic>,
}

/// Whether a name is safe in URLs, file names and firewall comments.
pub fn is_good_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() <= 63
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Validator<'_, '_, '_> {
    fn push(&mut self, d: Diagnostic) {
        self.found.push(d);
    }

    fn name(&mut self, name: &str, path: &[Seg<'_>], what: &str) {
        if !is_good_name(name) {
            self.push(
                Diagnostic::error(
                    Code::BadName,
                    self.at.value(path),
                    format!("{what} name \"{name}\" cannot be used"),
                )
                .help("use 1 to 63 letters, digits, `-` and `_`, starting with a letter or digit"),
            );
        }
    }

    fn site(&mut self, file: SiteFile, options: Options) -> Site {
        self.name(
            &file.site.name,
            &[Seg::Key("site"), Seg::Key("name")],
            "site",
        );
        let layout = file.site.layout;
        let zones = self.networks(&file.networks);
        let nodes = self.nodes(&file.nodes);
        let tls = self.tls(file.tls.as_ref(), options);
        let features = Features {
            admin: file.features.admin,
            mobile: file.features.mobile,
            license: file.features.license,
            integration: file.features.integration,
        };
        let ports = self.ports(layout, &file.ports);
        let users = self.users(&file.users);
        let devices = self.devices(&file.mobile_devices, &file.cameras, options);
        let cameras = camera::check_all(
            &file.cameras,
            &nodes,
            layout,
            self.at,
            &mut self.found,
            options,
        );
        let site = Site {
            name: file.site.name.clone(),
            layout,
            ssl: file.site.ssl,
            egress: file.site.egress,
            cors_origins: self.origins(&file.site.cors_origins),
            tls,
            zones,
            features,
            nodes,
            cameras,
            ports,
            users,
            devices,
            recording: file.recording,
        };
        self.warnings(&site, &file);
        site
    }

    fn origins(&mut self, list: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for (i, text) in list.iter().enumerate() {
            let path = [Seg::Key("site"), Seg::Key("cors_origins"), Seg::Index(i)];
            match parse_origin(text) {
                Ok(origin) => out.push(origin),
                Err(help) => self.push(
                    Diagnostic::error(
                        Code::BadOrigin,
                        self.at.value(&path),
                        format!("\"{text}\" in `site.cors_origins` is not an origin"),
                    )
                    .help(help),
                ),
            }
        }
        out
    }

    fn networks(&mut self, n: &file::Networks) -> BTreeMap<Zone, Vec<IpNet>> {
        let lists = [
            (Zone::Clients, &n.clients),
            (Zone::Admins, &n.admins),
            (Zone::Cameras, &n.cameras),
            (Zone::Mobile, &n.mobile),
        ];
        let mut zones = BTreeMap::new();
        for (zone, list) in lists {
            let mut nets = Vec::new();
            for (i, text) in list.iter().enumerate() {
                let path = [Seg::Key("networks"), Seg::Key(zone.name()), Seg::Index(i)];
                match parse_cidr(text) {
                    Ok(net) => nets.push(net),
                    Err(help) => self.push(
                        Diagnostic::error(
                            Code::BadCidr,
                            self.at.value(&path),
                            format!("\"{text}\" in `networks.{}` is not a network", zone.name()),
                        )
                        .help(help.to_string()),
                    ),
                }
            }
            zones.insert(zone, nets);
        }
        zones
    }

    fn nodes(&mut self, entries: &[file::NodeEntry]) -> Vec<Node> {
        let mut nodes = Vec::new();
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut addresses: HashMap<IpAddr, usize> = HashMap::new();
        for (i, entry) in entries.iter().enumerate() {
            let path = |key| [Seg::Key("nodes"), Seg::Index(i), Seg::Key(key)];
            self.name(&entry.name, &path("name"), "node");
            if let Some(first) = names.insert(&entry.name, i) {
                self.push(
                    Diagnostic::error(
                        Code::DuplicateNode,
                        self.at.value(&path("name")),
                        format!("two nodes are named \"{}\"", entry.name),
                    )
                    .related(
                        self.at
                            .value(&[Seg::Key("nodes"), Seg::Index(first), Seg::Key("name")]),
                        "first named here",
                    )
                    .help("give every node its own name"),
                );
            }
            let address = match entry.address.parse::<IpAddr>() {
                Ok(a) => {
                    if let Some(first) = addresses.insert(a, i) {
                        self.push(
                            Diagnostic::error(
                                Code::DuplicateAddress,
                                self.at.value(&path("address")),
                                format!(
                                    "nodes \"{}\" and \"{}\" have the same address {a}",
                                    entries[first].name, entry.name
                                ),
                            )
                            .related(
                                self.at.value(&[
                                    Seg::Key("nodes"),
                                    Seg::Index(first),
                                    Seg::Key("address"),
                                ]),
                                "first used here",
                            )
                            .help("every node needs its own address"),
                        );
                    }
                    a
                }
                Err(_) => {
                    let help = if entry.address.contains('/') {
                        "a node address is one IP address, without a prefix length: \"192.0.2.10\""
                    } else {
                        "write an IPv4 or IPv6 address, such as \"192.0.2.10\" or \"2001:db8::10\"; host names are not allowed"
                    };
                    self.push(
                        Diagnostic::error(
                            Code::BadAddress,
                            self.at.value(&path("address")),
                            format!(
                                "node \"{}\" has address \"{}\", which is not an IP address",
                                entry.name, entry.address
                            ),
                        )
                        .help(help.to_string()),
                    );
                    IpAddr::from([0, 0, 0, 0])
                }
            };
            let roles = Roles {
                application: entry.roles.contains(&Role::Application),
                media: entry.roles.contains(&Role::Media),
            };
            if entry.roles.is_empty() {
                self.push(
                    Diagnostic::error(
                        Code::NoRoles,
                        self.at.value(&path("roles")),
                        format!("node \"{}\" has no roles", entry.name),
                    )
                    .help("give it `roles = [\"media\"]`, `[\"application\"]` or both"),
                );
            }
            nodes.push(Node {
                name: entry.name.clone(),
                address,
                roles,
            });
        }
        let apps: Vec<usize> = (0..nodes.len())
            .filter(|&i| nodes[i].roles.application)
            .collect();
        match apps.as_slice() {
            [_] => {}
            [] => {
                let span = self.at.key(&[Seg::Key("nodes")]);
                self.push(
                    Diagnostic::error(Code::ApplicationCount, span, "no node has the application role")
                        .help("give exactly one node `roles = [\"application\"]` (or `[\"application\", \"media\"]` on a single server)"),
                );
            }
            [first, rest @ ..] => {
                for &i in rest {
                    let second = &nodes[i].name;
                    self.push(
                        Diagnostic::error(
                            Code::ApplicationCount,
                            self.at.value(&[Seg::Key("nodes"), Seg::Index(i), Seg::Key("roles")]),
                            format!("node \"{second}\" is a second application node; a site has exactly one"),
                        )
                        .related(self.at.value(&[Seg::Key("nodes"), Seg::Index(*first), Seg::Key("roles")]), "the first application node")
                        .help(format!("make \"{second}\" a media node: `roles = [\"media\"]`")),
                    );
                }
            }
        }
        nodes
    }

    fn users(&mut self, entries: &[file::UserEntry]) -> Vec<User> {
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut users = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let path = |key| [Seg::Key("users"), Seg::Index(i), Seg::Key(key)];
            self.name(&entry.name, &path("name"), "user");
            if let Some(first) = names.insert(&entry.name, i) {
                self.push(
                    Diagnostic::error(
                        Code::DuplicateUser,
                        self.at.value(&path("name")),
                        format!("two users are named \"{}\"", entry.name),
                    )
                    .related(
                        self.at
                            .value(&[Seg::Key("users"), Seg::Index(first), Seg::Key("name")]),
                        "first named here",
                    )
                    .help("give every user their own name"),
                );
            }
            let parsed = argon2::PasswordHash::new(&entry.password_hash);
            if !parsed
                .as_ref()
                .is_ok_and(|h| h.algorithm.as_str().starts_with("argon2"))
            {
                self.push(
                    Diagnostic::error(Code::BadPasswordHash, self.at.value(&path("password_hash")), format!("the password of user \"{}\" is not an argon2 hash", entry.name))
                        .help("never write the password itself: run `sited hash-password` and paste the `$argon2id$…` line it prints"),
                );
                continue;
            }
            users.push(User {
                name: entry.name.clone(),
                role: entry.role,
                password_hash: entry.password_hash.clone(),
            });
        }
        users
    }

    fn devices(
        &mut self,
        entries: &[file::MobileDevice],
        cameras: &[file::CameraEntry],
        options: Options,
    ) -> Vec<Device> {
        let mut seen: HashMap<&str, Option<usize>> =
            cameras.iter().map(|c| (c.name.as_str(), None)).collect();
        let mut out = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let path = |key| [Seg::Key("mobile_devices"), Seg::Index(i), Seg::Key(key)];
            self.name(&entry.name, &path("name"), "mobile device");
            if let Some(first) = seen.insert(&entry.name, Some(i)) {
                let (related, what) = match first {
                    Some(j) => (
                        self.at.value(&[
                            Seg::Key("mobile_devices"),
                            Seg::Index(j),
                            Seg::Key("name"),
                        ]),
                        "another device",
                    ),
                    None => (
                        cameras
                            .iter()
                            .position(|c| c.name == entry.name)
                            .and_then(|j| {
                                self.at.value(&[
                                    Seg::Key("cameras"),
                                    Seg::Index(j),
                                    Seg::Key("name"),
                                ])
                            }),
                        "a camera",
                    ),
                };
                self.push(
                    Diagnostic::error(Code::DuplicateDevice, self.at.value(&path("name")), format!("mobile device \"{}\" has the name of {what}", entry.name))
                        .related(related, "first named here")
                        .help("a device's stream appears under its name, beside the cameras: give it its own name"),
                );
            }
            let key_file = PathBuf::from(&entry.key_file);
            if options.on_node {
                self.found
                    .extend(missing_file(&key_file, self.at.value(&path("key_file"))));
            }
            out.push(Device {
                name: entry.name.clone(),
                key_file,
            });
        }
        out
    }

    fn tls(&mut self, tls: Option<&file::TlsSection>, options: Options) -> Option<TlsFiles> {
        let tls = tls?;
        match (&tls.certificate, &tls.key) {
            (Some(certificate), Some(key)) => {
                let files = TlsFiles {
                    certificate: PathBuf::from(certificate),
                    key: PathBuf::from(key),
                };
                if options.on_node {
                    for (field, path) in [("certificate", &files.certificate), ("key", &files.key)]
                    {
                        let span = self.at.value(&[Seg::Key("tls"), Seg::Key(field)]);
                        self.found.extend(missing_file(path, span));
                    }
                }
                Some(files)
            }
            (None, None) => None,
            (given, _) => {
                let (has, lacks) = if given.is_some() {
                    ("certificate", "key")
                } else {
                    ("key", "certificate")
                };
                self.push(
                    Diagnostic::error(Code::TlsIncomplete, self.at.entry(&[Seg::Key("tls"), Seg::Key(has)]), format!("[tls] gives a {has} but no {lacks}"))
                        .help("give both `certificate` and `key`, or neither to have each node generate a self-signed certificate".to_string()),
                );
                None
            }
        }
    }

    fn ports(
        &mut self,
        layout: Layout,
        overrides: &BTreeMap<String, file::PortNumber>,
    ) -> BTreeMap<Service, u16> {
        let movable = catalog::listener_services(layout);
        let mut ports = BTreeMap::new();
        for (key, &file::PortNumber(port)) in overrides {
            let path = [Seg::Key("ports"), Seg::Key(key)];
            let service = Service::from_name(key).filter(|s| movable.contains(s));
            let Some(service) = service else {
                let names: Vec<&str> = movable.iter().map(|s| s.name()).collect();
                let help = match did_you_mean(key, names.iter().copied()) {
                    Some(m) => format!(
                        "did you mean `{m}`? Layout {layout} has {}",
                        quoted_list(names.iter().copied())
                    ),
                    None => format!("layout {layout} has {}", quoted_list(names.iter().copied())),
                };
                let why = if Service::from_name(key).is_some() {
                    format!("is not a listening service of layout {layout}")
                } else {
                    "is not a service".to_string()
                };
                self.push(
                    Diagnostic::error(
                        Code::UnknownService,
                        self.at.key(&path),
                        format!("`{key}` in [ports] {why}"),
                    )
                    .help(help),
                );
                continue;
            };
            let width = catalog::default_ports(layout, service).map_or(0, |(p, _)| p.hi - p.lo);
            if u32::from(port) + u32::from(width) > 65535 {
                self.push(
                    Diagnostic::error(
                        Code::OutOfRange,
                        self.at.value(&path),
                        format!("`ports.{key}` is out of range"),
                    )
                    .help(format!("`{key}` takes a port from 1 to {}", 65535 - width)),
                );
                continue;
            }
            ports.insert(service, port);
        }
        ports
    }

    fn warnings(&mut self, site: &Site, file: &SiteFile) {
        let needs = [
            (
                Zone::Clients,
                true,
                "clients reach the web UI and live video from it",
            ),
            (
                Zone::Admins,
                site.features.admin,
                "`admin = true` opens the administration ports to it",
            ),
            (
                Zone::Mobile,
                site.features.mobile,
                "`mobile = true` lets mobile devices stream from it",
            ),
            (
                Zone::Cameras,
                !site.cameras.is_empty() && site.egress == file::Egress::Documented,
                "with `egress = \"documented\"` cameras are reached only there",
            ),
        ];
        for (zone, needed, why) in needs {
            if needed && site.zone(zone).is_empty() {
                let at = self
                    .at
                    .key(&[Seg::Key("networks"), Seg::Key(zone.name())])
                    .or_else(|| self.at.key(&[Seg::Key("networks")]));
                self.push(
                    Diagnostic::warning(
                        Code::EmptyZone,
                        at,
                        format!(
                            "zone `{}` is empty, so nobody is let in through it",
                            zone.name()
                        ),
                    )
                    .help(format!(
                        "{why}; add its networks as `networks.{} = [\"<CIDR>\", …]`",
                        zone.name()
                    )),
                );
            }
        }
        if site.egress == file::Egress::Documented {
            for (i, cam) in site.cameras.iter().enumerate() {
                let Ok(ip) = cam.host.parse::<IpAddr>() else {
                    continue;
                };
                if !site.zone(Zone::Cameras).iter().any(|n| n.contains(&ip)) {
                    self.push(
                        Diagnostic::warning(
                            Code::CameraOutsideZone,
                            self.at.value(&[Seg::Key("cameras"), Seg::Index(i), Seg::Key("url")]),
                            format!("camera \"{}\" at {ip} is outside the `cameras` zone, so `egress = \"documented\"` blocks it", cam.name),
                        )
                        .help("add its network to `networks.cameras`"),
                    );
                }
            }
        }
        for node in &site.nodes {
            let count = site.cameras_of(&node.name).count();
            if count > CAMERAS_PER_NODE {
                let i = site
                    .nodes
                    .iter()
                    .position(|n| n.name == node.name)
                    .unwrap_or(0);
                self.push(
                    Diagnostic::warning(
                        Code::NodeCapacity,
                        self.at.value(&[Seg::Key("nodes"), Seg::Index(i), Seg::Key("name")]),
                        format!("node \"{}\" ingests {count} cameras; one server is documented for about {CAMERAS_PER_NODE}", node.name),
                    )
                    .help("add a media node: cameras without `node` are spread over the media nodes"),
                );
            }
        }
        self.unused(site, file);
    }

    fn unused(&mut self, site: &Site, file: &SiteFile) {
        let layout = site.layout;
        let mut unused = |present: bool, path: &[Seg<'_>], message: String, help: &str| {
            if present {
                let span = self.at.entry(path);
                self.found
                    .push(Diagnostic::warning(Code::Unused, span, message).help(help.to_string()));
            }
        };
        unused(
            file.tls.is_some() && site.ssl == file::Ssl::Disabled && layout != Layout::Novavms,
            &[Seg::Key("tls")],
            "[tls] is unused while `ssl = \"disabled\"`".to_string(),
            "set `ssl = \"enabled\"` in [site], or remove [tls]",
        );
        let has = |s: Service| catalog::rows(layout).any(|r| r.service == s);
        unused(
            site.features.integration
                && !catalog::rows(layout)
                    .any(|r| r.when.contains(&catalog::Condition::Integration)),
            &[Seg::Key("features"), Seg::Key("integration")],
            format!("`integration = true` has no effect in layout {layout}"),
            "only Ti Top documents a REST server that opens for integration",
        );
        unused(
            site.features.mobile
                && !catalog::rows(layout).any(|r| r.from == catalog::Endpoint::Zone(Zone::Mobile)),
            &[Seg::Key("features"), Seg::Key("mobile")],
            format!("`mobile = true` has no effect in layout {layout}"),
            "this layout documents no port for mobile devices",
        );
        unused(
            site.features.license == file::License::Electronic && !has(Service::License),
            &[Seg::Key("features"), Seg::Key("license")],
            format!("`license = \"electronic\"` has no effect in layout {layout}"),
            "only VALT documents licence servers",
        );
    }
}

/// `--on-node`: a file the daemon reads at run time must be there.
pub(super) fn missing_file(
    path: &Path,
    span: Option<std::ops::Range<usize>>,
) -> Option<Diagnostic> {
    let e = std::fs::File::open(path).err()?;
    Some(
        Diagnostic::error(
            Code::MissingFile,
            span,
            format!("cannot read \"{}\": {e}", path.display()),
        )
        .help("the appliance reads this file at run time; create it, or fix the path"),
    )
}

/// Reads an origin as a browser sends it in `Origin`: `http` or `https`, a host, maybe a port,
/// nothing else (no path, not even `/`; no wildcard, which cannot carry credentials). On error,
/// the help to show.
pub fn parse_origin(text: &str) -> Result<String, String> {
    const FORM: &str = "write an origin as \"https://host\" or \"https://host:port\"";
    if text.contains('*') {
        return Err(format!(
            "a wildcard cannot be given credentials; list each origin: {FORM}"
        ));
    }
    let url = url::Url::parse(text).map_err(|_| FORM.to_string())?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("only http and https pages have an origin: {FORM}"));
    }
    let origin = url.origin().ascii_serialization();
    if !url.username().is_empty() || url.password().is_some() || origin != text {
        return Err(format!(
            "did you mean \"{origin}\"? An origin is in lower case, with no path and no user"
        ));
    }
    Ok(origin)
}

/// Parses a network as `[networks]` writes it: a CIDR, or a bare address meaning one host.
pub fn parse_cidr(text: &str) -> Result<IpNet, Error> {
    if let Ok(net) = text.parse::<IpNet>() {
        if net.trunc() != net {
            crate::bail!(
                Invalid,
                "the address has host bits set; did you mean \"{}\"?",
                net.trunc()
            );
        }
        return Ok(net);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    match text.split_once('/') {
        Some((addr, len)) if addr.parse::<IpAddr>().is_ok() => Err(crate::err!(
            Invalid,
            "\"{len}\" is not a prefix length for {addr}: use 0-32 for IPv4, 0-128 for IPv6"
        )),
        _ => Err(crate::err!(
            Invalid,
            "write a network as \"192.0.2.0/24\" or \"2001:db8::/32\", or a single address"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_strictly() {
        assert_eq!(
            parse_cidr("192.0.2.0/24").unwrap().to_string(),
            "192.0.2.0/24"
        );
        assert_eq!(
            parse_cidr("2001:db8::1").unwrap().to_string(),
            "2001:db8::1/128"
        );
        assert!(
            parse_cidr("192.0.2.1/24")
                .unwrap_err()
                .to_string()
                .contains("192.0.2.0/24")
        );
        assert!(
            parse_cidr("192.0.2.0/33")
                .unwrap_err()
                .to_string()
                .contains("prefix length")
        );
        assert!(parse_cidr("lobby").is_err());
    }

    #[test]
    fn names_are_url_safe() {
        assert!(is_good_name("app-1"));
        assert!(is_good_name("Lobby_2"));
        assert!(!is_good_name(""));
        assert!(!is_good_name("-x"));
        assert!(!is_good_name("front door"));
        assert!(!is_good_name(&"a".repeat(64)));
    }
}
