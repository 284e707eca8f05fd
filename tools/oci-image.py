#!/usr/bin/env python3
"""Builds a reproducible multi-arch OCI image archive without a container engine.

  tools/oci-image.py --out build/image/pinniped.oci.tar --name localhost/pinniped \
      --version 0.1.0 --revision SHA --source URL amd64=PATH arm64=PATH armhf=PATH

Each platform's image is one gzip layer holding only the static binary at
/pinniped, on an empty base. The archive is an OCI image layout in a tar:
`oci-layout`, `index.json` (one descriptor, naming the image for
`ctr images import`) and `blobs/sha256/`: a multi-platform image index, one
manifest, config and layer per platform. Every byte depends only on the
inputs (JSON with sorted keys, fixed mtimes and owners, gzip without a name
or timestamp), so two runs give the same digests.

Exit status: 0 on success, 1 when an input is refused (one line on stderr),
2 for a usage error.
"""
import argparse
import datetime
import gzip
import hashlib
import io
import json
import os
import re
import struct
import sys
import tarfile

# platform key -> (OCI architecture, OCI variant, ELF e_machine, ELF class)
EM_ARM, EM_X86_64, EM_AARCH64 = 40, 62, 183
ELFCLASS32, ELFCLASS64 = 1, 2
PLATFORMS = {
    "amd64": ("amd64", None, EM_X86_64, ELFCLASS64),
    "arm64": ("arm64", None, EM_AARCH64, ELFCLASS64),
    "armhf": ("arm", "v7", EM_ARM, ELFCLASS32),
}
MACHINE_NAMES = {EM_ARM: "32-bit ARM", EM_X86_64: "x86-64", EM_AARCH64: "AArch64"}
PT_INTERP = 3

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

ENTRYPOINT = "/pinniped"
USER = "65532:65532"  # non-root by default; a pod may choose root explicitly
TITLE = "pinniped"
DESCRIPTION = "A small Pinniped Concierge for edge Kubernetes: one static binary"


class Refused(Exception):
    """An input the tool will not build from; reported as one line, exit 1."""


def canonical_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def rfc3339(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_elf(platform, path):
    """Refuses a file that is not a static ELF executable for `platform`."""
    _, _, want_machine, want_class = PLATFORMS[platform]
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise Refused(f"{platform}: {path}: no such file")
    except OSError as e:
        raise Refused(f"{platform}: {path}: {e.strerror}")
    if len(data) < 52 or data[:4] != b"\x7fELF":
        raise Refused(f"{platform}: {path}: not an ELF file")
    elf_class, elf_data = data[4], data[5]
    if elf_data != 1:
        raise Refused(f"{platform}: {path}: not a little-endian ELF file")
    machine = struct.unpack_from("<H", data, 18)[0]
    if machine != want_machine or elf_class != want_class:
        got = MACHINE_NAMES.get(machine, f"machine {machine}")
        if machine == want_machine:  # right machine, wrong word size
            got += " (64-bit ELF)" if elf_class == ELFCLASS64 else " (32-bit ELF)"
        raise Refused(f"{platform}: {path}: ELF binary is for {got}, expected {MACHINE_NAMES[want_machine]}")
    # An empty base has no dynamic loader: refuse a binary that asks for one.
    if elf_class == ELFCLASS64:
        phoff, = struct.unpack_from("<Q", data, 32)
        phentsize, phnum = struct.unpack_from("<HH", data, 54)
    else:
        phoff, = struct.unpack_from("<I", data, 28)
        phentsize, phnum = struct.unpack_from("<HH", data, 42)
    for i in range(phnum):
        off = phoff + i * phentsize
        if off + 4 > len(data):
            raise Refused(f"{platform}: {path}: truncated ELF program headers")
        if struct.unpack_from("<I", data, off)[0] == PT_INTERP:
            raise Refused(f"{platform}: {path}: dynamically linked (has an interpreter); a static binary is needed")
    return data


def tar_bytes(entries):
    """A deterministic tar of (TarInfo, bytes-or-None) in the order given."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for info, content in entries:
            tar.addfile(info, io.BytesIO(content) if content is not None else None)
    return buf.getvalue()


def tar_info(name, mtime, content=None, mode=0o644):
    info = tarfile.TarInfo(name)
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if content is None:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    else:
        info.type = tarfile.REGTYPE
        info.mode = mode
        info.size = len(content)
    return info


def gzip_bytes(data):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


class Layout:
    """The blobs of an OCI image layout, by digest."""

    def __init__(self):
        self.blobs = {}

    def add(self, media_type, data, **extra):
        digest = sha256(data)
        self.blobs[digest] = data
        return dict(mediaType=media_type, digest=digest, size=len(data), **extra)


def build(args, binaries):
    created = rfc3339(args.created_epoch)
    ref = f"{args.name}:{args.version}"
    labels = {
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.description": DESCRIPTION,
        "org.opencontainers.image.revision": args.revision,
        "org.opencontainers.image.source": args.source,
        "org.opencontainers.image.title": TITLE,
        "org.opencontainers.image.version": args.version,
    }
    annotations = {
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.revision": args.revision,
        "org.opencontainers.image.version": args.version,
    }
    layout = Layout()
    manifests, summary = [], []
    for platform, binary in binaries:
        arch, variant, _, _ = PLATFORMS[platform]
        # Only the binary: no /etc (no users to name, numeric User is enough;
        # no CA bundle, webhooks carry their own) and no /tmp (the root
        # filesystem is mounted read-only anyway).
        layer_tar = tar_bytes([(tar_info("pinniped", args.created_epoch, binary, 0o755), binary)])
        layer = layout.add(MT_LAYER, gzip_bytes(layer_tar))
        oci_platform = {"architecture": arch, "os": "linux"}
        if variant:
            oci_platform["variant"] = variant
        config = dict(oci_platform)
        config.update({
            "created": created,
            "config": {"Entrypoint": [ENTRYPOINT], "User": USER, "Labels": labels, "WorkingDir": "/"},
            "rootfs": {"type": "layers", "diff_ids": [sha256(layer_tar)]},
            "history": [{"created": created, "created_by": "tools/oci-image.py: ADD pinniped /pinniped"}],
        })
        config_desc = layout.add(MT_CONFIG, canonical_json(config))
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": config_desc,
            "layers": [layer],
            "annotations": annotations,
        }
        manifests.append(layout.add(MT_MANIFEST, canonical_json(manifest), platform=oci_platform))
        summary.append((platform, manifests[-1]["digest"], len(binary), layer["size"], layer["digest"]))

    index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": manifests, "annotations": annotations}
    index_desc = layout.add(MT_INDEX, canonical_json(index),
                            annotations={"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref})
    top = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [index_desc]}

    t = args.created_epoch
    entries = [(tar_info("blobs/", t), None), (tar_info("blobs/sha256/", t), None)]
    for digest in sorted(layout.blobs):
        data = layout.blobs[digest]
        entries.append((tar_info("blobs/sha256/" + digest.split(":", 1)[1], t, data), data))
    index_json = canonical_json(top)
    entries.append((tar_info("index.json", t, index_json), index_json))
    oci_layout = canonical_json({"imageLayoutVersion": "1.0.0"})
    entries.append((tar_info("oci-layout", t, oci_layout), oci_layout))
    return tar_bytes(entries), index_desc["digest"], summary


def parse_platforms(pairs):
    out, seen = [], set()
    for pair in pairs:
        platform, sep, path = pair.partition("=")
        if not sep or not path:
            raise Refused(f"{pair}: expected PLATFORM=PATH")
        if platform not in PLATFORMS:
            raise Refused(f"{pair}: unknown platform {platform!r} (one of {', '.join(PLATFORMS)})")
        if platform in seen:
            raise Refused(f"{pair}: platform {platform} given twice")
        seen.add(platform)
        out.append((platform, path))
    # The index lists platforms in a fixed order, whatever the command line's.
    order = list(PLATFORMS)
    return sorted(out, key=lambda p: order.index(p[0]))


def main(argv):
    p = argparse.ArgumentParser(prog="oci-image.py", description="Build a reproducible multi-arch OCI image archive.")
    p.add_argument("--out", required=True, help="the archive to write (an OCI image layout in a tar)")
    p.add_argument("--name", required=True, help="image name, e.g. localhost/pinniped")
    p.add_argument("--version", required=True, help="image version and tag, e.g. 0.1.0")
    p.add_argument("--revision", required=True, help="source revision (git commit)")
    p.add_argument("--source", required=True, help="where the source lives (URL or text)")
    p.add_argument("--created-epoch", type=int, default=None,
                   help="creation time in seconds since the epoch (default: $SOURCE_DATE_EPOCH)")
    p.add_argument("platforms", nargs="+", metavar="PLATFORM=PATH",
                   help="a static binary per platform: amd64, arm64 or armhf (linux/arm/v7)")
    args = p.parse_args(argv)
    try:
        if args.created_epoch is None:
            env = os.environ.get("SOURCE_DATE_EPOCH", "")
            if not re.fullmatch(r"[0-9]+", env):
                raise Refused("no creation time: give --created-epoch or set SOURCE_DATE_EPOCH")
            args.created_epoch = int(env)
        if not 0 <= args.created_epoch < 8**11:  # what a ustar header holds
            raise Refused(f"creation time {args.created_epoch} is out of range")
        if not re.fullmatch(r"[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*", args.name):
            raise Refused(f"--name {args.name!r} is not a valid image name")
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", args.version):
            raise Refused(f"--version {args.version!r} is not a valid tag")
        binaries = [(pl, check_elf(pl, path)) for pl, path in parse_platforms(args.platforms)]
        archive, index_digest, summary = build(args, binaries)
        tmp = f"{args.out}.tmp.{os.getpid()}"
        try:
            with open(tmp, "wb") as f:
                f.write(archive)
            os.replace(tmp, args.out)
        except OSError as e:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise Refused(f"cannot write {args.out}: {e.strerror}")
    except Refused as e:
        print(f"oci-image.py: {e}", file=sys.stderr)
        return 1
    print(f"{args.out}: {args.name}:{args.version}, {len(archive)} bytes")
    print(f"  index     {index_digest}")
    for platform, digest, bin_size, layer_size, _ in summary:
        print(f"  {platform:<6}    {digest}  binary {bin_size} bytes, layer {layer_size} bytes gzipped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
