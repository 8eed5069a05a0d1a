"""A tiny library the ping example installs from a local wheel (no index needed)."""


def probe(host: str, seq: int) -> str:
    return f"probe {seq} to {host}: ok"
