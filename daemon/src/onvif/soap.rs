//! The ONVIF SOAP requests sited makes, and the reading of their replies.
//!
//! Pure: the requests are small fixed texts ([`Request::body`], wrapped by [`envelope`] with a
//! WS-Security UsernameToken digest when credentials are given); the replies are read from a
//! bounded tree ([`REPLY`]) into plain values. A SOAP fault is a [`Fault`], and one that says
//! the sender is not authorized is told apart, so that "wrong password" reads as such.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use super::xml::{self, Bounds, Element};

/// The bounds of one SOAP reply: GetProfiles of a 16-channel recorder is about 100 KiB.
pub const REPLY: Bounds = Bounds {
    bytes: 256 * 1024,
    depth: 24,
    elements: 8192,
};
/// The most profiles read from one device.
pub const PROFILES: usize = 8;
/// The longest text field kept from a reply (longer ones are cut).
pub const FIELD: usize = 256;

const DEVICE: &str = "http://www.onvif.org/ver10/device/wsdl";
pub use crate::base::markup::escape;

const MEDIA: &str = "http://www.onvif.org/ver10/media/wsdl";
const SCHEMA: &str = "http://www.onvif.org/ver10/schema";

/// A request to a device's or media service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// The device's clock; answered without credentials, so the digest can use the device's time.
    GetSystemDateAndTime,
    /// Manufacturer, model, firmware, serial number.
    GetDeviceInformation,
    /// Where the media service is.
    GetMediaCapabilities,
    /// The media profiles: one per stream the device offers.
    GetProfiles,
    /// The RTSP URI of one profile (by its token).
    GetStreamUri(String),
}

impl Request {
    /// The SOAP body of the request.
    pub fn body(&self) -> String {
        match self {
            Request::GetSystemDateAndTime => format!(r#"<GetSystemDateAndTime xmlns="{DEVICE}"/>"#),
            Request::GetDeviceInformation => format!(r#"<GetDeviceInformation xmlns="{DEVICE}"/>"#),
            Request::GetMediaCapabilities => format!(
                r#"<GetCapabilities xmlns="{DEVICE}"><Category>Media</Category></GetCapabilities>"#
            ),
            Request::GetProfiles => format!(r#"<GetProfiles xmlns="{MEDIA}"/>"#),
            Request::GetStreamUri(token) => format!(
                concat!(
                    r#"<GetStreamUri xmlns="{media}"><StreamSetup>"#,
                    r#"<Stream xmlns="{schema}">RTP-Unicast</Stream>"#,
                    r#"<Transport xmlns="{schema}"><Protocol>RTSP</Protocol></Transport>"#,
                    r#"</StreamSetup><ProfileToken>{token}</ProfileToken></GetStreamUri>"#
                ),
                media = MEDIA,
                schema = SCHEMA,
                token = escape(token)
            ),
        }
    }

    /// The SOAP action, for the Content-Type header.
    pub fn action(&self) -> String {
        let (ns, name) = match self {
            Request::GetSystemDateAndTime => (DEVICE, "GetSystemDateAndTime"),
            Request::GetDeviceInformation => (DEVICE, "GetDeviceInformation"),
            Request::GetMediaCapabilities => (DEVICE, "GetCapabilities"),
            Request::GetProfiles => (MEDIA, "GetProfiles"),
            Request::GetStreamUri(_) => (MEDIA, "GetStreamUri"),
        };
        format!("{ns}/{name}")
    }
}

/// A user name and password for WS-Security.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The ONVIF user.
    pub username: String,
    /// Its password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, …)", self.username)
    }
}

/// A WS-Security UsernameToken: `digest = base64(SHA-1(nonce + created + password))`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsernameToken {
    /// The user.
    pub username: String,
    /// The password digest, base64.
    pub digest: String,
    /// The nonce, base64.
    pub nonce: String,
    /// The creation time, RFC 3339 UTC, in the device's clock.
    pub created: String,
}

impl UsernameToken {
    /// A token made with the given nonce at the given time.
    pub fn new(credentials: &Credentials, nonce: &[u8], created: SystemTime) -> UsernameToken {
        let created = humantime::format_rfc3339_seconds(created).to_string();
        let mut input = nonce.to_vec();
        input.extend_from_slice(created.as_bytes());
        input.extend_from_slice(credentials.password.as_bytes());
        let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &input);
        let b64 = base64::engine::general_purpose::STANDARD;
        UsernameToken {
            username: credentials.username.clone(),
            digest: b64.encode(digest.as_ref()),
            nonce: b64.encode(nonce),
            created,
        }
    }

    /// A token with a fresh random nonce.
    pub fn fresh(
        credentials: &Credentials,
        created: SystemTime,
    ) -> Result<UsernameToken, crate::base::error::Error> {
        let nonce = crate::base::random::bytes::<16>()?;
        Ok(UsernameToken::new(credentials, &nonce, created))
    }

    fn header(&self) -> String {
        format!(
            concat!(
                r#"<s:Header><wsse:Security s:mustUnderstand="1""#,
                r#" xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd""#,
                r#" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">"#,
                r#"<wsse:UsernameToken><wsse:Username>{}</wsse:Username>"#,
                r#"<wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest">{}</wsse:Password>"#,
                r#"<wsse:Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary">{}</wsse:Nonce>"#,
                r#"<wsu:Created>{}</wsu:Created></wsse:UsernameToken></wsse:Security></s:Header>"#
            ),
            escape(&self.username),
            self.digest,
            self.nonce,
            self.created
        )
    }
}

/// A whole SOAP 1.2 envelope for a request, with a UsernameToken header when given.
pub fn envelope(request: &Request, token: Option<&UsernameToken>) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">{}<s:Body>{}</s:Body></s:Envelope>"#,
        token.map(UsernameToken::header).unwrap_or_default(),
        request.body()
    )
}

/// Why a device's reply is not the answer asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The device refused the credentials, or wants some (`ter:NotAuthorized`, HTTP 401).
    NotAuthorized(String),
    /// Any other SOAP fault, with its reason.
    Other(String),
    /// Not a SOAP reply we can read.
    BadReply(String),
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::NotAuthorized(why) => write!(f, "not authorized: {why}"),
            Fault::Other(why) => write!(f, "SOAP fault: {why}"),
            Fault::BadReply(why) => write!(f, "bad reply: {why}"),
        }
    }
}

fn cut(text: &str) -> String {
    text.chars().take(FIELD).collect()
}

/// Reads a reply: its SOAP Body's first child, or the fault it holds. `status` is the HTTP status.
pub fn read(status: u16, reply: &[u8]) -> Result<Element, Fault> {
    let parsed = xml::parse(reply, REPLY);
    let root = match parsed {
        Ok(root) => root,
        Err(_) if status == 401 => return Err(Fault::NotAuthorized("HTTP 401".into())),
        Err(e) => return Err(Fault::BadReply(format!("HTTP {status}, {e}"))),
    };
    if root.name != "Envelope" {
        return Err(Fault::BadReply(format!(
            "a <{}> is not a SOAP envelope",
            cut(&root.name)
        )));
    }
    let Some(body) = root.child("Body") else {
        return Err(Fault::BadReply("no SOAP Body".into()));
    };
    if let Some(fault) = body.child("Fault") {
        let codes: Vec<&str> = fault
            .descendants("Value")
            .map(|v| v.text.rsplit(':').next().unwrap_or(""))
            .collect();
        let reason = match fault.text_at(&["Reason", "Text"]) {
            "" => codes.last().copied().unwrap_or("no reason given"),
            text => text,
        };
        let reason = cut(reason);
        let refused = codes
            .iter()
            .any(|c| c.eq_ignore_ascii_case("NotAuthorized"))
            || reason.to_ascii_lowercase().contains("not authorized");
        return Err(if refused || status == 401 {
            Fault::NotAuthorized(reason)
        } else {
            Fault::Other(reason)
        });
    }
    if status == 401 {
        return Err(Fault::NotAuthorized("HTTP 401".into()));
    }
    if !(200..300).contains(&status) {
        return Err(Fault::BadReply(format!("HTTP {status}")));
    }
    body.children
        .first()
        .cloned()
        .ok_or_else(|| Fault::BadReply("an empty SOAP Body".into()))
}

fn expect<'a>(reply: &'a Element, name: &str) -> Result<&'a Element, Fault> {
    if reply.name == name {
        Ok(reply)
    } else {
        Err(Fault::BadReply(format!(
            "<{}> instead of <{name}>",
            cut(&reply.name)
        )))
    }
}

/// Reads a GetSystemDateAndTime reply: the device's UTC clock.
pub fn system_time(reply: &Element) -> Result<SystemTime, Fault> {
    let utc = expect(reply, "GetSystemDateAndTimeResponse")?
        .find("UTCDateTime")
        .ok_or_else(|| Fault::BadReply("no UTCDateTime".into()))?;
    let n = |path: &[&str]| -> Result<i64, Fault> {
        utc.text_at(path)
            .parse()
            .map_err(|_| Fault::BadReply(format!("bad {}", path.join("/"))))
    };
    let (y, mo, d) = (
        n(&["Date", "Year"])?,
        n(&["Date", "Month"])?,
        n(&["Date", "Day"])?,
    );
    let (h, mi, s) = (
        n(&["Time", "Hour"])?,
        n(&["Time", "Minute"])?,
        n(&["Time", "Second"])?,
    );
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
        || !(0..24).contains(&h)
        || !(0..60).contains(&mi)
        || !(0..=60).contains(&s)
    {
        return Err(Fault::BadReply("a date out of range".into()));
    }
    let seconds = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s;
    Ok(UNIX_EPOCH + Duration::from_secs(seconds as u64))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// What a device says it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeviceInformation {
    /// The maker.
    pub manufacturer: String,
    /// The model.
    pub model: String,
    /// The firmware version.
    pub firmware: String,
    /// The serial number.
    pub serial: String,
}

/// Reads a GetDeviceInformation reply.
pub fn device_information(reply: &Element) -> Result<DeviceInformation, Fault> {
    let r = expect(reply, "GetDeviceInformationResponse")?;
    Ok(DeviceInformation {
        manufacturer: cut(r.text_at(&["Manufacturer"])),
        model: cut(r.text_at(&["Model"])),
        firmware: cut(r.text_at(&["FirmwareVersion"])),
        serial: cut(r.text_at(&["SerialNumber"])),
    })
}

/// Reads a GetCapabilities reply: the media service's address, if it gives one.
pub fn media_address(reply: &Element) -> Result<Option<String>, Fault> {
    let r = expect(reply, "GetCapabilitiesResponse")?;
    Ok(r.at(&["Capabilities", "Media", "XAddr"])
        .map(|x| cut(&x.text))
        .filter(|x| x.starts_with("http://") || x.starts_with("https://")))
}

/// One media profile: one stream of the device.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Profile {
    /// The profile's token, for GetStreamUri.
    pub token: String,
    /// The profile's name (`mainStream`, `subStream`, …).
    pub name: String,
    /// The video codec (`H264`, `H265`, `JPEG`, `MPEG4`).
    pub encoding: String,
    /// The picture's width, in pixels.
    pub width: u32,
    /// The picture's height, in pixels.
    pub height: u32,
    /// The frame rate limit, if the device gives one.
    pub fps: Option<u32>,
    /// The RTSP URI, once asked with GetStreamUri.
    pub uri: Option<String>,
}

/// Reads a GetProfiles reply: the profiles with video, at most [`PROFILES`], largest first.
pub fn profiles(reply: &Element) -> Result<Vec<Profile>, Fault> {
    let r = expect(reply, "GetProfilesResponse")?;
    let mut out: Vec<Profile> = r
        .children
        .iter()
        .filter(|p| p.name == "Profiles")
        .filter_map(|p| {
            let video = p.child("VideoEncoderConfiguration")?;
            let token = p.attribute("token").filter(|t| !t.is_empty())?;
            let number = |path: &[&str]| video.text_at(path).parse::<u32>().ok();
            Some(Profile {
                token: cut(token),
                name: cut(p.text_at(&["Name"])),
                encoding: cut(video.text_at(&["Encoding"])),
                width: number(&["Resolution", "Width"]).unwrap_or(0),
                height: number(&["Resolution", "Height"]).unwrap_or(0),
                fps: number(&["RateControl", "FrameRateLimit"]),
                uri: None,
            })
        })
        .take(PROFILES)
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(u64::from(p.width) * u64::from(p.height)));
    Ok(out)
}

/// Reads a GetStreamUri reply.
pub fn stream_uri(reply: &Element) -> Result<String, Fault> {
    let uri = expect(reply, "GetStreamUriResponse")?.text_at(&["MediaUri", "Uri"]);
    if uri.starts_with("rtsp://") || uri.starts_with("rtsps://") {
        Ok(cut(uri))
    } else {
        Err(Fault::BadReply(format!(
            "stream URI \"{}\" is not RTSP",
            cut(uri)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(text: &str) -> Element {
        read(200, text.as_bytes()).unwrap()
    }

    #[test]
    fn the_digest_follows_the_username_token_profile() {
        let c = Credentials {
            username: "admin".into(),
            password: "s3cret".into(),
        };
        let at = UNIX_EPOCH + Duration::from_secs(1_773_480_605);
        let nonce: Vec<u8> = (0..16).collect();
        let token = UsernameToken::new(&c, &nonce, at);
        // Python: b64(sha1(nonce + created + password)).
        assert_eq!(token.created, "2026-03-14T09:30:05Z");
        assert_eq!(token.nonce, "AAECAwQFBgcICQoLDA0ODw==");
        assert_eq!(token.digest, "HYs1ueXmJ3JyFPuccoevGeyMOEQ=");
        let text = envelope(&Request::GetProfiles, Some(&token));
        let root = xml::parse(text.as_bytes(), REPLY).unwrap();
        let t = root.at(&["Header", "Security", "UsernameToken"]).unwrap();
        assert_eq!(t.text_at(&["Username"]), "admin");
        assert_eq!(t.text_at(&["Password"]), token.digest);
        assert!(!text.contains("s3cret"));
        assert_ne!(UsernameToken::fresh(&c, at).unwrap().nonce, token.nonce);
    }

    #[test]
    fn requests_are_well_formed() {
        for r in [
            Request::GetSystemDateAndTime,
            Request::GetDeviceInformation,
            Request::GetMediaCapabilities,
            Request::GetProfiles,
            Request::GetStreamUri("a<&\"b".into()),
        ] {
            let root = xml::parse(envelope(&r, None).as_bytes(), REPLY).unwrap();
            let body = root.at(&["Body"]).unwrap();
            assert!(r.action().ends_with(&body.children[0].name));
        }
        let root = xml::parse(
            envelope(&Request::GetStreamUri("a<&\"b".into()), None).as_bytes(),
            REPLY,
        )
        .unwrap();
        assert_eq!(root.find("ProfileToken").unwrap().text, "a<&\"b");
    }

    #[test]
    fn reads_the_clock() {
        let t = system_time(&reply(include_str!("fixtures/system_date_and_time.xml"))).unwrap();
        assert_eq!(
            humantime::format_rfc3339_seconds(t).to_string(),
            "2026-03-14T09:30:05Z"
        );
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn reads_device_information_and_capabilities() {
        let info = device_information(&reply(include_str!("fixtures/device_information.xml")));
        assert_eq!(
            info.unwrap(),
            DeviceInformation {
                manufacturer: "HIKVISION".into(),
                model: "DS-2CD2143G0-I".into(),
                firmware: "V5.5.82 build 190909".into(),
                serial: "DS-2CD2143G0-I20190101AAWRC12345678".into(),
            }
        );
        let media = media_address(&reply(include_str!("fixtures/capabilities.xml")));
        assert_eq!(
            media.unwrap().as_deref(),
            Some("http://192.0.2.17/onvif/Media")
        );
    }

    #[test]
    fn reads_profiles_largest_first_and_video_only() {
        let p = profiles(&reply(include_str!("fixtures/profiles.xml"))).unwrap();
        let seen: Vec<_> = p
            .iter()
            .map(|p| {
                (
                    p.token.as_str(),
                    p.encoding.as_str(),
                    p.width,
                    p.height,
                    p.fps,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("Profile_1", "H265", 2560, 1440, Some(25)),
                ("Profile_2", "H264", 640, 360, Some(15))
            ]
        );
        let uri = stream_uri(&reply(include_str!("fixtures/stream_uri.xml"))).unwrap();
        assert_eq!(
            uri,
            "rtsp://192.0.2.17:554/Streaming/Channels/101?transportmode=unicast&profile=Profile_1"
        );
    }

    #[test]
    fn faults_are_told_apart() {
        let refused = include_str!("fixtures/fault_not_authorized.xml");
        assert_eq!(
            read(400, refused.as_bytes()),
            Err(Fault::NotAuthorized("Sender not Authorized".into()))
        );
        assert_eq!(
            read(401, b"<html>nope</html"),
            Err(Fault::NotAuthorized("HTTP 401".into()))
        );
        let other = refused
            .replace("ter:NotAuthorized", "ter:ActionNotSupported")
            .replace("Sender not Authorized", "no");
        assert_eq!(read(500, other.as_bytes()), Err(Fault::Other("no".into())));
        assert!(matches!(read(200, b"<a/>"), Err(Fault::BadReply(_))));
        assert!(matches!(
            read(404, b"<Envelope><Body><X/></Body></Envelope>"),
            Err(Fault::BadReply(_))
        ));
        let wrong = reply(include_str!("fixtures/device_information.xml"));
        assert!(matches!(profiles(&wrong), Err(Fault::BadReply(_))));
        let ftp = include_str!("fixtures/stream_uri.xml").replace("rtsp://", "ftp://");
        assert!(stream_uri(&reply(&ftp)).is_err());
    }
}
