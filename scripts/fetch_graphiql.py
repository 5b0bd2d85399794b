"""Fetch the GraphiQL page's JavaScript and CSS from the npm registry into the package.

The files are committed under gateway/static/vendor/graphiql/, so a clone serves GraphiQL
without any network; run this only to change the pinned versions:

    python scripts/fetch_graphiql.py

Each tarball is checked against its pinned npm integrity (sha512) before anything is
extracted, and each extracted file against its pinned sha384 (the same hashes Strawberry's
own GraphiQL page gives the CDN copies). To move to a new version, change PINS: the
registry's integrity is `npm view <package>@<version> dist.integrity`; run the script with
`--print-hashes` to see the new files' sha384, check them, then pin them too.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import httpx

REGISTRY = "https://registry.npmjs.org"
TARGET = Path(__file__).resolve().parents[1] / "gateway" / "static" / "vendor" / "graphiql"


@dataclass(frozen=True)
class Asset:
    key: str  # what the page template names it by
    member: str  # path inside the tarball
    sha384: str  # SRI of the file itself


@dataclass(frozen=True)
class Pin:
    package: str
    version: str
    integrity: str  # npm's SRI of the tarball
    assets: tuple[Asset, ...]


PINS = (
    Pin(
        "react",
        "18.2.0",
        "sha512-/3IjMdb2L9QbBdWiW5e3P2/npwMBaU9mHCSCUzNln0ZCYbcfTsGbTJrU/kGemdH2IWmB2ioZ+zkxtmq6g09fGQ==",
        (
            Asset(
                "react.js",
                "package/umd/react.production.min.js",
                "sha384-tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8",
            ),
        ),
    ),
    Pin(
        "react-dom",
        "18.2.0",
        "sha512-6IMTriUmvsjHUjNtEDudZfuDQUoWXVxKHhlEGSk81n4YFS+r/Kl99wXiwlVXtPBtJenozv2P+hxDsw9eA7Xo6g==",
        (
            Asset(
                "react-dom.js",
                "package/umd/react-dom.production.min.js",
                "sha384-bm7MnzvK++ykSwVJ2tynSE5TRdN+xL418osEVF2DE/L/gfWHj91J2Sphe582B1Bh",
            ),
        ),
    ),
    Pin(
        "graphiql",
        "3.8.3",
        "sha512-cuPDYtXVKV86Pu5PHBX642Odi/uVEE2y1Jxq5rGO/Qy1G2lRp7ZZ7a/T30RzxhuLSWo9zUbzq0P3U49//H0Ugw==",
        (
            Asset(
                "graphiql.js",
                "package/graphiql.min.js",
                "sha384-HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie",
            ),
            Asset(
                "graphiql.css",
                "package/graphiql.min.css",
                "sha384-Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM",
            ),
        ),
    ),
    Pin(
        "@graphiql/plugin-explorer",
        "1.0.2",
        "sha512-9j+kg2UjtLZD5EBmGjeWHkoVVxtbShYg2DzbUVebibnZYZM/iMBEF4vaccXJIAm5KaomIPLx0aoNs4LbODyc3Q==",
        (
            Asset(
                "explorer.js",
                "package/dist/index.umd.js",
                "sha384-2oonKe47vfHIZnmB6ZZ10vl7T0Y+qrHQF2cmNTaFDuPshpKqpUMGMc9jgj9MLDZ9",
            ),
            Asset(
                "explorer.css",
                "package/dist/style.css",
                "sha384-5DFJlDPW2tSATRbM8kzoP1j194jexLswuNmClWoRr2Q0x7R68JIQzPHZ02Faktwi",
            ),
        ),
    ),
)


def sri(algorithm: str, data: bytes) -> str:
    return f"{algorithm}-{base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def file_name(pin: Pin, asset: Asset) -> str:
    # The version is in the name, so the server can let browsers cache a file for good.
    stem, _, ext = asset.key.rpartition(".")
    return f"{stem}-{pin.version}.{ext}"


def tarball_url(pin: Pin) -> str:
    return f"{REGISTRY}/{pin.package}/-/{pin.package.rpartition('/')[2]}-{pin.version}.tgz"


def fetch(client: httpx.Client, pin: Pin, *, print_hashes: bool) -> dict[str, dict[str, str]]:
    tarball = client.get(tarball_url(pin)).raise_for_status().content
    if sri("sha512", tarball) != pin.integrity:
        raise SystemExit(f"{pin.package}@{pin.version}: the tarball does not match its integrity")
    manifest: dict[str, dict[str, str]] = {}
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        for asset in pin.assets:
            member = archive.extractfile(asset.member)
            if member is None:
                raise SystemExit(f"{pin.package}@{pin.version}: {asset.member} is not a file")
            data = member.read()
            digest = sri("sha384", data)
            if print_hashes:
                print(f"{pin.package}@{pin.version} {asset.member} {digest}")
            elif digest != asset.sha384:
                raise SystemExit(f"{pin.package}@{pin.version}: {asset.member} has {digest}")
            name = file_name(pin, asset)
            (TARGET / name).write_bytes(data)
            manifest[asset.key] = {
                "file": name,
                "package": f"{pin.package}@{pin.version}",
                "integrity": digest,
            }
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--print-hashes",
        action="store_true",
        help="print each file's sha384 instead of checking it (when changing a version)",
    )
    args = parser.parse_args()
    TARGET.mkdir(parents=True, exist_ok=True)
    for old in TARGET.iterdir():
        if old.suffix in (".js", ".css"):
            old.unlink()
    manifest: dict[str, dict[str, str]] = {}
    with httpx.Client(timeout=60, follow_redirects=True) as client:
        for pin in PINS:
            manifest.update(fetch(client, pin, print_hashes=args.print_hashes))
    (TARGET / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    size = sum((TARGET / entry["file"]).stat().st_size for entry in manifest.values())
    print(f"wrote {len(manifest)} files, {size // 1024} KiB, to {TARGET}", file=sys.stderr)


if __name__ == "__main__":
    main()
