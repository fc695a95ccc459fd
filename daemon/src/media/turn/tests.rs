//! The TURN server against a client written with the same STUN codec, on loopback.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::media::stun::{Builder, Message};

const REALM: &str = "sited";

struct Client {
    socket: UdpSocket,
    server: SocketAddr,
    username: String,
    key: Vec<u8>,
    nonce: Vec<u8>,
}

impl Client {
    async fn request(
        &self,
        method: u16,
        attrs: &[(u16, Vec<u8>)],
        peer: Option<SocketAddr>,
    ) -> (u16, u16) {
        let mut b = Builder::new(method, stun::REQUEST, [method as u8; 12])
            .attribute(stun::USERNAME, self.username.as_bytes())
            .attribute(stun::REALM, REALM.as_bytes())
            .attribute(stun::NONCE, &self.nonce);
        if let Some(p) = peer {
            b = b.xor_address(stun::XOR_PEER_ADDRESS, p);
        }
        for (t, v) in attrs {
            b = b.attribute(*t, v);
        }
        let raw = b.integrity(&self.key).fingerprint();
        self.socket.send_to(&raw, self.server).await.unwrap();
        let mut buf = [0u8; 1500];
        let n = tokio::time::timeout(Duration::from_secs(2), self.socket.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let m = Message::parse(&buf[..n]).unwrap();
        let code = m
            .get(stun::ERROR_CODE)
            .map_or(0, |e| u16::from(e[2]) * 100 + u16::from(e[3]));
        (m.class, code)
    }
}

async fn server(
    peer: SocketAddr,
    max_per_user: usize,
) -> (SocketAddr, Arc<[u8]>, CancellationToken) {
    let secret: Arc<[u8]> = Arc::from(&b"node secret"[..]);
    let turn = Arc::new(Turn::new(Settings {
        realm: REALM.into(),
        secret: secret.clone(),
        address: "127.0.0.1".parse().unwrap(),
        relay_ports: (40000, 40100),
        peers: vec![peer],
        max_allocations: 10,
        max_per_user,
    }));
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(turn.serve(socket, stop.clone()));
    (addr, secret, stop)
}

async fn client(server: SocketAddr, secret: &[u8], password: Option<&str>) -> Client {
    let (username, good) = credentials::issue(secret, "session", Duration::from_secs(60));
    let key = credentials::key(&username, REALM, password.unwrap_or(&good));
    let mut c = Client {
        socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        server,
        username,
        key,
        nonce: Vec::new(),
    };
    // The first Allocate has no credentials: the server answers 401 with its nonce.
    let raw = Builder::new(ALLOCATE, stun::REQUEST, [1; 12])
        .attribute(stun::REQUESTED_TRANSPORT, &[UDP, 0, 0, 0])
        .fingerprint();
    c.socket.send_to(&raw, server).await.unwrap();
    let mut buf = [0u8; 1500];
    let n = c.socket.recv(&mut buf).await.unwrap();
    let m = Message::parse(&buf[..n]).unwrap();
    assert_eq!(m.get(stun::ERROR_CODE).map(|e| e[3]), Some(1), "401 first");
    c.nonce = m.get(stun::NONCE).unwrap().to_vec();
    c
}

fn transport() -> Vec<(u16, Vec<u8>)> {
    vec![(stun::REQUESTED_TRANSPORT, vec![UDP, 0, 0, 0])]
}

#[tokio::test]
async fn a_bad_credential_is_refused() {
    let webrtc: SocketAddr = "127.0.0.1:8555".parse().unwrap();
    let (addr, secret, stop) = server(webrtc, 2).await;
    let c = client(addr, &secret, Some("guessed")).await;
    assert_eq!(
        c.request(ALLOCATE, &transport(), None).await,
        (stun::ERROR, 401)
    );
    stop.cancel();
}

#[tokio::test]
async fn the_relay_reaches_only_the_webrtc_socket_and_allocations_are_capped() {
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let webrtc = peer.local_addr().unwrap();
    let (addr, secret, stop) = server(webrtc, 1).await;
    let c = client(addr, &secret, None).await;
    assert_eq!(
        c.request(ALLOCATE, &transport(), None).await,
        (stun::SUCCESS, 0)
    );
    let elsewhere: SocketAddr = "127.0.0.1:22".parse().unwrap();
    let other_host: SocketAddr = "198.51.100.7:8555".parse().unwrap();
    for p in [elsewhere, other_host] {
        assert_eq!(
            c.request(CREATE_PERMISSION, &[], Some(p)).await,
            (stun::ERROR, 403),
            "{p}"
        );
        let bind = vec![(stun::CHANNEL_NUMBER, vec![0x40, 0, 0, 0])];
        assert_eq!(
            c.request(CHANNEL_BIND, &bind, Some(p)).await,
            (stun::ERROR, 403)
        );
    }
    assert_eq!(
        c.request(CREATE_PERMISSION, &[], Some(webrtc)).await,
        (stun::SUCCESS, 0)
    );
    let bind = vec![(stun::CHANNEL_NUMBER, vec![0x40, 1, 0, 0])];
    assert_eq!(
        c.request(CHANNEL_BIND, &bind, Some(webrtc)).await,
        (stun::SUCCESS, 0)
    );

    // ChannelData reaches the WebRTC socket from the relayed address, and back.
    c.socket
        .send_to(&[0x40, 1, 0, 3, b'a', b'b', b'c'], addr)
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = tokio::time::timeout(Duration::from_secs(2), peer.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"abc");
    assert!(
        (40000..=40100).contains(&from.port()),
        "from the relay range"
    );
    peer.send_to(b"xyz", from).await.unwrap();
    let n = c.socket.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], &[0x40, 1, 0, 3, b'x', b'y', b'z']);

    // The same credential may not allocate twice (the cap is 1 per session here).
    let second = client(addr, &secret, None).await;
    let second = Client {
        username: c.username.clone(),
        key: c.key.clone(),
        ..second
    };
    assert_eq!(
        second.request(ALLOCATE, &transport(), None).await,
        (stun::ERROR, 486)
    );
    stop.cancel();
}
