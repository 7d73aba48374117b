#!/usr/bin/env python3
"""docs/openapi.yaml against the running lead-ingest: every documented status code is reached by a request
made here, and every response matches the documented media type, schema and required headers.

--ingest is a healthy lead-ingest; --ingest-down is one whose broker is unreachable (for 503s).
Prints one line per case; exits non-zero on the first mismatch or on a documented status never reached.
"""
import argparse
import json
import sys
import time
import urllib.error
import urllib.request
import uuid

import yaml
from jsonschema import Draft202012Validator, FormatChecker


def send(base, method, path, body=None, headers=None):
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", required=True)
    parser.add_argument("--ingest", required=True)
    parser.add_argument("--ingest-down", required=True)
    parser.add_argument("--key", default="dev-ingest-key")
    args = parser.parse_args()

    spec = yaml.safe_load(open(args.spec))
    def resolve(node):
        while isinstance(node, dict) and "$ref" in node and len(node) == 1:
            pointer = node["$ref"].lstrip("#/").split("/")
            node = spec
            for part in pointer:
                node = node[part]
        return node

    def validator(schema):
        # Schemas refer to '#/components/...' of the spec: validate inside a document that is the spec.
        wrapped = dict(spec)
        wrapped["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        wrapped["$ref"] = "#/__target"
        wrapped["__target"] = schema
        return Draft202012Validator(wrapped, format_checker=FormatChecker())

    auth = {"Authorization": f"Bearer {args.key}", "Content-Type": "application/json"}
    event = {"session_id": f"openapi-{uuid.uuid4().hex[:8]}", "type": "page_view"}
    big = {"session_id": "s", "type": "page_view", "data": {"blob": "x" * 70_000}}
    too_many = {"events": [event] * 501}
    huge_batch = {"events": [{"session_id": "s", "type": "page_view", "data": {"blob": "x" * 30_000}}] * 40}
    # A browser session that has been prompted (a face analysis has intent 80), and its token.
    public = {"Authorization": "Bearer pk-dev-public", "Content-Type": "text/plain"}
    prompted = f"openapi-{uuid.uuid4().hex}"
    status, _, body = send(args.ingest, "POST", "/v1/interactions", {"session_id": prompted, "type": "face_analysis"}, public)
    assert status == 202, (status, body)
    token = json.loads(body)["session_token"]
    for _ in range(200):
        if send(args.ingest, "GET", f"/v1/sessions/{prompted}/prompt?token={token}", None, public)[0] == 200:
            break
        time.sleep(0.1)

    cases = [
        # (base, method, path, body, headers, expected status)
        (args.ingest, "POST", "/v1/interactions", event, auth, 202),
        (args.ingest, "POST", "/v1/interactions", b"{not json", auth, 400),
        (args.ingest, "POST", "/v1/interactions", event, {"Content-Type": "application/json"}, 401),
        (args.ingest, "POST", "/v1/interactions", big, auth, 413),
        (args.ingest, "POST", "/v1/interactions", b"session_id=s", {**auth, "Content-Type": "text/plain"}, 415),
        (args.ingest, "POST", "/v1/interactions", {"session_id": "s", "type": "purchase"}, auth, 422),
        (args.ingest_down, "POST", "/v1/interactions", event, auth, 503),
        (args.ingest, "POST", "/v1/interactions/batch", {"events": [event, {"session_id": "s", "type": "nope"}]}, auth, 202),
        (args.ingest, "POST", "/v1/interactions/batch", b"[", auth, 400),
        (args.ingest, "POST", "/v1/interactions/batch", {"events": [event]}, {"X-API-Key": "wrong", "Content-Type": "application/json"}, 401),
        (args.ingest, "POST", "/v1/interactions/batch", huge_batch, auth, 413),
        (args.ingest, "POST", "/v1/interactions/batch", b"{}", {**auth, "Content-Type": "application/xml"}, 415),
        (args.ingest, "POST", "/v1/interactions/batch", too_many, auth, 422),
        (args.ingest_down, "POST", "/v1/interactions/batch", {"events": [event]}, auth, 503),
        (args.ingest, "POST", "/v1/interactions", event, {**public, "Origin": "https://evil.example"}, 403),
        (args.ingest, "POST", "/v1/interactions/batch", {"events": [event]}, {**public, "Origin": "https://evil.example"}, 403),
        (args.ingest, "GET", f"/v1/sessions/{prompted}/prompt?token={token}", None, public, 200),
        (args.ingest, "GET", f"/v1/sessions/{prompted}/prompt", None, {}, 401),
        (args.ingest, "GET", f"/v1/sessions/{prompted}/prompt?token=not-its-token", None, public, 403),
        (args.ingest, "GET", "/v1/sessions/never-seen/prompt", None, auth, 404),
        (args.ingest, "GET", "/sdk/lead-capture.js", None, {}, 200),
        (args.ingest, "GET", "/healthz", None, {}, 200),
        (args.ingest, "GET", "/readyz", None, {}, 200),
        (args.ingest_down, "GET", "/readyz", None, {}, 503),
        (args.ingest, "GET", "/metrics", None, {}, 200),
    ]

    reached = set()
    for base, method, path, body, headers, expected in cases:
        label = f"{method} {path} -> {expected}"
        status, response_headers, payload = send(base, method, path, body, headers)
        if status != expected:
            print(f"FAIL {label}: got {status}: {payload[:300]!r}", file=sys.stderr)
            return 1
        template = path.split("?")[0]
        if template.startswith("/v1/sessions/"):
            template = "/v1/sessions/{id}/prompt"
        operation = spec["paths"][template][method.lower()]
        documented = operation["responses"].get(str(status))
        if documented is None:
            print(f"FAIL {label}: status {status} is not documented", file=sys.stderr)
            return 1
        documented = resolve(documented)
        lowered = {name.lower(): value for name, value in response_headers.items()}
        for name, header in (documented.get("headers") or {}).items():
            if header.get("required") and name.lower() not in lowered:
                print(f"FAIL {label}: required header {name} missing", file=sys.stderr)
                return 1
        content = documented.get("content") or {}
        media = lowered.get("content-type", "").split(";")[0].strip()
        if content:
            if media not in content:
                print(f"FAIL {label}: content-type {media!r}, documented {list(content)}", file=sys.stderr)
                return 1
            schema = content[media].get("schema", {})
            instance = json.loads(payload) if media == "application/json" else payload.decode()
            errors = sorted(validator(schema).iter_errors(instance), key=lambda e: e.path)
            if errors:
                print(f"FAIL {label}: {errors[0].message} at {list(errors[0].path)}", file=sys.stderr)
                return 1
        reached.add((template, method.lower(), str(status)))
        print(f"ok   {label}")

    documented = {(path, method, status) for path, item in spec["paths"].items()
                  for method, operation in item.items() for status in operation["responses"]}
    missing = documented - reached
    if missing:
        print(f"FAIL documented but never reached: {sorted(missing)}", file=sys.stderr)
        return 1
    print(f"all {len(documented)} documented responses reached and valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
