"""Regenerate the Python stubs of batchcalls.v1 with grpc_tools.protoc.

`python scripts/gen_proto.py` writes them next to the .proto files;
`python scripts/gen_proto.py --check` regenerates into a temporary folder and
fails when the committed stubs differ (CI runs it).
"""

from __future__ import annotations

import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PACKAGE_DIR = PROTO_ROOT / "batchcalls" / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def generate(out_dir: Path) -> None:
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PACKAGE_DIR.glob("*.proto"))
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def generated_files(base: Path) -> list[Path]:
    folder = base / "batchcalls" / "v1"
    return sorted(p for p in folder.iterdir() if p.name.endswith(GENERATED_SUFFIXES))


def main() -> int:
    check = "--check" in sys.argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        generate(tmp_path)
        fresh = {p.name: p for p in generated_files(tmp_path)}
        if check:
            current = {p.name: p for p in generated_files(PROTO_ROOT)}
            stale = sorted(
                name
                for name in set(fresh) | set(current)
                if name not in fresh
                or name not in current
                or not filecmp.cmp(fresh[name], current[name], shallow=False)
            )
            if stale:
                print("stale generated stubs: " + ", ".join(stale), file=sys.stderr)
                print("run: python scripts/gen_proto.py", file=sys.stderr)
                return 1
            print("generated stubs are current")
            return 0
        for old in generated_files(PROTO_ROOT):
            old.unlink()
        for name, path in fresh.items():
            shutil.copy(path, PACKAGE_DIR / name)
        print(f"wrote {len(fresh)} files to {PACKAGE_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
