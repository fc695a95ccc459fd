#!/usr/bin/python3
"""Fake IP cameras: one RTSP server (GStreamer's gst-rtsp-server) serving live test patterns.

  scripts/fake-camera.py --port 8554 --camera cam1 --camera cam2:codec=h265 \
      --camera cam3:audio=aac:fps=15:size=1280x720:bitrate=2000:gop=30

Each --camera NAME[:key=value...] is served at rtsp://ADDRESS:PORT/NAME. Keys and defaults:
  codec=h264|h265 (h264)   fps=N or N/D (25)   size=WxH (640x360)   bitrate=KBPS (1000)
  audio=aac|none (none)    gop=FRAMES between keyframes (= fps, so 1 s)
  pattern=videotestsrc pattern nick (smpte; it scrolls, and the name and time are drawn on it)
  bframes=N B-frames between references (0; H.264 only: decode order then differs from display)
One pipeline per camera is shared by all its clients; RTP over TCP (interleaved) and UDP both work.
--user U --password P requires RTSP auth (--auth basic|digest|both, default both).
--port 0 picks a free port; the ready lines say which.
Prints "ready rtsp://ADDRESS:PORT/NAME" per camera once listening, then runs until SIGTERM/SIGINT.
Needs the Debian packages installed by scripts/deps-media.sh, and Debian's /usr/bin/python3.
"""
import argparse
import os
import signal
import sys

DEBIAN_PYTHON = "/usr/bin/python3"


def die(msg):
    print(f"fake-camera: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


try:
    import gi
except ImportError:
    # A pyenv or venv python3 first on PATH has no gi: use Debian's, which python3-gi serves.
    if os.path.realpath(sys.executable) != os.path.realpath(DEBIAN_PYTHON) and os.access(DEBIAN_PYTHON, os.X_OK) \
            and not os.environ.get("FAKE_CAMERA_REEXEC"):
        os.environ["FAKE_CAMERA_REEXEC"] = "1"
        os.execv(DEBIAN_PYTHON, [DEBIAN_PYTHON] + sys.argv)
    die("python3 module gi is missing: apt-get install python3-gi (and run with /usr/bin/python3)")

for ns, pkg in (("Gst", "gir1.2-gstreamer-1.0"), ("GstRtsp", "gir1.2-gst-plugins-base-1.0"),
                ("GstRtspServer", "gir1.2-gst-rtsp-server-1.0")):
    try:
        gi.require_version(ns, "1.0")
    except ValueError:
        die(f"GObject introspection typelib {ns}-1.0 is missing: apt-get install {pkg}")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

# Element -> the Debian package that ships it.
PACKAGE = {
    "videotestsrc": "gstreamer1.0-plugins-base", "audiotestsrc": "gstreamer1.0-plugins-base",
    "videoconvert": "gstreamer1.0-plugins-base", "audioconvert": "gstreamer1.0-plugins-base",
    "audioresample": "gstreamer1.0-plugins-base", "timeoverlay": "gstreamer1.0-x",
    "x264enc": "gstreamer1.0-plugins-ugly", "x265enc": "gstreamer1.0-plugins-bad",
    "h264parse": "gstreamer1.0-plugins-bad", "h265parse": "gstreamer1.0-plugins-bad",
    "voaacenc": "gstreamer1.0-plugins-bad", "fdkaacenc": "gstreamer1.0-plugins-bad",
    "avenc_aac": "gstreamer1.0-libav", "aacparse": "gstreamer1.0-plugins-good",
    "rtph264pay": "gstreamer1.0-plugins-good", "rtph265pay": "gstreamer1.0-plugins-good",
    "rtpmp4gpay": "gstreamer1.0-plugins-good",
}


def have(element):
    return Gst.ElementFactory.find(element) is not None


def need(element):
    if not have(element):
        die(f"GStreamer element {element} is missing: apt-get install {PACKAGE.get(element, '?')}")
    return element


def parse_camera(spec):
    name, *opts = spec.split(":")
    if not name or "/" in name or " " in name:
        raise argparse.ArgumentTypeError(f"bad camera name in {spec!r}")
    cam = {"name": name, "codec": "h264", "fps": "25", "size": "640x360", "bitrate": 1000,
           "audio": "none", "gop": None, "pattern": "smpte",
           "bframes": "0"}
    try:
        for opt in opts:
            key, value = opt.split("=", 1)
            if key not in cam or key == "name":
                raise ValueError(f"unknown key {key}")
            cam[key] = value
        if cam["codec"] not in ("h264", "h265"):
            raise ValueError("codec must be h264 or h265")
        if cam["audio"] not in ("aac", "none"):
            raise ValueError("audio must be aac or none")
        num, _, den = cam["fps"].partition("/")
        cam["fps_n"], cam["fps_d"] = int(num), int(den or 1)
        w, x, h = cam["size"].lower().partition("x")
        if not x:
            raise ValueError("size must be WxH")
        cam["width"], cam["height"] = int(w), int(h)
        cam["bitrate"] = int(cam["bitrate"])
        cam["bframes"] = int(cam["bframes"])
        cam["gop"] = int(cam["gop"]) if cam["gop"] else max(1, round(cam["fps_n"] / cam["fps_d"]))
        if min(cam["fps_n"], cam["fps_d"], cam["width"], cam["height"], cam["bitrate"], cam["gop"]) <= 0:
            raise ValueError("numbers must be positive")
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"bad camera {spec!r}: {e}")
    return cam


def aac_encoder():
    for enc in ("avenc_aac", "voaacenc", "fdkaacenc"):
        if have(enc):
            return enc
    die("no AAC encoder (avenc_aac, voaacenc, fdkaacenc): apt-get install gstreamer1.0-libav")


def launch_line(cam):
    """The gst-rtsp-server launch description: payloaders pay0 (video) and pay1 (audio)."""
    fps = f"{cam['fps_n']}/{cam['fps_d']}"
    video = (f"{need('videotestsrc')} is-live=true pattern={cam['pattern']} horizontal-speed=2 "
             f"! video/x-raw,format=I420,width={cam['width']},height={cam['height']},framerate={fps} ")
    if have("timeoverlay"):  # the name and the running time, so every frame differs
        video += (f"! timeoverlay text=\"{cam['name']}\" halignment=left valignment=top "
                  "font-desc=\"Sans 20\" shaded-background=true ")
    if cam["codec"] == "h264":
        # threads=1: one slice per frame. zerolatency's sliced threads cut frames into slices, and
        # rtph264pay config-interval=-1 puts SPS/PPS before each IDR slice, which splits the frame.
        # zerolatency turns B-frames off, so a camera with B-frames goes without it.
        tune = (f"option-string=bframes={cam['bframes']}:b-adapt=0" if cam["bframes"]
                else "tune=zerolatency")
        video += (f"! {need('x264enc')} {tune} speed-preset=ultrafast bitrate={cam['bitrate']} "
                  f"key-int-max={cam['gop']} threads=1 ! {need('h264parse')} "
                  "! video/x-h264,stream-format=avc,alignment=au "
                  f"! {need('rtph264pay')} name=pay0 pt=96 config-interval=-1")
    else:
        video += (f"! {need('x265enc')} tune=zerolatency speed-preset=ultrafast bitrate={cam['bitrate']} "
                  f"key-int-max={cam['gop']} ! {need('h265parse')} "
                  "! video/x-h265,stream-format=hvc1,alignment=au "
                  f"! {need('rtph265pay')} name=pay0 pt=96 config-interval=-1")
    if cam["audio"] == "none":
        return f"( {video} )"
    audio = (f"{need('audiotestsrc')} is-live=true wave=sine freq=440 volume=0.2 samplesperbuffer=1024 "
             f"! {need('audioconvert')} ! {need('audioresample')} ! audio/x-raw,rate=48000,channels=1 "
             f"! {aac_encoder()} bitrate=64000 ! {need('aacparse')} ! {need('rtpmp4gpay')} name=pay1 pt=97")
    return f"( {video}  {audio} )"


def set_auth_methods(auth, which):
    """Which challenges the server sends. GI types the argument as an enum, so BASIC|DIGEST (3)
    cannot be passed from Python: call the C function through ctypes for "both"."""
    methods = {"basic": 1, "digest": 2, "both": 3}[which]
    if methods != 3:
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod(methods))
        return
    import ctypes
    ctypes.pythonapi.PyCapsule_GetPointer.restype = ctypes.c_void_p
    ctypes.pythonapi.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    ptr = ctypes.pythonapi.PyCapsule_GetPointer(auth.__gpointer__, None)
    lib = ctypes.CDLL("libgstrtspserver-1.0.so.0")
    lib.gst_rtsp_auth_set_supported_methods.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.gst_rtsp_auth_set_supported_methods(ptr, methods)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=8554, help="RTSP port (default 8554; 0 = any free port)")
    ap.add_argument("--address", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ap.add_argument("--camera", action="append", type=parse_camera, required=True,
                    metavar="NAME[:key=value...]", help="a camera; repeat for several")
    ap.add_argument("--user", help="require RTSP auth (Basic or Digest) with this user")
    ap.add_argument("--password", help="the password for --user")
    ap.add_argument("--auth", choices=("basic", "digest", "both"), default="both",
                    help="the challenges offered with --user (default both)")
    ap.add_argument("-v", "--verbose", action="store_true", help="log clients to stderr")
    args = ap.parse_args()
    if (args.user is None) != (args.password is None):
        ap.error("--user and --password go together")
    names = [c["name"] for c in args.camera]
    if len(set(names)) != len(names):
        ap.error("camera names must differ")

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.address)
    server.set_service(str(args.port))
    mounts = server.get_mount_points()

    if args.user is not None:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()  # gst_rtsp_token_new_empty
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "camera-user")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
        auth.add_digest(args.user, args.password, token)
        set_auth_methods(auth, args.auth)
        server.set_auth(auth)

    for cam in args.camera:
        line = launch_line(cam)
        try:  # catch a bad pattern or caps now rather than at the first client
            Gst.parse_launch(line.strip("() "))
        except GLib.Error as e:
            die(f"camera {cam['name']}: bad pipeline ({e.message}): {line}")
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(line)
        factory.set_shared(True)
        factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP | GstRtsp.RTSPLowerTrans.UDP)
        if args.user is not None:
            factory.add_role_from_structure(Gst.Structure.new_from_string(
                "camera-user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"))
        mounts.add_factory("/" + cam["name"], factory)
        if args.verbose:
            print(f"fake-camera: {cam['name']}: {line}", file=sys.stderr, flush=True)

    if args.verbose:
        def on_client(_server, client):
            conn = client.get_connection()
            print(f"fake-camera: client {conn.get_ip() if conn else '?'}", file=sys.stderr, flush=True)
        server.connect("client-connected", on_client)

    if server.attach(None) == 0:
        die(f"cannot listen on {args.address}:{args.port} (port in use?)")
    port = server.get_bound_port()
    host = "127.0.0.1" if args.address in ("0.0.0.0", "::") else args.address
    for cam in args.camera:
        print(f"ready rtsp://{host}:{port}/{cam['name']}")
    sys.stdout.flush()

    loop = GLib.MainLoop()

    def stop():
        # Close the client connections so readers see the camera go away at once.
        server.client_filter(lambda _s, _c: GstRtspServer.RTSPFilterResult.REMOVE)
        loop.quit()
        return GLib.SOURCE_REMOVE

    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, stop)
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, stop)
    loop.run()


if __name__ == "__main__":
    main()
