"""The compliance record of every FIX message: capture, masking, tamper evidence and the tools to read it."""
