"""A deploy pipeline's receiver of jammi webhooks (README, "Webhooks"): checks each
delivery's signature and deploys the version that became `champion`.

    JAMMI_WEBHOOK_SECRET=whsec_… python3 examples/webhook_receiver.py 8080

Standard library only. Delivery is at least once: an event can arrive twice, so the
receiver acts once per event id.
"""

import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

SECRET = os.environ["JAMMI_WEBHOOK_SECRET"].encode()  # printed by `jammi webhook create`
seen = set()


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        delivery, stamp = self.headers["Jammi-Delivery-Id"], self.headers["Jammi-Timestamp"]
        expected = hmac.new(SECRET, f"{delivery}.{stamp}.".encode() + body, hashlib.sha256)
        signed = hmac.compare_digest(
            "sha256=" + expected.hexdigest(), self.headers["Jammi-Signature"]
        )
        if not signed or abs(time.time() - int(stamp)) > 300:  # forged, or replayed
            self.send_response(401)
            self.end_headers()
            return
        event = json.loads(body)
        if event["event_id"] not in seen and event["kind"] == "alias_set":
            alias = event["state"]  # the alias row as it now is; null once removed
            if alias and alias["alias"] == "champion":
                print(f"deploy {alias['model_id']} version {alias['version']}", flush=True)
        seen.add(event["event_id"])
        self.send_response(204)  # acknowledged: jammi moves on to the next event
        self.end_headers()

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 8080), Hook)
print(f"listening on {server.server_address[1]}", flush=True)
server.serve_forever()
