//! The streaming engine with real peers: fake GStreamer cameras in, ffprobe and ffmpeg out.
//!
//! Skipped with a reason when GStreamer's RTSP server or ffmpeg is missing (`make test` installs
//! them as root).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use sited_tests::camera::FakeCameras;
use sited_tests::daemon::{ADMIN, Daemon, free_port, get};
use sited_tests::media::{T, decode, parse_probe, probe, setup};
use sited_tests::require_media;

/// Reads the WebSocket fMP4 output for a while; returns the hello message and the file.
async fn websocket(port: u16, cam: &str, messages: usize) -> (serde_json::Value, Vec<u8>) {
    use base64::Engine as _;
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://127.0.0.1:{port}/live/{cam}"
        ))
        .unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", ADMIN.0, ADMIN.1));
    request
        .headers_mut()
        .insert("authorization", format!("Basic {auth}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::client_async(request, tcp)
        .await
        .expect("websocket handshake");
    let mut hello = serde_json::Value::Null;
    let mut file = Vec::new();
    let mut got = 0;
    while got < messages {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) => {
                hello = serde_json::from_str(&t).unwrap()
            }
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Binary(b)))) => {
                file.extend_from_slice(&b);
                got += 1;
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("the WebSocket ended early: {other:?}"),
        }
    }
    (hello, file)
}

#[test]
fn every_output_decodes_in_real_players() {
    require_media!();
    let s = setup(
        "outputs",
        &["avc", "hevc:codec=h265", "talk:audio=aac"],
        &["talk"],
        &[],
    );
    assert_eq!(s.state("avc")["video"], "h264 640x360");
    assert_eq!(s.state("hevc")["video"], "h265 640x360");
    assert_eq!(s.state("talk")["audio"], "aac 1 ch");
    s.daemon.wait_for("a measured frame rate", T, || {
        s.state("avc")["fps"]
            .as_f64()
            .is_some_and(|f| f > 20.0 && f < 30.0)
    });

    // HTTP-FLV, read by ffprobe: H.264, and H.264 with AAC (from a camera pulled over UDP).
    let flv = probe(&s.url("/live/avc.flv"), 3);
    let (n, mono, _) = flv["h264 640x360"].clone();
    assert!(n >= 40 && mono, "HTTP-FLV avc: {flv:?}");
    let flv = probe(&s.url("/live/talk.flv"), 3);
    assert!(
        flv.contains_key("h264 640x360") && flv.keys().any(|k| k.starts_with("aac")),
        "{flv:?}"
    );
    assert!(flv.values().all(|(n, mono, _)| *n > 20 && *mono), "{flv:?}");

    // HLS with fMP4 segments, with a token instead of a password (the playlist carries it on).
    let token = token(s.web);
    let hls = probe(
        &format!(
            "http://127.0.0.1:{}/live/talk/index.m3u8?token={token}",
            s.live
        ),
        4,
    );
    assert!(
        hls.contains_key("h264 640x360") && hls.keys().any(|k| k.starts_with("aac")),
        "HLS: {hls:?}"
    );
    assert!(
        hls.values().all(|(n, mono, _)| *n > 20 && *mono),
        "HLS: {hls:?}"
    );

    // WebSocket fMP4, as a browser's MSE would get it, for H.264 and H.265.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (cam, codec, mse) in [
        ("avc", "h264 640x360", "avc1."),
        ("hevc", "hevc 640x360", "hvc1."),
    ] {
        let (hello, file) = rt.block_on(websocket(s.live, cam, 76));
        assert!(
            hello["codecs"].as_str().unwrap().starts_with(mse),
            "{hello}"
        );
        let path = s.daemon.dir.join(format!("{cam}.mp4"));
        std::fs::write(&path, file).unwrap();
        let mp4 = probe(path.to_str().unwrap(), 100);
        let (n, mono, _) = mp4.get(codec).cloned().unwrap_or_default();
        assert!(n >= 70 && mono, "fMP4 {cam}: {mp4:?}");
        let (decoded, errors) = decode(path.to_str().unwrap(), &[]);
        assert!(decoded && errors.is_empty(), "{cam}: {errors}");
    }
    // An unknown stream is a 404, a missing login a 401.
    assert_eq!(get(s.live, "/live/nope.flv").code, 404);
    let anonymous = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            &format!("http://127.0.0.1:{}/live/avc.flv", s.live),
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&anonymous.stderr).contains("401"));
}

#[test]
fn a_camera_that_dies_is_reconnected_and_its_stream_resumes() {
    require_media!();
    let mut s = setup("resume", &["door"], &[], &[]);
    s.cams.kill();
    s.wait_state("door", "failed");
    assert!(
        s.state("door")["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty())
    );
    s.cams.restart();
    s.wait_state("door", "streaming");
    let flv = probe(&s.url("/live/door.flv"), 2);
    assert!(
        flv.get("h264 640x360").is_some_and(|(n, _, _)| *n > 20),
        "{flv:?}"
    );
    let metrics = get(s.web, "/metrics").body;
    assert!(
        metrics.contains("sited_camera_state{camera=\"door\",state=\"streaming\"} 1"),
        "{metrics}"
    );
}

#[test]
fn stalled_viewers_never_slow_the_others_and_are_dropped() {
    require_media!();
    let s = setup("stall", &["gate:bitrate=4000"], &[], &[]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Viewers that connect and then never read: HTTP-FLV, and MSE over a WebSocket.
        let basic = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", ADMIN.0, ADMIN.1))
        };
        let mut stalled = Vec::new();
        for head in [
            "GET /live/gate.flv HTTP/1.1".to_string(),
            "GET /live/gate HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==".to_string(),
        ] {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_recv_buffer_size(4096).unwrap();
            let mut stream = socket
                .connect(std::net::SocketAddr::from(([127, 0, 0, 1], s.live)))
                .await
                .unwrap();
            let request = format!("{head}\r\nHost: x\r\nAuthorization: Basic {basic}\r\n\r\n");
            stream.try_write(request.as_bytes()).unwrap();
            // Served (200 for FLV, 101 for the WebSocket): then never read again.
            let mut head = [0u8; 12];
            tokio::io::AsyncReadExt::read_exact(&mut stream, &mut head)
                .await
                .unwrap();
            let status = String::from_utf8_lossy(&head).to_string();
            assert!(
                status.ends_with("200") || status.ends_with("101"),
                "{head:?}: {status}"
            );
            stalled.push(stream);
        }
        tokio::time::sleep(Duration::from_secs(4)).await;
        // Meanwhile a normal viewer gets every frame: 25 fps for 6 s.
        let start = Instant::now();
        let (_, _) = websocket(s.live, "gate", 150).await;
        let took = start.elapsed().as_secs_f64();
        assert!(
            took < 7.0,
            "150 fragments (6 s of video) took {took:.1} s next to a stalled viewer"
        );
        // Issue 16 §1: past the stall limit (10 s without progress) both are dropped, as RTMP
        // viewers are: what the buffers hold drains, then the connection ends.
        tokio::time::sleep(Duration::from_secs(12)).await;
        for (what, mut stream) in ["HTTP-FLV", "WebSocket"].into_iter().zip(stalled) {
            use tokio::io::AsyncReadExt as _;
            let mut buf = vec![0u8; 64 << 10];
            let ended = tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            })
            .await;
            assert!(ended.is_ok(), "the stalled {what} viewer was never dropped");
        }
    });
}

#[test]
fn the_rtsp_server_re_serves_every_camera() {
    require_media!();
    let cams = FakeCameras::start(&["avc", "hevc:codec=h265", "talk:audio=aac"]);
    let (tls, api, rtsp) = (free_port(), free_port(), free_port());
    let mut site = format!(
        "[site]\nname = \"nova\"\nlayout = \"novavms\"\n\n[networks]\nclients = [\"192.0.2.0/24\"]\n\n[[nodes]]\nname = \"n1\"\naddress = \"192.0.2.1\"\nroles = [\"application\", \"media\"]\n\n[[users]]\nname = \"{}\"\nrole = \"admin\"\npassword_hash = \"{}\"\n",
        ADMIN.0,
        sited_tests::daemon::admin_hash()
    );
    for cam in ["avc", "hevc", "talk"] {
        site.push_str(&format!(
            "\n[[cameras]]\nname = \"{cam}\"\nurl = \"{}\"\n",
            cams.url(cam)
        ));
    }
    site.push_str(&format!(
        "\n[ports]\nweb_tls = {tls}\napi = {api}\nrtsp = {rtsp}\n"
    ));
    let d = Daemon::start(
        "rtsp",
        Some(&site),
        &["--firewall", "none", "--node", "n1", "--force-port-offset"],
    );
    d.wait_for("three cameras", T, || {
        get(api, "/api/v1/cameras")
            .body
            .matches("\"streaming\"")
            .count()
            == 3
    });
    let url = |cam: &str| format!("rtsp://{}:{}@127.0.0.1:{rtsp}/{cam}", ADMIN.0, ADMIN.1);
    for (cam, want) in [("avc", "h264 640x360"), ("hevc", "hevc 640x360")] {
        let got = probe_rtsp(&url(cam));
        assert!(
            got.get(want).is_some_and(|(n, mono, _)| *n >= 40 && *mono),
            "RTSP {cam}: {got:?}"
        );
    }
    let got = probe_rtsp(&url("talk"));
    assert!(
        got.contains_key("h264 640x360") && got.keys().any(|k| k.starts_with("aac")),
        "RTSP talk: {got:?}"
    );
    let (decoded, errors) = decode(&url("talk"), &["-rtsp_transport", "tcp", "-t", "2"]);
    assert!(decoded, "{errors}");
    let refused = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            &format!("rtsp://127.0.0.1:{rtsp}/avc"),
        ])
        .output()
        .unwrap();
    assert!(
        !refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

/// The next message a raw RTSP connection reads: an interleaved packet (`None`, counted in
/// `packets` by channel) or a response's status line and headers.
fn rtsp_read(conn: &mut std::net::TcpStream, packets: &mut HashMap<u8, usize>) -> Option<String> {
    use std::io::Read as _;
    let mut byte = [0u8; 1];
    conn.read_exact(&mut byte).unwrap();
    if byte[0] == b'$' {
        let mut head = [0u8; 3];
        conn.read_exact(&mut head).unwrap();
        let mut body = vec![0u8; usize::from(u16::from_be_bytes([head[1], head[2]]))];
        conn.read_exact(&mut body).unwrap();
        *packets.entry(head[0]).or_default() += 1;
        return None;
    }
    let mut text = vec![byte[0]];
    while !text.ends_with(b"\r\n\r\n") {
        conn.read_exact(&mut byte).unwrap();
        text.push(byte[0]);
    }
    let text = String::from_utf8(text).unwrap();
    if let Some(len) = text
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
    {
        let mut body = vec![0u8; len.trim().parse().unwrap()];
        conn.read_exact(&mut body).unwrap();
    }
    Some(text)
}

/// One request on a raw RTSP connection: the status line and headers of its answer, the
/// interleaved packets before it counted in `packets`.
fn rtsp_ask(
    conn: &mut std::net::TcpStream,
    request: &str,
    packets: &mut HashMap<u8, usize>,
) -> String {
    use std::io::Write as _;
    conn.write_all(request.as_bytes()).unwrap();
    loop {
        if let Some(text) = rtsp_read(conn, packets) {
            return text;
        }
    }
}

/// Presentation times per codec (`h264`, `aac`) of `seconds` of an RTSP stream, read by ffprobe.
fn rtsp_times(url: &str, seconds: u32) -> HashMap<String, Vec<f64>> {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-read_intervals",
            &format!("%+{seconds}"),
            "-show_entries",
            "stream=index,codec_name:packet=stream_index,pts_time",
            "-of",
            "compact=p=0:nk=0",
            url,
        ])
        .output()
        .expect("ffprobe");
    let mut codecs = HashMap::new();
    let mut times: HashMap<String, Vec<f64>> = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let kv: HashMap<&str, &str> = line.split('|').filter_map(|f| f.split_once('=')).collect();
        if let (Some(i), Some(c)) = (kv.get("index"), kv.get("codec_name")) {
            codecs.insert(i.to_string(), c.to_string());
        } else if let (Some(i), Some(t)) = (
            kv.get("stream_index"),
            kv.get("pts_time").and_then(|t| t.parse::<f64>().ok()),
        ) {
            times.entry(i.to_string()).or_default().push(t);
        }
    }
    // ffprobe lists the streams after the packets.
    times
        .into_iter()
        .filter_map(|(i, t)| Some((codecs.get(&i)?.clone(), t)))
        .collect()
}

#[test]
fn sited_ingests_its_own_rtsp_re_serve_with_audio_and_keep_alives() {
    require_media!();
    let cams = FakeCameras::start(&["talk:audio=aac"]);
    let (tls, api, rtsp) = (free_port(), free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("sited-reingest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let password = dir.join("admin.password");
    std::fs::write(&password, format!("{}\n", ADMIN.1)).unwrap();
    // "again" is a camera like any other, whose URL is this node's own re-serve of "talk".
    let site = format!(
        "[site]\nname = \"nova\"\nlayout = \"novavms\"\n\n[networks]\nclients = [\"192.0.2.0/24\"]\n\n[[nodes]]\nname = \"n1\"\naddress = \"192.0.2.1\"\nroles = [\"application\", \"media\"]\n\n[[users]]\nname = \"{}\"\nrole = \"admin\"\npassword_hash = \"{}\"\n\n[[cameras]]\nname = \"talk\"\nurl = \"{}\"\n\n[[cameras]]\nname = \"again\"\nurl = \"rtsp://127.0.0.1:{rtsp}/talk\"\nusername = \"{}\"\npassword_file = \"{}\"\n\n[ports]\nweb_tls = {tls}\napi = {api}\nrtsp = {rtsp}\n",
        ADMIN.0,
        sited_tests::daemon::admin_hash(),
        cams.url("talk"),
        ADMIN.0,
        password.display()
    );
    let d = Daemon::start(
        "reingest",
        Some(&site),
        &["--firewall", "none", "--node", "n1", "--force-port-offset"],
    );
    let camera = |name: &str| {
        get(api, "/api/v1/cameras")
            .json()
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or_default()
    };
    d.wait_for("the re-serve ingested", T, || {
        camera("again")["state"] == "streaming"
    });
    let again = camera("again");
    assert_eq!(
        (again["video"].as_str(), again["audio"].as_str()),
        (Some("h264 640x360"), Some("aac 1 ch")),
        "{again}"
    );

    // Served once more and read by ffmpeg: both tracks, in sync (the sender reports and
    // RTP-Info put them on one clock).
    let url = |cam: &str| format!("rtsp://{}:{}@127.0.0.1:{rtsp}/{cam}", ADMIN.0, ADMIN.1);
    let times = rtsp_times(&url("again"), 4);
    let (video, audio) = (&times["h264"], &times["aac"]);
    assert!(video.len() >= 50 && audio.len() >= 50, "{times:?}");
    let last = |t: &Vec<f64>| t.iter().copied().fold(f64::MIN, f64::max);
    let skew = (last(video) - last(audio)).abs();
    assert!(skew < 0.3, "audio and video {skew:.3} s apart: {times:?}");

    // A raw client: what retina and ffmpeg rely on, and the malformed requests.
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", rtsp)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let auth = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", ADMIN.0, ADMIN.1))
    };
    let base = format!("rtsp://127.0.0.1:{rtsp}/talk");
    let mut packets = HashMap::new();
    let mut ask = |request: String| rtsp_ask(&mut conn, &request, &mut packets);
    let no_cseq = ask(format!("OPTIONS {base} RTSP/1.0\r\n\r\n"));
    assert!(no_cseq.starts_with("RTSP/1.0 400 "), "{no_cseq}");
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", rtsp)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut ask = |request: String| rtsp_ask(&mut conn, &request, &mut packets);
    let describe = ask(format!(
        "DESCRIBE {base} RTSP/1.0\r\nCSeq: 1\r\nAuthorization: Basic {auth}\r\n\r\n"
    ));
    assert!(describe.starts_with("RTSP/1.0 200 "), "{describe}");
    for (track, code) in [
        ("trackID=7", "404"),
        ("*", "404"),
        ("trackID=0", "200"),
        ("trackID=1", "200"),
    ] {
        let reply = ask(format!(
            "SETUP {base}/{track} RTSP/1.0\r\nCSeq: 2\r\nAuthorization: Basic {auth}\r\nTransport: RTP/AVP/TCP;unicast\r\n\r\n"
        ));
        assert!(
            reply.starts_with(&format!("RTSP/1.0 {code} ")),
            "{track}: {reply}"
        );
    }
    let play = ask(format!(
        "PLAY {base}/ RTSP/1.0\r\nCSeq: 3\r\nAuthorization: Basic {auth}\r\n\r\n"
    ));
    let info = play
        .lines()
        .find_map(|l| l.strip_prefix("RTP-Info: "))
        .unwrap_or_else(|| panic!("no RTP-Info: {play}"));
    assert!(
        info.contains(&format!("url={base}/trackID=0;seq="))
            && info.matches("rtptime=").count() == 2,
        "{info}"
    );
    // Six seconds of playing, read as they come.
    let playing = Instant::now();
    while playing.elapsed() < Duration::from_secs(6) {
        if let Some(text) = rtsp_read(&mut conn, &mut packets) {
            panic!("an answer to nothing: {text}");
        }
    }
    let mut ask = |request: String| rtsp_ask(&mut conn, &request, &mut packets);
    for (cseq, method) in [(4, "GET_PARAMETER"), (5, "OPTIONS"), (6, "TEARDOWN")] {
        let reply = ask(format!(
            "{method} {base}/ RTSP/1.0\r\nCSeq: {cseq}\r\nSession: x\r\n\r\n"
        ));
        assert!(
            reply.starts_with("RTSP/1.0 200 ") && reply.contains(&format!("CSeq: {cseq}\r\n")),
            "{method}: {reply}"
        );
    }
    // Video and audio flowed, with sender reports on the odd channels: one right after PLAY,
    // one every 5 s.
    assert!(packets[&0] > 100 && packets[&2] > 100, "{packets:?}");
    assert!(packets[&1] >= 2 && packets[&3] >= 2, "{packets:?}");

    // retina sends a keep-alive every 30 s and drops a session whose keep-alive goes
    // unanswered at the next one: two rounds.
    let failures = || d.log().matches("camera failed").count();
    let before = failures();
    std::thread::sleep(Duration::from_secs(65));
    let again = camera("again");
    assert_eq!(again["state"], "streaming", "{again}");
    assert_eq!(failures(), before, "the re-serve was dropped: {}", d.log());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_open_gop_h265_camera_is_recorded_in_segments_and_plays_live_from_a_current_gop() {
    require_media!();
    // The fake camera's x265: after the first IDR, every keyframe is a CRA (an open GOP), which
    // retina does not call a random access point. (Its RASL pictures, with B-frames, are left to
    // the unit tests of media::nal and media::hub: an RTSP camera's B-frames are not recorded
    // yet, as its frames carry presentation times only.)
    let s = sited_tests::media::setup_with(
        "opengop",
        &["open:codec=h265"],
        &[],
        &["open"],
        "",
        None,
        &["--segment-secs", "4"],
    );
    assert_eq!(s.state("open")["video"], "h265 640x360");
    let joined = Instant::now();
    std::thread::sleep(Duration::from_secs(30));

    // Recorded in segments cut at the CRAs, about 4 s each.
    let store = sited::store::Store::open(&s.daemon.dir.join("state/sited.db")).unwrap();
    let rows = store.recording_segments("open", 0, i64::MAX / 2).unwrap();
    let lengths: Vec<i64> = rows
        .iter()
        .filter(|r| r.complete)
        .map(|r| r.end_ms - r.start_ms)
        .collect();
    assert!(
        lengths.len() >= 4 && lengths.iter().all(|l| (3000..=6500).contains(l)),
        "segments of {lengths:?} ms"
    );
    let root = s.daemon.dir.join("state/recordings");
    let last = rows.iter().rfind(|r| r.complete).unwrap();
    let (decoded, errors) = decode(root.join(&last.path).to_str().unwrap(), &[]);
    assert!(decoded, "{}: {errors}", last.path);

    // Live HLS: segments come, and they decode.
    let hls = probe(&s.url("/live/open/index.m3u8"), 4);
    assert!(
        hls.get("hevc 640x360").is_some_and(|(n, _, _)| *n >= 50),
        "HLS: {hls:?}"
    );
    let (decoded, errors) = decode(&s.url("/live/open/index.m3u8"), &["-t", "3"]);
    assert!(decoded, "{errors}");

    // A new viewer 30 s in gets the current GOP (at most a second of frames at once, then live),
    // not a cache grown since the first IDR (750 frames at once): 76 frames take more than 2 s
    // at 25 fps, and more than 1 s however a loaded machine bunches the live ones.
    assert!(joined.elapsed() > Duration::from_secs(30));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let start = Instant::now();
    let (_, file) = rt.block_on(websocket(s.live, "open", 76));
    let took = start.elapsed();
    assert!(took > Duration::from_secs(1), "76 frames in {took:?}");
    let path = s.daemon.dir.join("open.mp4");
    std::fs::write(&path, file).unwrap();
    let (decoded, errors) = decode(path.to_str().unwrap(), &[]);
    assert!(decoded, "{errors}");
    assert!(s.state("open")["warning"].is_null(), "{}", s.state("open"));
}

fn probe_rtsp(url: &str) -> HashMap<String, (usize, bool, String)> {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-read_intervals",
            "%+3",
            "-show_entries",
            "stream=index,codec_name,width,height:packet=stream_index,dts_time",
            "-of",
            "compact=p=0:nk=0",
            url,
        ])
        .output()
        .expect("ffprobe");
    parse_probe(&String::from_utf8_lossy(&out.stdout))
}

#[test]
fn a_recorded_camera_gives_a_ten_second_clip_that_plays() {
    require_media!();
    let s = setup("recorder", &["rec"], &[], &["rec"]);
    let (d, web) = (&s.daemon, s.web);
    std::thread::sleep(Duration::from_secs(30));
    let spans = get(web, "/api/v1/cameras/rec/recordings").json();
    let span = &spans[0];
    let (start, end) = (
        span["start"].as_str().unwrap(),
        span["end"].as_str().unwrap(),
    );
    let secs = |t: &str| humantime::parse_rfc3339_weak(t).unwrap();
    let recorded = secs(end).duration_since(secs(start)).unwrap();
    assert!(
        recorded >= Duration::from_secs(25),
        "recorded {recorded:?}: {spans}"
    );
    let from = humantime::format_rfc3339_millis(secs(start) + Duration::from_secs(10)).to_string();
    let to = humantime::format_rfc3339_millis(secs(start) + Duration::from_secs(20)).to_string();
    let path = format!("/api/v1/cameras/rec/clip.mp4?start={from}&end={to}");

    // The whole clip, with its length announced.
    let file = d.dir.join("clip.mp4");
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "-D",
            "-",
            "-o",
            file.to_str().unwrap(),
            "-u",
            &format!("{}:{}", ADMIN.0, ADMIN.1),
            &format!("http://127.0.0.1:{web}{path}"),
        ])
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    let len = std::fs::metadata(&file).unwrap().len();
    assert!(
        head.contains(&format!("content-length: {len}")) && head.contains("accept-ranges: bytes"),
        "{head}"
    );
    let duration = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let seconds: f64 = String::from_utf8_lossy(&duration.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0);
    assert!(
        (seconds - 10.0).abs() <= 1.05,
        "the clip lasts {seconds} s, not 10 s within one GOP"
    );
    let probed = probe(file.to_str().unwrap(), 100);
    assert!(
        probed
            .get("h264 640x360")
            .is_some_and(|(n, mono, _)| *n >= 240 && *mono),
        "{probed:?}"
    );

    // A range of it is the same bytes.
    let part = std::process::Command::new("curl")
        .args([
            "-sS",
            "-r",
            "1000-1999",
            "-u",
            &format!("{}:{}", ADMIN.0, ADMIN.1),
            &format!("http://127.0.0.1:{web}{path}"),
        ])
        .output()
        .unwrap();
    let whole = std::fs::read(&file).unwrap();
    assert_eq!(
        part.stdout,
        whole[1000..2000].to_vec(),
        "a Range request returns those bytes"
    );
}

#[test]
fn a_killed_daemon_leaves_a_consistent_index_and_a_recorded_gap() {
    require_media!();
    let mut s = setup("crash", &["door"], &[], &["door"]);
    let web = s.web;
    let d = &mut s.daemon;
    std::thread::sleep(Duration::from_secs(8));
    d.signal("KILL");
    let _ = d.child.take().map(|mut c| c.wait());
    std::thread::sleep(Duration::from_secs(3));
    d.spawn();
    d.wait_for("the camera again", T, || {
        get(web, "/api/v1/cameras").body.contains("\"streaming\"")
    });
    std::thread::sleep(Duration::from_secs(6));
    let spans = get(web, "/api/v1/cameras/door/recordings").json();
    let spans = spans.as_array().cloned().unwrap_or_default();
    assert_eq!(
        spans.len(),
        2,
        "the time sited was down is a gap between two spans: {spans:?}"
    );
    let t = |v: &serde_json::Value| humantime::parse_rfc3339_weak(v.as_str().unwrap()).unwrap();
    let before = t(&spans[0]["end"])
        .duration_since(t(&spans[0]["start"]))
        .unwrap();
    let gap = t(&spans[1]["start"])
        .duration_since(t(&spans[0]["end"]))
        .unwrap();
    assert!(
        before >= Duration::from_secs(6),
        "the first span kept what was recorded before the kill: {before:?}"
    );
    assert!(
        gap >= Duration::from_secs(2) && gap < Duration::from_secs(30),
        "gap {gap:?}"
    );
    assert!(
        d.log().contains("recordings recovered"),
        "recovery ran at start-up"
    );
}

/// A VALT site with one mobile device, `ipad`, whose key is `s3cret-key`, started with `ssl`
/// ("enabled" or "disabled") and the `[ports]` table `ports`.
fn mobile_site(name: &str, ssl: &str, ports: &str) -> Daemon {
    let mut d = Daemon::unstarted(
        name,
        &["--firewall", "none", "--node", "app", "--force-port-offset"],
    );
    let key = d.dir.join("ipad.key");
    std::fs::write(&key, "s3cret-key\n").unwrap();
    let site = format!(
        "[site]\nname = \"beam\"\nlayout = \"valt\"\nssl = \"{ssl}\"\n\n[networks]\nclients = [\"192.0.2.0/24\"]\nmobile = [\"203.0.113.0/24\"]\n\n[features]\nmobile = true\n\n[[nodes]]\nname = \"app\"\naddress = \"192.0.2.1\"\nroles = [\"application\", \"media\"]\n\n[[mobile_devices]]\nname = \"ipad\"\nkey_file = \"{}\"\n\n[[users]]\nname = \"{}\"\nrole = \"admin\"\npassword_hash = \"{}\"\n\n{ports}",
        key.display(),
        ADMIN.0,
        sited_tests::daemon::admin_hash()
    );
    std::fs::write(d.config(), site).unwrap();
    d.spawn();
    d
}

/// [`mobile_site`] without TLS, on free ports, once its web service answers: (daemon, web
/// port, live port).
fn plain_mobile_site(name: &str) -> (Daemon, u16, u16) {
    let (web, live, downloads) = (free_port(), free_port(), free_port());
    let d = mobile_site(
        name,
        "disabled",
        &format!("[ports]\nweb = {web}\nlive = {live}\ndownloads = {downloads}\n"),
    );
    d.wait_for("the web service", T, || {
        get(web, "/api/v1/health").code == 200
    });
    (d, web, live)
}

/// A viewer token for the admin, from `POST /api/v1/tokens` on the web port.
fn token(web: u16) -> String {
    sited_tests::daemon::post(web, "/api/v1/tokens", "").json()["token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// ffmpeg publishing 12 s of 640x360 H.264 and AAC to `url`, in real time; `x264` adds
/// encoder options (`-bf 2` for B-frames).
fn publish(url: &str, x264: &[&str]) -> std::process::Child {
    std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine",
            "-t",
            "12",
            "-c:v",
            "libx264",
            "-g",
            "25",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            "-f",
            "flv",
        ])
        .args(x264)
        .arg(url)
        .spawn()
        .expect("ffmpeg")
}

/// The video packets of `input` over `seconds`: (packets, packets shown before the one decoded
/// just ahead of them, whether every packet is shown no earlier than decoded, whether no two
/// share a presentation time).
fn reordering(input: &str, seconds: u32) -> (usize, usize, bool, bool) {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-read_intervals"])
        .arg(format!("%+{seconds}"))
        .args([
            "-show_entries",
            "packet=pts_time,dts_time",
            "-of",
            "csv=p=0",
            input,
        ])
        .output()
        .expect("ffprobe");
    let times: Vec<(f64, f64)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (pts, dts) = l.split_once(',')?;
            Some((pts.parse().ok()?, dts.trim_end_matches(',').parse().ok()?))
        })
        .collect();
    let reordered = times.windows(2).filter(|w| w[1].0 < w[0].0).count();
    let causal = times.iter().all(|(pts, dts)| pts >= dts);
    let mut shown: Vec<i64> = times
        .iter()
        .map(|(pts, _)| (pts * 1000.0).round() as i64)
        .collect();
    shown.sort_unstable();
    shown.dedup();
    (times.len(), reordered, causal, shown.len() == times.len())
}

#[test]
fn a_publisher_with_b_frames_keeps_its_display_order_on_every_output() {
    require_media!();
    let (d, web, live) = plain_mobile_site("bframes");
    // x264's B-frames: the encoder sends frames in decode order with composition times.
    let mut publisher = publish(
        &format!("rtmp://127.0.0.1:{live}/live/s3cret-key"),
        &["-bf", "2", "-x264-params", "b-adapt=0"],
    );
    std::thread::sleep(Duration::from_secs(3));
    let token = token(web);
    let flv = reordering(
        &format!("http://127.0.0.1:{live}/live/ipad.flv?token={token}"),
        3,
    );
    let rtmp = reordering(
        &format!("rtmp://127.0.0.1:{live}/live/ipad?token={token}"),
        3,
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (_, file) = rt.block_on(websocket(live, "ipad", 200));
    let path = d.dir.join("ipad.mp4");
    std::fs::write(&path, file).unwrap();
    let fmp4 = reordering(path.to_str().unwrap(), 100);
    let _ = publisher.kill();
    let _ = publisher.wait();
    for (output, (packets, reordered, causal, distinct)) in
        [("HTTP-FLV", flv), ("RTMP", rtmp), ("WebSocket fMP4", fmp4)]
    {
        assert!(
            packets >= 40 && reordered >= packets / 6 && causal && distinct,
            "{output}: {packets} packets, {reordered} shown before the one decoded ahead, \
             shown no earlier than decoded: {causal}, distinct display times: {distinct}"
        );
    }
}

#[test]
fn a_mobile_device_publishes_over_rtmps_on_444_beside_https() {
    require_media!();
    let ports = [
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    ];
    let [web, web_tls, live, live_tls, downloads] = ports;
    let d = mobile_site(
        "rtmps",
        "enabled",
        &format!(
            "[ports]\nweb = {web}\nweb_tls = {web_tls}\nlive = {live}\nlive_tls = {live_tls}\ndownloads = {downloads}\n"
        ),
    );
    // With SSL, every listener is TLS: wait for the daemon to say it is ready.
    d.wait_for("the daemon to be ready", T, || d.log().contains("READY"));
    // RTMPS: the RTMP handshake arrives after TLS on the port that also serves WSS and HTTPS.
    let mut publisher = publish(
        &format!("rtmps://127.0.0.1:{live_tls}/live/s3cret-key"),
        &[],
    );
    std::thread::sleep(Duration::from_secs(3));
    let flv = probe(
        &format!(
            "https://{}:{}@127.0.0.1:{live_tls}/live/ipad.flv",
            ADMIN.0, ADMIN.1
        ),
        3,
    );
    let _ = publisher.kill();
    let _ = publisher.wait();
    assert!(
        flv.get("h264 640x360")
            .is_some_and(|(n, mono, _)| *n >= 40 && *mono),
        "HTTP-FLV over TLS of the device published over RTMPS: {flv:?}\n{}",
        d.log()
    );
}

#[test]
fn a_mobile_device_publishes_over_rtmp_on_the_live_port_and_viewers_read_it() {
    require_media!();
    let (_daemon, web, live) = plain_mobile_site("rtmp");
    let mut publisher = publish(&format!("rtmp://127.0.0.1:{live}/live/s3cret-key"), &[]);
    std::thread::sleep(Duration::from_secs(3));
    // HTTP-FLV on the same port: the listener tells RTMP (0x03) from HTTP.
    let flv = probe(
        &format!(
            "http://{}:{}@127.0.0.1:{live}/live/ipad.flv",
            ADMIN.0, ADMIN.1
        ),
        3,
    );
    assert!(
        flv.get("h264 640x360")
            .is_some_and(|(n, mono, _)| *n >= 40 && *mono),
        "HTTP-FLV of the device: {flv:?}"
    );
    // RTMP play with a token.
    let token = token(web);
    let rtmp = probe(
        &format!("rtmp://127.0.0.1:{live}/live/ipad?token={token}"),
        2,
    );
    assert!(
        rtmp.contains_key("h264 640x360") && rtmp.keys().any(|k| k.starts_with("aac")),
        "RTMP play: {rtmp:?}"
    );
    // An unknown key cannot publish.
    let bad = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120:rate=5",
            "-t",
            "1",
            "-c:v",
            "libx264",
            "-f",
            "flv",
        ])
        .arg(format!("rtmp://127.0.0.1:{live}/live/wrong-key"))
        .output()
        .unwrap();
    assert!(!bad.status.success(), "an unknown key was accepted");
    let _ = publisher.kill();
    let _ = publisher.wait();
}
