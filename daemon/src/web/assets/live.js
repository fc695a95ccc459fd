// sited's live view: fragmented MP4 over WebSocket into Media Source Extensions.
// Each <video data-stream="NAME"> plays ws(s)://<this host>:<data-port>/live/NAME?token=…; the
// first message names the codecs, then come the init segment and one fragment per frame.
"use strict";

function play(video, base, token) {
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
      video.src = URL.createObjectURL(media);
      video.play().catch(() => {});
      say(`${hello.width}×${hello.height}`);
      return;
    }
    queue.push(event.data);
    pump();
  };
  ws.onclose = () => {
    say("reconnecting");
    setTimeout(() => play(video, base, token), 2000);
  };
}

document.addEventListener("DOMContentLoaded", () => {
  const grid = document.querySelector("[data-live-port]");
  if (!grid) return;
  const scheme = grid.dataset.liveTls === "true" ? "wss" : "ws";
  const base = `${scheme}://${location.hostname}:${grid.dataset.livePort}`;
  for (const video of grid.querySelectorAll("video[data-stream]")) play(video, base, grid.dataset.token);
});
