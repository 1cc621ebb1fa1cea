"""The admission webhook's TLS: a self-signed CA the operator makes and a serving certificate.

When the chart gives no certificate (``operator.admission.certSecret`` empty, the default), the
operator makes, at every start, a fresh CA (valid :data:`CA_DAYS`) and a serving certificate for
the webhook Service's DNS names signed by it (valid :data:`SERVING_DAYS`), in a private folder;
kopf puts the CA into the ``ValidatingWebhookConfiguration``'s ``caBundle`` when it registers
the webhook. Rotation is by restart: every start makes new keys and re-registers the bundle, and
a certificate older than :data:`ROTATE_AFTER_DAYS` makes the liveness check of the caller fail
(:func:`needs_rotation`), so the kubelet restarts the operator well before expiry. With
cert-manager, give ``certSecret`` (a ``kubernetes.io/tls`` Secret from a SelfSigned issuer) and
the operator serves those files instead.

Needs the ``cryptography`` package (imported only here, only when the operator makes its own
certificate).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CA_DAYS", "ROTATE_AFTER_DAYS", "SERVING_DAYS", "WebhookTls", "self_signed"]

CA_DAYS = 365
SERVING_DAYS = 90
ROTATE_AFTER_DAYS = 60


@dataclass(frozen=True)
class WebhookTls:
    ca_pem: bytes  # → the webhook configuration's caBundle
    certfile: Path
    keyfile: Path
    not_after: datetime.datetime
    issued: datetime.datetime

    def needs_rotation(self, now: datetime.datetime | None = None) -> bool:
        now = now or datetime.datetime.now(datetime.UTC)
        return now - self.issued > datetime.timedelta(days=ROTATE_AFTER_DAYS)


def self_signed(hosts: list[str], folder: Path | None = None) -> WebhookTls:
    """A new CA and a serving certificate for ``hosts`` (DNS names or IP addresses)."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError as error:  # pragma: no cover - depends on the image
        raise RuntimeError(
            "the admission webhook needs a certificate: install `cryptography` (the operator "
            "makes its own CA) or give --admission-cert/--admission-key (e.g. cert-manager)"
        ) from error

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tradefleet-operator webhook CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    not_after = now + datetime.timedelta(days=SERVING_DAYS)
    serving = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    target = folder or Path(tempfile.mkdtemp(prefix="tradefleet-webhook-"))
    os.chmod(target, 0o700)
    certfile, keyfile = target / "tls.crt", target / "tls.key"
    certfile.write_bytes(serving.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(keyfile, 0o600)
    return WebhookTls(
        ca.public_bytes(serialization.Encoding.PEM), certfile, keyfile, not_after, now
    )
