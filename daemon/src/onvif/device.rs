//! Asking one discovered device what it is and what it streams.
//!
//! The sequence: the device's clock (GetSystemDateAndTime, without credentials, so that the
//! UsernameToken's `Created` is in the device's time and a skewed clock does not look like a
//! wrong password), GetDeviceInformation, the media service's address (GetCapabilities),
//! GetProfiles, and GetStreamUri of each profile. The requests go through a [`Transport`], a
//! seam: the real one is HTTP ([`super::http`]), the unit tests answer with canned replies.
//! Every way this can fail ends as a [`Problem`] on the [`Device`]: a device is never dropped.

use std::future::Future;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use super::discovery::{ProbeMatch, Scopes};
use super::soap::{self, Credentials, DeviceInformation, Fault, Profile, Request, UsernameToken};
use super::xml::Element;
use crate::base::Error;

/// Sends one SOAP request. The test seam of [`interrogate`].
pub trait Transport {
    /// POSTs `envelope` to `url` with SOAP action `action`; returns the HTTP status and the
    /// body, or why no answer came.
    fn post(
        &self,
        url: &str,
        action: &str,
        envelope: String,
    ) -> impl Future<Output = Result<(u16, Vec<u8>), Error>> + Send;
}

/// Why a device found by discovery gave no stream.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum Problem {
    /// Its ONVIF service did not answer (refused, timed out, reset).
    NoAnswer(String),
    /// It answered with something that is not ONVIF.
    NotOnvif(String),
    /// It wants credentials and none were given.
    NeedsCredentials(String),
    /// It refused the credentials given.
    Credentials(String),
    /// Its service addresses are not on the address it answered from: not followed.
    ElsewhereXaddrs(Vec<String>),
    /// It answered, but with no video profile or stream URI.
    NoStream(String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::NoAnswer(why) => write!(f, "no ONVIF answer ({why})"),
            Problem::NotOnvif(why) => write!(f, "does not answer ONVIF ({why})"),
            Problem::NeedsCredentials(why) => {
                write!(
                    f,
                    "needs credentials: give --user and --password-file ({why})"
                )
            }
            Problem::Credentials(why) => write!(f, "refused the credentials ({why})"),
            Problem::ElsewhereXaddrs(x) => write!(
                f,
                "its service addresses ({}) are not on the address it answered from",
                x.join(" ")
            ),
            Problem::NoStream(why) => write!(f, "no video stream ({why})"),
        }
    }
}

/// One device found by discovery, with what ONVIF told about it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Device {
    /// The address its ProbeMatch came from.
    pub address: IpAddr,
    /// Its endpoint reference (`urn:uuid:…`).
    pub endpoint: String,
    /// The device service address used.
    pub xaddr: Option<String>,
    /// Its ONVIF port (from the device service address).
    pub onvif_port: Option<u16>,
    /// Its scopes.
    pub scopes: Scopes,
    /// GetDeviceInformation, when it answered.
    pub information: Option<DeviceInformation>,
    /// Its video profiles, largest first, with their stream URIs.
    pub profiles: Vec<Profile>,
    /// Why it gave no stream, if so.
    pub problem: Option<Problem>,
}

/// The device service address of a match that is on the address the match came from.
fn own_xaddr(found: &ProbeMatch, from: IpAddr) -> Option<(String, u16)> {
    found.xaddrs.iter().find_map(|x| {
        let url = url::Url::parse(x).ok()?;
        let host: IpAddr = match url.host()? {
            url::Host::Ipv4(a) => a.into(),
            url::Host::Ipv6(a) => a.into(),
            url::Host::Domain(_) => return None,
        };
        (host == from).then(|| (x.clone(), url.port_or_known_default().unwrap_or(80)))
    })
}

/// Whether `media` is on the same host and scheme as `device`.
fn same_host(media: &str, device: &str) -> bool {
    match (url::Url::parse(media), url::Url::parse(device)) {
        (Ok(m), Ok(d)) => m.host() == d.host() && m.scheme() == d.scheme(),
        _ => false,
    }
}

struct Session<'a, T> {
    transport: &'a T,
    credentials: Option<&'a Credentials>,
    /// The device's clock minus ours, in seconds.
    skew: i64,
}

impl<T: Transport> Session<'_, T> {
    async fn call(&self, url: &str, request: Request, signed: bool) -> Result<Element, Problem> {
        let token = match (signed, self.credentials) {
            (true, Some(c)) => {
                let now = SystemTime::now();
                let at = if self.skew >= 0 {
                    now + Duration::from_secs(self.skew.unsigned_abs())
                } else {
                    now - Duration::from_secs(self.skew.unsigned_abs())
                };
                Some(UsernameToken::fresh(c, at).map_err(|e| Problem::NoAnswer(e.to_string()))?)
            }
            _ => None,
        };
        let (status, body) = self
            .transport
            .post(
                url,
                &request.action(),
                soap::envelope(&request, token.as_ref()),
            )
            .await
            .map_err(|e| Problem::NoAnswer(e.to_string()))?;
        soap::read(status, &body).map_err(|fault| match fault {
            Fault::NotAuthorized(why) if self.credentials.is_none() => {
                Problem::NeedsCredentials(why)
            }
            Fault::NotAuthorized(why) => Problem::Credentials(why),
            Fault::Other(why) | Fault::BadReply(why) => Problem::NotOnvif(why),
        })
    }
}

/// Asks a device found at `from` everything [`Device`] holds.
pub async fn interrogate<T: Transport>(
    transport: &T,
    found: &ProbeMatch,
    from: IpAddr,
    credentials: Option<&Credentials>,
) -> Device {
    let mut device = Device {
        address: from,
        endpoint: found.endpoint.clone(),
        xaddr: None,
        onvif_port: None,
        scopes: found.scopes.clone(),
        information: None,
        profiles: Vec::new(),
        problem: None,
    };
    let Some((xaddr, port)) = own_xaddr(found, from) else {
        device.problem = Some(Problem::ElsewhereXaddrs(found.xaddrs.clone()));
        return device;
    };
    device.xaddr = Some(xaddr.clone());
    device.onvif_port = Some(port);
    if let Err(problem) = ask(transport, &xaddr, credentials, &mut device).await {
        device.problem = Some(problem);
    }
    device
}

async fn ask<T: Transport>(
    transport: &T,
    xaddr: &str,
    credentials: Option<&Credentials>,
    device: &mut Device,
) -> Result<(), Problem> {
    let mut session = Session {
        transport,
        credentials,
        skew: 0,
    };
    match session
        .call(xaddr, Request::GetSystemDateAndTime, false)
        .await
    {
        Ok(reply) => {
            if let Ok(theirs) = soap::system_time(&reply) {
                session.skew = match theirs.duration_since(SystemTime::now()) {
                    Ok(ahead) => ahead.as_secs() as i64,
                    Err(behind) => -(behind.duration().as_secs() as i64),
                };
            }
        }
        // Some devices want credentials even for the clock: go on with ours.
        Err(Problem::NeedsCredentials(_) | Problem::Credentials(_)) => {}
        Err(other) => return Err(other),
    }
    let reply = session
        .call(xaddr, Request::GetDeviceInformation, true)
        .await?;
    device.information =
        Some(soap::device_information(&reply).map_err(|f| Problem::NotOnvif(f.to_string()))?);
    let media = match session
        .call(xaddr, Request::GetMediaCapabilities, true)
        .await
    {
        Ok(reply) => soap::media_address(&reply)
            .ok()
            .flatten()
            .filter(|m| same_host(m, xaddr))
            .unwrap_or_else(|| xaddr.to_string()),
        Err(Problem::NoAnswer(why)) => return Err(Problem::NoAnswer(why)),
        Err(_) => xaddr.to_string(),
    };
    let reply = session.call(&media, Request::GetProfiles, true).await?;
    let mut profiles = soap::profiles(&reply).map_err(|f| Problem::NotOnvif(f.to_string()))?;
    if profiles.is_empty() {
        return Err(Problem::NoStream("no profile with video".into()));
    }
    let mut last = None;
    for profile in &mut profiles {
        match session
            .call(&media, Request::GetStreamUri(profile.token.clone()), true)
            .await
        {
            Ok(reply) => match soap::stream_uri(&reply) {
                Ok(uri) => profile.uri = Some(uri),
                Err(fault) => last = Some(fault.to_string()),
            },
            Err(Problem::NoAnswer(why)) => return Err(Problem::NoAnswer(why)),
            Err(problem) => last = Some(problem.to_string()),
        }
    }
    profiles.retain(|p| p.uri.is_some());
    if profiles.is_empty() {
        return Err(Problem::NoStream(last.unwrap_or_default()));
    }
    device.profiles = profiles;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// Canned replies by SOAP action suffix; records the calls.
    struct Canned {
        replies: HashMap<&'static str, (u16, String)>,
        calls: Mutex<Vec<(String, String, String)>>,
    }

    impl Canned {
        fn camera() -> Canned {
            let f = |s: &str| (200, s.to_string());
            Canned {
                replies: HashMap::from([
                    (
                        "GetSystemDateAndTime",
                        f(include_str!("fixtures/system_date_and_time.xml")),
                    ),
                    (
                        "GetDeviceInformation",
                        f(include_str!("fixtures/device_information.xml")),
                    ),
                    (
                        "GetCapabilities",
                        f(include_str!("fixtures/capabilities.xml")),
                    ),
                    ("GetProfiles", f(include_str!("fixtures/profiles.xml"))),
                    ("GetStreamUri", f(include_str!("fixtures/stream_uri.xml"))),
                ]),
                calls: Mutex::new(Vec::new()),
            }
        }
    }

    impl Transport for Canned {
        async fn post(
            &self,
            url: &str,
            action: &str,
            envelope: String,
        ) -> Result<(u16, Vec<u8>), Error> {
            let name = action.rsplit('/').next().unwrap().to_string();
            self.calls
                .lock()
                .unwrap()
                .push((url.to_string(), name.clone(), envelope));
            self.replies
                .get(name.as_str())
                .map(|(s, b)| (*s, b.clone().into_bytes()))
                .ok_or_else(|| crate::err!(Unavailable, "connection refused"))
        }
    }

    fn found() -> (ProbeMatch, IpAddr) {
        let m = super::super::discovery::parse_matches(include_bytes!("fixtures/probe_match.xml"))
            .unwrap()
            .remove(0);
        (m, "192.0.2.17".parse().unwrap())
    }

    fn admin() -> Credentials {
        Credentials {
            username: "admin".into(),
            password: "pw".into(),
        }
    }

    #[tokio::test]
    async fn asks_everything_in_order_and_signs_with_the_device_clock() {
        let canned = Canned::camera();
        let (m, from) = found();
        let d = interrogate(&canned, &m, from, Some(&admin())).await;
        assert_eq!(d.problem, None);
        assert_eq!(d.onvif_port, Some(80));
        assert_eq!(d.information.unwrap().model, "DS-2CD2143G0-I");
        assert_eq!(d.profiles.len(), 2);
        assert!(d.profiles.iter().all(|p| p.uri.is_some()));
        let calls = canned.calls.lock().unwrap();
        let names: Vec<_> = calls.iter().map(|c| c.1.as_str()).collect();
        assert_eq!(
            names,
            [
                "GetSystemDateAndTime",
                "GetDeviceInformation",
                "GetCapabilities",
                "GetProfiles",
                "GetStreamUri",
                "GetStreamUri"
            ]
        );
        assert!(!calls[0].2.contains("UsernameToken"));
        assert!(
            calls[1].2.contains("<wsu:Created>2026-03-14T09:3"),
            "{}",
            calls[1].2
        );
        assert_eq!(calls[3].0, "http://192.0.2.17/onvif/Media");
    }

    #[tokio::test]
    async fn refused_and_missing_credentials_are_told_apart() {
        let mut canned = Canned::camera();
        canned.replies.insert(
            "GetDeviceInformation",
            (
                400,
                include_str!("fixtures/fault_not_authorized.xml").to_string(),
            ),
        );
        let (m, from) = found();
        let d = interrogate(&canned, &m, from, Some(&admin())).await;
        assert_eq!(
            d.problem,
            Some(Problem::Credentials("Sender not Authorized".into()))
        );
        let d = interrogate(&canned, &m, from, None).await;
        assert!(matches!(d.problem, Some(Problem::NeedsCredentials(_))));
        assert!(d.problem.unwrap().to_string().contains("--password-file"));
    }

    #[tokio::test]
    async fn silent_foreign_and_streamless_devices_are_kept_with_a_reason() {
        let (m, from) = found();
        let silent = Canned {
            replies: HashMap::new(),
            calls: Mutex::new(Vec::new()),
        };
        let d = interrogate(&silent, &m, from, None).await;
        assert_eq!(
            d.problem,
            Some(Problem::NoAnswer("connection refused".into()))
        );

        let d = interrogate(&silent, &m, "192.0.2.99".parse().unwrap(), None).await;
        assert!(matches!(d.problem, Some(Problem::ElsewhereXaddrs(_))));
        assert!(
            silent.calls.lock().unwrap().len() == 1,
            "a foreign XAddr is never contacted"
        );

        let mut html = Canned::camera();
        html.replies.insert(
            "GetDeviceInformation",
            (200, "<html><body>login</body></html>".into()),
        );
        assert!(matches!(
            interrogate(&html, &m, from, None).await.problem,
            Some(Problem::NotOnvif(_))
        ));

        let mut no_uri = Canned::camera();
        no_uri.replies.remove("GetStreamUri");
        assert!(matches!(
            interrogate(&no_uri, &m, from, None).await.problem,
            Some(Problem::NoAnswer(_))
        ));
        let mut bad_uri = Canned::camera();
        bad_uri.replies.insert(
            "GetStreamUri",
            (
                200,
                include_str!("fixtures/stream_uri.xml").replace("rtsp:", "http:"),
            ),
        );
        assert!(matches!(
            interrogate(&bad_uri, &m, from, None).await.problem,
            Some(Problem::NoStream(_))
        ));
    }
}
