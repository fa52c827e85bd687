"""Verify a coderun webhook: python3 verify_webhook.py SECRET SIGNATURE_HEADER BODY_FILE.

Exits 0 when the signature is valid and recent, 1 otherwise. The function is what a receiver
needs; give it the raw body bytes exactly as received, before any JSON parsing.
"""
import hashlib
import hmac
import sys
import time


def verify(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    timestamp, signature = fields.get("t", ""), fields.get("v1", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance:
        return False  # missing, or too old or too new: a replay
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), signature)


if __name__ == "__main__":
    secret, header, path = sys.argv[1:4]
    with open(path, "rb") as file:
        sys.exit(0 if verify(secret, header, file.read()) else 1)
