// sited's live view. Where the node serves WebRTC (data-whep="true", NovaVMS), each tile plays
// over WHEP: direct ICE first, and after 5 s without a connection ICE restarts through sited's
// TURN relay (iceTransportPolicy "relay", the servers from the answer's Link headers). Where
// WebRTC is ruled out (no RTCPeerConnection, B-frames, no common codec, no UDP port in the
// layout) or fails, the tile falls back to MSE and says why. `/live?ice=relay` goes through TURN
// at once (the first WHEP request then only fetches the relay's credentials).
// MSE: <video data-stream="NAME"> plays ws(s)://<host>:<data-port>/live/NAME?token=…; the first
// message names the codecs, then come the init segment and one fragment per frame.
"use strict";

const DIRECT_ICE_MS = 5000;

// The ICE servers of a WHEP answer's Link headers (rel="ice-server").
function iceServers(response) {
  const link = response.headers.get("Link") || "";
  const servers = [];
  for (const m of link.matchAll(/<([^>]+)>([^,]*)/g)) {
    if (!/rel="ice-server"/.test(m[2])) continue;
    const param = (name) => (m[2].match(new RegExp(`${name}="([^"]*)"`)) || [])[1];
    servers.push({ urls: m[1], username: param("username"), credential: param("credential") });
  }
  return servers;
}

// One WHEP attempt; resolves to the peer connection once connected, rejects with a reason.
async function whep(video, url, config, waitMs) {
  const pc = new RTCPeerConnection(config);
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.ontrack = (event) => {
    video.srcObject = event.streams[0] || new MediaStream([event.track]);
    video.play().catch(() => {});
  };
  await pc.setLocalDescription(await pc.createOffer());
  // ICE-lite server: gather first, then send one complete offer (no trickle needed).
  await new Promise((done) => {
    if (pc.iceGatheringState === "complete") return done();
    pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && done());
    setTimeout(done, 1000);
  });
  const response = await fetch(url, { method: "POST", headers: { "Content-Type": "application/sdp" }, body: pc.localDescription.sdp });
  if (response.status !== 201) {
    pc.close();
    throw { fatal: true, reason: (await response.text()).trim() || `WHEP answered ${response.status}` };
  }
  const location = response.headers.get("Location");
  const servers = iceServers(response);
  await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
  const connected = await new Promise((done) => {
    const check = () => pc.connectionState === "connected" && done(true);
    pc.addEventListener("connectionstatechange", check);
    setTimeout(() => done(false), waitMs);
  });
  if (!connected) {
    pc.close();
    fetch(location, { method: "DELETE" }).catch(() => {});
    throw { fatal: false, servers, reason: "no connection" };
  }
  video.peerConnection = pc;
  return { pc, location };
}

async function playWebrtc(video, token, say, fallback) {
  const url = `/live/${encodeURIComponent(video.dataset.stream)}/whep?token=${token}`;
  const relayOnly = new URLSearchParams(location.search).get("ice") === "relay";
  let session;
  try {
    say("WebRTC: connecting");
    session = await whep(video, url, {}, relayOnly ? 0 : DIRECT_ICE_MS);
    say("WebRTC");
  } catch (direct) {
    if (direct.fatal || !direct.servers || direct.servers.length === 0) {
      return fallback(`MSE (WebRTC: ${direct.reason})`);
    }
    try {
      say("WebRTC: relaying through TURN");
      session = await whep(video, url, { iceServers: direct.servers, iceTransportPolicy: "relay" }, DIRECT_ICE_MS);
      say("WebRTC via TURN");
    } catch (relayed) {
      return fallback(`MSE (WebRTC: ${relayed.reason}, also through TURN)`);
    }
  }
  session.pc.addEventListener("connectionstatechange", () => {
    if (["failed", "closed", "disconnected"].includes(session.pc.connectionState)) {
      session.pc.close();
      setTimeout(() => playWebrtc(video, token, say, fallback), 2000);
    }
  });
}

function play(video, base, token, reason) {
  const url = `${base}/live/${encodeURIComponent(video.dataset.stream)}?token=${token}`;
  let sourceBuffer = null;
  let queue = [];
  const status = video.parentElement.querySelector(".state");
  const say = (text) => { if (status) status.textContent = text; };

  function pump() {
    if (!sourceBuffer || sourceBuffer.updating || queue.length === 0) return;
    const buffered = video.buffered;
    // Stay at the live edge, and keep at most 30 s in memory.
    if (buffered.length > 0) {
      const end = buffered.end(buffered.length - 1);
      if (end - video.currentTime > 2) video.currentTime = end - 0.3;
      if (video.currentTime - buffered.start(0) > 30) {
        sourceBuffer.remove(buffered.start(0), video.currentTime - 10);
        return;
      }
    }
    sourceBuffer.appendBuffer(queue.shift());
  }

  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => say("connecting");
  ws.onmessage = (event) => {
    if (typeof event.data === "string") {
      const hello = JSON.parse(event.data);
      const type = `video/mp4; codecs="${hello.codecs}"`;
      if (!window.MediaSource || !MediaSource.isTypeSupported(type)) {
        say(`this browser cannot play ${hello.codecs}`);
        ws.close();
        return;
      }
      queue = [];
      const media = new MediaSource();
      media.addEventListener("sourceopen", () => {
        sourceBuffer = media.addSourceBuffer(type);
        sourceBuffer.mode = "segments";
        sourceBuffer.addEventListener("updateend", pump);
        pump();
      });
      video.srcObject = null;
      video.src = URL.createObjectURL(media);
      video.play().catch(() => {});
      say(`${reason || "MSE"} ${hello.width}×${hello.height}`);
      return;
    }
    queue.push(event.data);
    pump();
  };
  ws.onclose = () => {
    say("reconnecting");
    setTimeout(() => play(video, base, token, reason), 2000);
  };
}

document.addEventListener("DOMContentLoaded", () => {
  const grid = document.querySelector("[data-live-port]");
  if (!grid) return;
  // Without a live port of its own, MSE plays from the page's own origin.
  const base = grid.dataset.livePort
    ? `${grid.dataset.liveTls === "true" ? "wss" : "ws"}://${location.hostname}:${grid.dataset.livePort}`
    : `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}`;
  const token = grid.dataset.token;
  for (const video of grid.querySelectorAll("video[data-stream]")) {
    const status = video.parentElement.querySelector(".state");
    const say = (text) => { if (status) status.textContent = text; };
    const mse = (reason) => play(video, base, token, reason);
    if (grid.dataset.whep !== "true") mse();
    else if (!window.RTCPeerConnection) mse("MSE (this browser has no WebRTC)");
    else playWebrtc(video, token, say, mse);
  }
});
