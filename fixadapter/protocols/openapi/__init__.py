"""The cTrader Open API wire format: our proto2 files (proto/), their generated modules (generated/, made by
scripts/gen_openapi_protos.sh) and the ProtoMessage wrapper with its payloadType table (messages.py)."""
