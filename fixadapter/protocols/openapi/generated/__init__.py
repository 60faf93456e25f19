"""Generated from ../proto/*.proto by scripts/gen_openapi_protos.sh (protoc and mypy-protobuf): do not edit."""
