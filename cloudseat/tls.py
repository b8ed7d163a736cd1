"""Serving over TLS with uvicorn's own TLS: the certificate pair is checked before the server starts.

Browsers give cameras and microphones only to secure origins, so a booth that reaches the centre
by its LAN name needs https (directly here, or from nginx in front: deploy/nginx, docs/deploy.md).
A missing file or a key that does not match its certificate is one line and exit 2, not a
traceback from deep inside uvicorn after the lifespan has started.
"""

from __future__ import annotations

import ssl
from pathlib import Path


class TlsPairError(ValueError):
    """The certificate and key cannot serve; the message says which file and why, in one line."""


def check_tls_pair(certfile: Path, keyfile: Path) -> None:
    """Load the pair as uvicorn will; raise TlsPairError naming the problem."""
    for label, path in (("certificate", certfile), ("key", keyfile)):
        if not path.is_file():
            raise TlsPairError(f"TLS {label} {path}: no such file")
        try:
            path.open("rb").close()
        except OSError as exc:
            raise TlsPairError(f"TLS {label} {path}: cannot be read ({exc.strerror})") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(certfile, keyfile)
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        raise TlsPairError(f"TLS certificate {certfile} and key {keyfile} do not make a pair ({reason})") from None
