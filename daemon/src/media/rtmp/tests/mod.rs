//! Whole connections with hand-made peers over in-memory streams: Enhanced RTMP, interleaved
//! chunk streams, takeover, rude peers, and stalls (in paused time). [`ffmpeg`] has real peers.

mod ffmpeg;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::rml_amf0::Amf0Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream};
use tokio::task::JoinHandle;

use super::chunk::{self, Header, Message};
use super::command::{self, AMF0_COMMAND};
use super::{RtmpContext, session};
use crate::base::admission::Ticket;
use crate::media::frame::{Codec, Kind};
use crate::media::hub::{Hubs, Item};
use crate::media::sample_entry::tests::hvcc_1366x766;

const KEY: &str = "k3y-of-the-phone";
const DEVICE: &str = "phone";
const TOKEN: &str = "viewer-token";

fn context() -> Arc<RtmpContext> {
    Arc::new(RtmpContext::new(
        Arc::new(Hubs::default()),
        HashMap::from([(KEY.to_string(), DEVICE.to_string())]),
        Box::new(|t| t == TOKEN),
    ))
}

fn peer() -> SocketAddr {
    "192.0.2.7:50000".parse().unwrap()
}

/// A hand-made RTMP peer.
struct Client {
    io: DuplexStream,
    reader: chunk::Reader,
    buf: BytesMut,
    chunk_size: usize,
}

fn start(ctx: &Arc<RtmpContext>) -> (DuplexStream, JoinHandle<session::End>) {
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    (
        ours,
        tokio::spawn(session::run(
            theirs,
            peer(),
            ctx.clone(),
            Ticket::unlimited(),
        )),
    )
}

impl Client {
    async fn handshake(mut io: DuplexStream) -> Client {
        let mut h = Handshake::new(PeerType::Client);
        io.write_all(&h.generate_outbound_p0_and_p1().unwrap())
            .await
            .unwrap();
        let mut buf = vec![0; 4096];
        loop {
            let n = io.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed during the handshake");
            match h.process_bytes(&buf[..n]).unwrap() {
                HandshakeProcessResult::InProgress { response_bytes } => {
                    io.write_all(&response_bytes).await.unwrap()
                }
                HandshakeProcessResult::Completed {
                    response_bytes,
                    remaining_bytes,
                } => {
                    io.write_all(&response_bytes).await.unwrap();
                    return Client {
                        io,
                        reader: chunk::Reader::new(),
                        buf: BytesMut::from(&remaining_bytes[..]),
                        chunk_size: chunk::DEFAULT_CHUNK_SIZE,
                    };
                }
            }
        }
    }

    async fn raw(&mut self, bytes: &[u8]) {
        // The server may already have hung up: that is what some tests wait for.
        let _ = self.io.write_all(bytes).await;
    }

    async fn send(&mut self, header: Header, payload: &[u8]) {
        self.raw(&chunk::chunked(&header, payload, self.chunk_size))
            .await;
    }

    async fn command(&mut self, stream_id: u32, values: &[Amf0Value]) {
        let h = Header {
            chunk_stream: 3,
            timestamp: 0,
            type_id: AMF0_COMMAND,
            stream_id,
        };
        self.send(h, &command::encode(values)).await;
    }

    async fn recv(&mut self) -> Option<Message> {
        loop {
            if let Some(m) = self.reader.next(&mut self.buf).unwrap() {
                return Some(m);
            }
            if self.io.read_buf(&mut self.buf).await.ok()? == 0 {
                return None;
            }
        }
    }

    /// The next command's name and its info object's `code`, if any.
    async fn next_command(&mut self) -> Option<(String, String)> {
        loop {
            let m = self.recv().await?;
            if m.header.type_id != AMF0_COMMAND {
                continue;
            }
            let c = command::parse(AMF0_COMMAND, &m.data).unwrap();
            let code = match c.args.first() {
                Some(Amf0Value::Object(o)) => match o.get("code") {
                    Some(Amf0Value::Utf8String(s)) => s.clone(),
                    _ => String::new(),
                },
                _ => String::new(),
            };
            return Some((c.name, code));
        }
    }

    /// connect, then createStream; returns the connect reply's code.
    async fn connect(&mut self, app: &str) -> String {
        let object = command::object(&[
            ("app", command::string(app)),
            ("tcUrl", command::string(&format!("rtmp://host/{app}"))),
        ]);
        self.command(
            0,
            &[command::string("connect"), Amf0Value::Number(1.0), object],
        )
        .await;
        let (_, code) = self.next_command().await.unwrap();
        if code == "NetConnection.Connect.Success" {
            let create = [
                command::string("createStream"),
                Amf0Value::Number(2.0),
                Amf0Value::Null,
            ];
            self.command(0, &create).await;
            assert_eq!(self.next_command().await.unwrap().0, "_result");
        }
        code
    }

    /// `publish` or `play` a name; returns the first onStatus code.
    async fn start(&mut self, verb: &str, name: &str) -> String {
        let values = [
            command::string(verb),
            Amf0Value::Number(3.0),
            Amf0Value::Null,
            command::string(name),
        ];
        self.command(1, &values).await;
        self.next_command().await.unwrap().1
    }

    async fn set_chunk_size(&mut self, size: usize) {
        let h = Header {
            chunk_stream: 2,
            timestamp: 0,
            type_id: chunk::SET_CHUNK_SIZE,
            stream_id: 0,
        };
        self.send(h, &(size as u32).to_be_bytes()).await;
        self.chunk_size = size;
    }

    /// Reads until the server hangs up.
    async fn until_closed(&mut self) {
        while self.recv().await.is_some() {}
    }
}

fn media(type_id: u8, timestamp: u32) -> Header {
    Header {
        chunk_stream: if type_id == 9 { 6 } else { 4 },
        timestamp,
        type_id,
        stream_id: 1,
    }
}

/// Cuts chunked messages into single chunks (type 0 header, then type 3 headers).
fn chunks_of(bytes: &[u8], chunk_size: usize) -> Vec<Vec<u8>> {
    let first = (12 + chunk_size).min(bytes.len());
    let mut out = vec![bytes[..first].to_vec()];
    for c in bytes[first..].chunks(1 + chunk_size) {
        out.push(c.to_vec());
    }
    out
}

fn enhanced(first: u8, fourcc: &[u8; 4], rest: &[u8]) -> Vec<u8> {
    let mut b = vec![first];
    b.extend_from_slice(fourcc);
    b.extend_from_slice(rest);
    b
}

#[tokio::test]
async fn an_unknown_key_gets_bad_name_and_the_connection_closes() {
    let ctx = context();
    let (io, server) = start(&ctx);
    let mut c = Client::handshake(io).await;
    assert_eq!(c.connect("live").await, "NetConnection.Connect.Success");
    assert_eq!(
        c.start("publish", "nope").await,
        "NetStream.Publish.BadName"
    );
    c.until_closed().await;
    let end = server.await.unwrap();
    let end = end.unwrap_err();
    assert_eq!(end.kind(), crate::base::Kind::Unauthenticated);
    assert_eq!(end.to_string(), "publish with an unknown stream key");
    assert!(ctx.hubs.get("nope").is_none() && ctx.hubs.get(DEVICE).is_none());
}

/// Why the server ended a connection that it refused.
async fn refusal(server: JoinHandle<session::End>) -> String {
    server.await.unwrap().unwrap_err().to_string()
}

#[tokio::test]
async fn a_wrong_application_is_rejected() {
    let ctx = context();
    let (io, server) = start(&ctx);
    let mut c = Client::handshake(io).await;
    assert_eq!(c.connect("vod").await, "NetConnection.Connect.Rejected");
    c.until_closed().await;
    assert!(refusal(server).await.contains("\"vod\""));
}

/// An Enhanced RTMP H.265 publisher that interleaves audio and video chunks, and a viewer.
#[tokio::test]
async fn enhanced_rtmp_hevc_interleaved_with_aac_is_published_and_played() {
    tokio::time::timeout(Duration::from_secs(20), enhanced_rtmp_hevc())
        .await
        .expect("stuck");
}

async fn enhanced_rtmp_hevc() {
    let ctx = context();
    let (io, publisher_end) = start(&ctx);
    let mut publisher = Client::handshake(io).await;
    publisher.connect("live").await;
    let code = publisher.start("publish", &format!("{KEY}?obs=30")).await;
    assert_eq!(code, "NetStream.Publish.Start");
    publisher.set_chunk_size(256).await;

    // Sequence starts: hvc1 (PacketTypeSequenceStart) and AAC.
    let mut wire = Vec::new();
    let hvcc = hvcc_1366x766();
    let sequence_start = enhanced(0x90, b"hvc1", &hvcc);
    wire.extend(chunk::chunked(&media(9, 0), &sequence_start, 256));
    wire.extend(chunk::chunked(&media(8, 0), &[0xaf, 0, 0x11, 0x90], 256));
    // Ten video frames of 1000 bytes, each interleaved chunk by chunk with an audio frame.
    let mut sent_video = Vec::new();
    for i in 0..10u32 {
        let nal: Vec<u8> = (0..996).map(|j| (j as u8) ^ (i as u8)).collect();
        let mut data = (nal.len() as u32).to_be_bytes().to_vec();
        data.extend_from_slice(&nal);
        let body = if i % 2 == 0 {
            // CodedFrames with a composition time, key frame.
            let mut rest = vec![0, 0, 40];
            rest.extend_from_slice(&data);
            enhanced(0x91, b"hvc1", &rest)
        } else {
            // CodedFramesX, inter frame.
            enhanced(0xa3, b"hvc1", &data)
        };
        sent_video.push(Bytes::from(data));
        let v = chunks_of(&chunk::chunked(&media(9, 40 * i), &body, 256), 256);
        let audio = [0xaf, 1, 0x21, i as u8];
        let a = chunks_of(&chunk::chunked(&media(8, 40 * i + 5), &audio, 256), 256);
        for n in 0..v.len().max(a.len()) {
            for part in [v.get(n), a.get(n)].into_iter().flatten() {
                wire.extend_from_slice(part);
            }
        }
    }

    let hub = loop {
        if let Some(h) = ctx.hubs.get(DEVICE) {
            break h;
        }
        tokio::task::yield_now().await;
    };
    let mut reader = hub.subscribe();
    // The wire goes out in 7-byte pieces, cutting headers anywhere.
    for piece in wire.chunks(7) {
        publisher.raw(piece).await;
    }

    let Ok(Item::Tracks(tracks)) = reader.next().await else {
        panic!("no tracks")
    };
    let video = tracks.video.as_ref().unwrap();
    assert_eq!((video.codec, video.dimensions), (Codec::H265, (1366, 766)));
    assert_eq!(video.rfc6381, "hvc1.1.6.L120.90");
    assert_eq!(&video.sample_entry[4..8], b"hvc1");
    assert_eq!(tracks.audio.as_ref().unwrap().timescale, 48_000);
    // Each audio frame is complete before its video frame; the first comes before any video,
    // so it has no tracks to join and is dropped.
    let (mut videos, mut audios) = (Vec::new(), 0);
    while videos.len() < 10 {
        let Ok(Item::Frame(f)) = reader.next().await else {
            panic!("no frame")
        };
        match f.kind {
            Kind::Video => videos.push(f),
            Kind::Audio => audios += 1,
        }
    }
    assert_eq!(audios, 9);
    for (i, f) in videos.iter().enumerate() {
        assert_eq!(f.data, sent_video[i], "frame {i} intact");
        assert_eq!((f.dts, f.keyframe), (40 * 90 * i as i64, i % 2 == 0));
    }

    // A viewer without a token is refused; one with it gets the metadata, the hvc1 sequence
    // start, then the cached GOP.
    let (io, _) = start(&ctx);
    let mut refused = Client::handshake(io).await;
    refused.connect("live").await;
    assert_eq!(refused.start("play", DEVICE).await, "NetStream.Play.Failed");
    refused.until_closed().await;

    let (io, viewer_end) = start(&ctx);
    let mut viewer = Client::handshake(io).await;
    viewer.connect("live").await;
    let code = viewer
        .start("play", &format!("{DEVICE}?token={TOKEN}"))
        .await;
    assert_eq!(code, "NetStream.Play.Reset");
    assert_eq!(
        viewer.next_command().await.unwrap().1,
        "NetStream.Play.Start"
    );
    let mut got = Vec::new();
    while got.len() < 5 {
        let m = viewer.recv().await.unwrap();
        if matches!(m.header.type_id, 8 | 9 | 18) && m.header.stream_id == 1 {
            got.push(m);
        }
    }
    assert_eq!(got[0].header.type_id, 18, "|RtmpSampleAccess");
    let meta = command::values(&got[1].data).unwrap();
    assert_eq!(meta[0], command::string("onMetaData"));
    assert_eq!(&got[2].data[..5], b"\x90hvc1", "sequence start");
    assert_eq!(&got[2].data[5..], &hvcc[..]);
    assert_eq!(
        &got[3].data[..],
        &[0xaf, 0, 0x11, 0x90],
        "AAC sequence header"
    );
    assert_eq!(
        &got[4].data[..8],
        b"\x91hvc1\x00\x00\x28",
        "the last keyframe, from the GOP cache, with its 40 ms composition time"
    );
    assert_eq!(&got[4].data[8..], &sent_video[8][..]);
    assert_eq!(got[4].header.timestamp, 320);

    // The publisher leaves: its source is gone and the viewer is told.
    drop(publisher);
    assert_eq!(
        publisher_end.await.unwrap().unwrap(),
        "the peer closed the connection"
    );
    assert!(ctx.hubs.get(DEVICE).is_none());
    drop(hub);
    let mut codes = Vec::new();
    while let Some((_, code)) = viewer.next_command().await {
        codes.push(code);
    }
    assert_eq!(codes, ["NetStream.Play.UnpublishNotify"]);
    assert!(
        viewer_end
            .await
            .unwrap()
            .unwrap()
            .starts_with("the source stopped")
    );
}

#[tokio::test]
async fn a_second_publisher_with_the_key_takes_over() {
    let ctx = context();
    let (io, first_end) = start(&ctx);
    let mut first = Client::handshake(io).await;
    first.connect("live").await;
    assert_eq!(first.start("publish", KEY).await, "NetStream.Publish.Start");
    let (io, _) = start(&ctx);
    let mut second = Client::handshake(io).await;
    second.connect("live").await;
    assert_eq!(
        second.start("publish", KEY).await,
        "NetStream.Publish.Start"
    );
    first.until_closed().await;
    let end = first_end.await.unwrap().unwrap();
    assert_eq!(end, "another publisher took over the stream key");
    assert!(
        ctx.hubs.get(DEVICE).is_some(),
        "the new publisher keeps the source"
    );
}

/// After the handshake, what a rude peer sends and the error it gets.
async fn rude(bytes: Vec<u8>) -> String {
    let ctx = context();
    let (io, server) = start(&ctx);
    let mut c = Client::handshake(io).await;
    c.raw(&bytes).await;
    c.until_closed().await;
    refusal(server).await
}

#[tokio::test]
async fn rude_peers_get_a_clear_reason_and_the_door() {
    let (io, server) = start(&context());
    let mut io = io;
    io.write_all(b"GET /live/cam HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    assert!(refusal(server).await.contains("not an RTMP handshake"));

    // A message claiming 16 MiB, or a mere 100 KiB from a peer that does not publish.
    let huge = vec![0x03, 0, 0, 0, 0xff, 0xff, 0xff, 20, 0, 0, 0, 0];
    assert!(rude(huge).await.contains("a message of 16777215 bytes"));
    let large = vec![0x03, 0, 0, 0, 0x01, 0x90, 0x00, 20, 0, 0, 0, 0];
    assert!(rude(large).await.contains("(the limit is 8192)"));

    // A chunk size past 31 bits.
    let mut w = BytesMut::new();
    let h = Header {
        chunk_stream: 2,
        timestamp: 0,
        type_id: chunk::SET_CHUNK_SIZE,
        stream_id: 0,
    };
    chunk::write(&mut w, &h, &0xffff_ffffu32.to_be_bytes(), 128);
    assert!(rude(w.to_vec()).await.contains("chunk size of 4294967295"));

    // A type 3 chunk out of nowhere.
    assert!(
        rude(vec![0xc9, 1, 2, 3])
            .await
            .contains("had no type 0 header")
    );

    // A command of 1000 nested objects.
    let mut bomb = command::encode(&[command::string("connect"), Amf0Value::Number(1.0)]).to_vec();
    for _ in 0..1000 {
        bomb.extend_from_slice(&[3, 0, 1, b'a']);
    }
    let h = Header {
        chunk_stream: 3,
        timestamp: 0,
        type_id: AMF0_COMMAND,
        stream_id: 0,
    };
    let bomb = chunk::chunked(&h, &bomb, 128).to_vec();
    assert!(rude(bomb).await.contains("nested deeper"));

    // Publishing before connect.
    let publish = command::encode(&[
        command::string("publish"),
        Amf0Value::Number(1.0),
        Amf0Value::Null,
        command::string(KEY),
    ]);
    let publish = chunk::chunked(&h, &publish, 128).to_vec();
    assert!(rude(publish).await.contains("before connect"));
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_stalls_mid_message_or_idles_is_dropped() {
    let h = Header {
        chunk_stream: 3,
        timestamp: 0,
        type_id: AMF0_COMMAND,
        stream_id: 0,
    };
    let connect = chunk::chunked(&h, &[5; 300], 128);
    let started = tokio::time::Instant::now();
    let reason = rude(connect[..200].to_vec()).await;
    assert!(
        reason.contains("stalled in the middle of a message"),
        "{reason}"
    );
    assert_eq!(started.elapsed().as_secs(), session::STALL.as_secs());

    let started = tokio::time::Instant::now();
    assert!(
        rude(Vec::new())
            .await
            .contains("neither published nor played")
    );
    assert_eq!(started.elapsed().as_secs(), session::LOGIN_WITHIN.as_secs());

    // A publisher that goes quiet.
    let ctx = context();
    let (io, server) = start(&ctx);
    let mut c = Client::handshake(io).await;
    c.connect("live").await;
    c.start("publish", KEY).await;
    c.until_closed().await;
    assert!(refusal(server).await.contains("a publisher sent nothing"));
}

/// Issue 16: a peer that keeps the connection busy (a small message every 5 s) but never
/// publishes nor plays is dropped when its time to log in is up.
#[tokio::test(start_paused = true)]
async fn a_busy_peer_that_never_logs_in_is_dropped() {
    let ctx = context();
    let (io, server) = start(&ctx);
    let mut c = Client::handshake(io).await;
    let started = tokio::time::Instant::now();
    let h = Header {
        chunk_stream: 2,
        timestamp: 0,
        type_id: 4, // user control: a ping reply
        stream_id: 0,
    };
    let ping = chunk::chunked(&h, &[0, 7, 0, 0, 0, 0], 128);
    let keep_busy = async {
        loop {
            if c.io.write_all(&ping).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    };
    let end = tokio::select! {
        end = server => end.unwrap(),
        () = keep_busy => panic!("the writes failed before the server ended"),
    };
    assert!(
        end.unwrap_err()
            .to_string()
            .contains("neither published nor played")
    );
    assert_eq!(started.elapsed().as_secs(), session::LOGIN_WITHIN.as_secs());
}

/// A publisher with a valid key and a viewer with a valid token stop counting as pending
/// against their address; a peer with a bad key never does.
#[tokio::test]
async fn publishing_or_playing_logs_the_connection_in() {
    let ctx = context();
    for (command, name, logged_in) in [
        ("publish", KEY.to_string(), true),
        ("publish", "wrong".to_string(), false),
        ("play", format!("{DEVICE}?token={TOKEN}"), true),
    ] {
        let (ours, theirs) = tokio::io::duplex(1 << 20);
        let ticket = Ticket::unlimited();
        let server = tokio::spawn(session::run(theirs, peer(), ctx.clone(), ticket.clone()));
        let mut c = Client::handshake(ours).await;
        c.connect("live").await;
        c.start(command, &name).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(!ticket.is_pending(), logged_in, "{command} {name}");
        drop(c);
        let _ = server.await;
    }
}
