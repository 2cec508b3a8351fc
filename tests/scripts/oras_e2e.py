#!/usr/bin/env python3
"""Drive the oras Python SDK (PyPI package `oras`) against a registry.

Used by tests/tests/oras.rs. Every sub-command prints one JSON object on
stdout. Registries are reached over plain HTTP (127.0.0.1 only).

  push-artifact  hand-assembled OCI artifact manifest with `artifactType`
                 (and optionally `subject`): blobs go up through the oras
                 client's upload helpers, the manifest bytes are built here so
                 their digest is known exactly, then PUT through the client.
                 (oras-py's high-level push() cannot set artifactType.)
  push-oras      oras' own high-level push() of files with a typed config,
                 optionally with a `subject` (a referrer).
  pull           oras' pull() into a directory.

Credentials, if any, come from the environment: ORAS_E2E_USERNAME and
ORAS_E2E_PASSWORD (a user, or a robot's name and secret); the client then
answers the registry's Bearer challenges with a token fetched with them.
"""

import argparse
import hashlib
import json
import os
import sys
import tempfile

import oras.client
import oras.decorator
import oras.defaults
import oras.oci
import oras.version

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"


if os.environ.get("ORAS_E2E_FAST_RETRY") == "1":
    # oras' retry decorator backs off 3, 5, 11, 29, 83 s: a refusal the
    # test expects should not take two minutes to arrive.
    import time as _time
    import types as _types

    oras.decorator.time = _types.SimpleNamespace(sleep=lambda s: _time.sleep(min(s, 0.2)))


def client(registry):
    c = oras.client.OrasClient(hostname=registry, insecure=True, tls_verify=False)
    username = os.environ.get("ORAS_E2E_USERNAME")
    if username:
        # What OrasClient.login() does first, without writing a docker
        # config file or asking a docker daemon.
        c.auth.set_basic_auth(username, os.environ.get("ORAS_E2E_PASSWORD", ""))
    return c


def fail(message, response=None):
    detail = {"error": message}
    if response is not None:
        detail["status"] = response.status_code
        detail["body"] = response.text[:4000]
        detail["headers"] = dict(response.headers)
    print(json.dumps(detail), file=sys.stderr)
    sys.exit(1)


def check(response, *ok):
    if response.status_code not in ok:
        fail(f"unexpected HTTP {response.status_code} from {response.request.method if response.request else '?'} "
             f"{response.url}", response)


def subject_of(args):
    if not args.subject_digest:
        return None
    return oras.oci.Subject(
        mediaType=args.subject_media_type, digest=args.subject_digest, size=args.subject_size
    )


def cmd_push_artifact(args):
    c = client(args.registry)
    container = c.get_container(f"{args.registry}/{args.repo}:{args.tag or 'unused'}")
    layers = []
    for path in args.file:
        layer = oras.oci.NewLayer(path, media_type=args.layer_media_type)
        layer["annotations"] = {oras.defaults.annotation_title: os.path.basename(path)}
        check(c.upload_blob(path, container, layer), 200, 201, 202)
        layers.append(layer)

    # The OCI 1.1 empty config: the two bytes `{}`.
    with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as f:
        f.write(b"{}")
        empty_path = f.name
    try:
        config = {
            "mediaType": OCI_EMPTY,
            "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest(),
            "size": 2,
        }
        check(c.upload_blob(empty_path, container, config), 200, 201, 202)
    finally:
        os.unlink(empty_path)

    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": args.artifact_type,
        "config": config,
        "layers": layers,
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    }
    subject = subject_of(args)
    if subject is not None:
        manifest["subject"] = {
            "mediaType": subject.mediaType,
            "digest": subject.digest,
            "size": subject.size,
        }
    body = json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    reference = args.tag or digest
    url = f"{c.prefix}://{container.registry}/v2/{container.api_prefix}/manifests/{reference}"
    response = c.do_request(url, "PUT", headers={"Content-Type": OCI_MANIFEST}, data=body)
    check(response, 201)
    print(json.dumps({
        "digest": digest,
        "size": len(body),
        "mediaType": OCI_MANIFEST,
        "status": response.status_code,
        "headers": {k.lower(): v for k, v in response.headers.items()},
        "manifest": manifest,
    }))


def cmd_push_oras(args):
    c = client(args.registry)
    target = f"{args.registry}/{args.repo}:{args.tag}"
    files = [f"{path}:{args.layer_media_type}" for path in args.file]
    response = c.push(
        target=target,
        files=files,
        manifest_config=f"{args.config}:{args.config_media_type}",
        subject=subject_of(args),
        disable_path_validation=True,
        quiet=True,
    )
    check(response, 201)
    print(json.dumps({
        "digest": response.headers.get("Docker-Content-Digest"),
        "status": response.status_code,
        "headers": {k.lower(): v for k, v in response.headers.items()},
    }))


def cmd_pull(args):
    c = client(args.registry)
    files = c.pull(target=f"{args.registry}/{args.repo}:{args.ref}", outdir=args.outdir)
    print(json.dumps({"files": sorted(files)}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=oras.version.__version__)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("--registry", required=True, help="host:port")
        p.add_argument("--repo", required=True)

    def subject_args(p):
        p.add_argument("--subject-digest")
        p.add_argument("--subject-size", type=int)
        p.add_argument("--subject-media-type", default=OCI_MANIFEST)

    p = sub.add_parser("push-artifact")
    common(p)
    subject_args(p)
    p.add_argument("--tag", help="push by this tag (default: by digest)")
    p.add_argument("--artifact-type", required=True)
    p.add_argument("--layer-media-type", default="application/vnd.oci.image.layer.v1.tar")
    p.add_argument("--file", action="append", default=[])
    p.set_defaults(func=cmd_push_artifact)

    p = sub.add_parser("push-oras")
    common(p)
    subject_args(p)
    p.add_argument("--tag", required=True)
    p.add_argument("--config", required=True, help="config file path")
    p.add_argument("--config-media-type", required=True)
    p.add_argument("--layer-media-type", default="application/vnd.oci.image.layer.v1.tar")
    p.add_argument("--file", action="append", default=[])
    p.set_defaults(func=cmd_push_oras)

    p = sub.add_parser("pull")
    common(p)
    p.add_argument("--ref", required=True)
    p.add_argument("--outdir", required=True)
    p.set_defaults(func=cmd_pull)

    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
