#!/usr/bin/python3
"""Fake ONVIF cameras: WS-Discovery on UDP 3702 and canned SOAP device and media services over HTTP.

  scripts/fake-onvif.py --address 192.0.2.17 [--address 192.0.2.18 ...] --http-port 8080 \
      --stream 'rtsp://{address}:8554/cam1' [--user U --password P] [--name 'Lobby Cam']
  scripts/fake-onvif.py --address 192.0.2.33 --hostile

Each --address is one device (the address must be on an interface of this host): it answers
Probes (multicast 239.255.255.250:3702, and unicast) from that address, and serves GetSystemDate-
AndTime, GetDeviceInformation, GetCapabilities, GetProfiles (a main and a sub profile) and
GetStreamUri on http://ADDRESS:HTTP_PORT/onvif/device_service. --stream is the URI GetStreamUri
returns, "{address}" replaced; point it at scripts/fake-camera.py. With --user, every request but
GetSystemDateAndTime needs a WS-Security UsernameToken digest of that user and --password, and is
otherwise answered with HTTP 400 and a ter:NotAuthorized fault, as cameras do.

--hostile makes a rogue device instead: each Probe is answered with a flood of distinct
ProbeMatches whose service addresses lead to a TCP tarpit (accepts, never answers), plus huge,
deeply nested and bogus datagrams.
Prints "ready" once listening, then runs until SIGTERM/SIGINT. Standard library only.
"""
import argparse, base64, hashlib, http.server, re, socket, struct, sys, threading, time, uuid
import xml.etree.ElementTree as ET

GROUP, PORT = "239.255.255.250", 3702
ENV = '<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" ' \
      'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" ' \
      'xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:ter="http://www.onvif.org/ver10/error" ' \
      'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery">' \
      '{header}<env:Body>{body}</env:Body></env:Envelope>'
NOT_AUTHORIZED = '<env:Fault><env:Code><env:Value>env:Sender</env:Value><env:Subcode><env:Value>ter:NotAuthorized' \
                 '</env:Value></env:Subcode></env:Code><env:Reason><env:Text xml:lang="en">Sender not Authorized' \
                 '</env:Text></env:Reason></env:Fault>'
WSSE = "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd}"
WSU = "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd}"


def probe_match(relates_to, endpoint, xaddr, name):
    header = f'<env:Header><a:MessageID>urn:uuid:{uuid.uuid4()}</a:MessageID><a:RelatesTo>{relates_to}</a:RelatesTo>' \
             '<a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</a:Action></env:Header>'
    scopes = f"onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/name/{name} " \
             "onvif://www.onvif.org/hardware/FakeCam-1"
    body = f'<d:ProbeMatches><d:ProbeMatch><a:EndpointReference><a:Address>{endpoint}</a:Address></a:EndpointReference>' \
           f'<d:Types>dn:NetworkVideoTransmitter</d:Types><d:Scopes>{scopes}</d:Scopes><d:XAddrs>{xaddr}</d:XAddrs>' \
           '<d:MetadataVersion>1</d:MetadataVersion></d:ProbeMatch></d:ProbeMatches>'
    return ENV.format(header=header, body=body).encode()


def hostile_datagrams(relates_to, address, tarpit):
    yield ENV.format(header="", body="<a>" * 12000 + "</a>" * 12000).encode()[:65000]  # deep (and cut: unclosed)
    yield ENV.format(header="", body="<x>" + "y" * 60000 + "</x>").encode()  # huge
    yield b"\x00\xff<<<not xml" * 100  # bogus
    many = "".join(probe_match(relates_to, f"urn:uuid:{uuid.uuid4()}", f"http://{address}:{tarpit}/", "m").decode()
                   .split("<d:ProbeMatches>")[1].split("</d:ProbeMatches>")[0] for _ in range(40))
    yield ENV.format(header="", body=f"<d:ProbeMatches>{many}</d:ProbeMatches>").encode()
    for i in range(600):  # distinct devices, all leading to the tarpit
        yield probe_match(relates_to, f"urn:uuid:{uuid.uuid4()}", f"http://{address}:{tarpit}/onvif/device_service", f"rogue{i}")


def soap_reply(action, address, args):
    if action == "GetSystemDateAndTime":
        t = time.gmtime()
        return f'<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>Manual</tt:DateTimeType>' \
               f'<tt:UTCDateTime><tt:Time><tt:Hour>{t.tm_hour}</tt:Hour><tt:Minute>{t.tm_min}</tt:Minute><tt:Second>{t.tm_sec}' \
               f'</tt:Second></tt:Time><tt:Date><tt:Year>{t.tm_year}</tt:Year><tt:Month>{t.tm_mon}</tt:Month><tt:Day>{t.tm_mday}' \
               '</tt:Day></tt:Date></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>'
    if action == "GetDeviceInformation":
        return '<tds:GetDeviceInformationResponse><tds:Manufacturer>Fake</tds:Manufacturer><tds:Model>FakeCam-1</tds:Model>' \
               '<tds:FirmwareVersion>1.2.3</tds:FirmwareVersion><tds:SerialNumber>F00001</tds:SerialNumber>' \
               '<tds:HardwareId>1</tds:HardwareId></tds:GetDeviceInformationResponse>'
    if action == "GetCapabilities":
        return f'<tds:GetCapabilitiesResponse><tds:Capabilities><tt:Media><tt:XAddr>http://{address}:{args.http_port}' \
               '/onvif/media_service</tt:XAddr></tt:Media></tds:Capabilities></tds:GetCapabilitiesResponse>'
    if action == "GetProfiles":
        profile = '<trt:Profiles token="{0}"><tt:Name>{0}</tt:Name><tt:VideoEncoderConfiguration><tt:Encoding>H264</tt:Encoding>' \
                  '<tt:Resolution><tt:Width>{1}</tt:Width><tt:Height>{2}</tt:Height></tt:Resolution><tt:RateControl>' \
                  '<tt:FrameRateLimit>25</tt:FrameRateLimit></tt:RateControl></tt:VideoEncoderConfiguration></trt:Profiles>'
        return '<trt:GetProfilesResponse>' + profile.format("main", 640, 360) + profile.format("sub", 320, 180) + \
               '</trt:GetProfilesResponse>'
    if action == "GetStreamUri":
        return f'<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>{args.stream.format(address=address)}</tt:Uri>' \
               '</trt:MediaUri></trt:GetStreamUriResponse>'
    return None


def authorized(root, args):
    if not args.user:
        return True
    token = root.find(f".//{WSSE}UsernameToken")
    if token is None:
        return False
    user, password = token.findtext(f"{WSSE}Username"), token.findtext(f"{WSSE}Password")
    nonce, created = token.findtext(f"{WSSE}Nonce"), token.findtext(f"{WSU}Created")
    if user != args.user or not (password and nonce and created):
        return False
    digest = base64.b64encode(hashlib.sha1(base64.b64decode(nonce) + created.encode() + args.password.encode()).digest())
    return digest.decode() == password


def serve_http(args):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            address = self.connection.getsockname()[0]
            body = self.rfile.read(min(int(self.headers.get("Content-Length", 0)), 1 << 20))
            try:
                root = ET.fromstring(body)
                action = re.sub(r"^\{.*\}", "", list(root.find("{http://www.w3.org/2003/05/soap-envelope}Body"))[0].tag)
            except Exception:
                return self.answer(400, "")
            if action != "GetSystemDateAndTime" and not authorized(root, args):
                return self.answer(400, NOT_AUTHORIZED)
            reply = soap_reply(action, address, args)
            self.answer(200 if reply else 500, reply or "")

        def answer(self, code, body):
            data = ENV.format(header="", body=body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/soap+xml; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_):
            pass

    server = http.server.ThreadingHTTPServer(("0.0.0.0", args.http_port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def tarpit():
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))
    listener.listen(1024)
    held = []
    threading.Thread(target=lambda: [held.append(listener.accept()) for _ in iter(int, 1)], daemon=True).start()
    return listener.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--address", action="append", required=True, help="a device's address (repeatable)")
    ap.add_argument("--http-port", type=int, default=80)
    ap.add_argument("--stream", default="rtsp://{address}:554/stream")
    ap.add_argument("--user")
    ap.add_argument("--password", default="")
    ap.add_argument("--name", default="Fake Cam", help="the name scope (percent-encoded as needed)")
    ap.add_argument("--hostile", action="store_true")
    args = ap.parse_args()
    devices = {a: (f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'fake-onvif/' + a)}", socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
               for a in args.address}
    for address, (_, sender) in devices.items():
        sender.bind((address, 0))
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", PORT))
    listener.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                        socket.inet_aton(GROUP) + socket.inet_aton(args.address[0]))
    pit = tarpit() if args.hostile else None
    if not args.hostile:
        serve_http(args)
    print("ready", flush=True)
    while True:
        data, peer = listener.recvfrom(65536)
        try:
            message_id = ET.fromstring(data).findtext(".//{http://schemas.xmlsoap.org/ws/2004/08/addressing}MessageID") or ""
        except ET.ParseError:
            continue
        for i, (address, (endpoint, sender)) in enumerate(devices.items()):
            if args.hostile:
                for datagram in hostile_datagrams(message_id, address, pit):
                    sender.sendto(datagram, peer)
                continue
            xaddr = f"http://{address}:{args.http_port}/onvif/device_service"
            name = args.name.replace(" ", "%20") + (f"%20{i + 1}" if len(devices) > 1 else "")
            sender.sendto(probe_match(message_id, endpoint, xaddr, name), peer)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
