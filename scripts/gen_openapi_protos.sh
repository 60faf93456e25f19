#!/usr/bin/env bash
# Regenerate the Python modules of our cTrader Open API .proto files (fixadapter/protocols/openapi/proto/*.proto)
# into fixadapter/protocols/openapi/generated/: *_pb2.py (protoc) and *_pb2.pyi (mypy-protobuf). The generated
# files are committed; run this after editing a .proto file, then `make test`.
#
#     scripts/gen_openapi_protos.sh            (or: make protos)
#     PYTHON=/path/to/python scripts/gen_openapi_protos.sh
#
# Needs the dev extras (`pip install -e '.[dev]'`: grpcio-tools for protoc, mypy-protobuf for the stubs). protoc
# writes a runtime version check into each *_pb2.py: the `protobuf` runtime pinned in pyproject.toml must be at
# least that version and of the same major (tests/unit/test_openapi_messages.py checks it).
#
# The .proto files import each other by bare name (`import "OpenApiModelMessages.proto"`, no package, as the
# official files do), so the generated modules import each other by bare module name too
# (`import OpenApiModelMessages_pb2`); protoc has no option for that. This script rewrites those imports to
# relative ones (`from . import OpenApiModelMessages_pb2`) so the package needs nothing on sys.path.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
PROTO_DIR=fixadapter/protocols/openapi/proto
OUT_DIR=fixadapter/protocols/openapi/generated
PLUGIN_DIR="$(dirname "$PYTHON")"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
"$PYTHON" -m grpc_tools.protoc \
    --proto_path="$PROTO_DIR" \
    --python_out="$WORK" \
    --plugin=protoc-gen-mypy="$PLUGIN_DIR/protoc-gen-mypy" \
    --mypy_out=readable_stubs:"$WORK" \
    "$PROTO_DIR"/*.proto

# `import X_pb2 as X__pb2` / `import X_pb2` (the .py and the .pyi) -> relative imports within the package.
sed -i -E 's/^import (OpenApi[A-Za-z]+_pb2)( as [A-Za-z_0-9]+)?$/from . import \1\2/' "$WORK"/*_pb2.py "$WORK"/*_pb2.pyi
rm -f "$OUT_DIR"/*_pb2.py "$OUT_DIR"/*_pb2.pyi
cp "$WORK"/*_pb2.py "$WORK"/*_pb2.pyi "$OUT_DIR"/
"$PYTHON" -m grpc_tools.protoc --version | sed 's/^/generated with /'
