"""Checks of the PEM files settings name on the controller: CA certificates, the site's
certificate and its private key, an LTI tool's key. A file that holds anything else is refused, and a private
key found where a certificate belongs is never repeated in the message."""

import base64
import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.utils import CryptographyDeprecationWarning

from tasks.settings.constants import PEM_BLOCK, PEM_LIMIT, PLAIN_NAME, PRIVATE_KEY_BLOCK


def _pem_blocks(path: Path, what: str) -> list[tuple[str, str]]:
    """The PEM blocks of path as (label, text); refuses anything but blocks and whitespace."""
    if path.stat().st_size > PEM_LIMIT:
        raise ValueError(f"is larger than 1 MiB: not {what} in PEM form")
    try:
        text = path.read_bytes().decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(
            f"is not a PEM text file (binary or non-ASCII content); it must hold {what} in PEM form "
            "(a DER file converts with `openssl x509 -inform der`)"
        ) from None
    if what != "a private key" and PRIVATE_KEY_BLOCK.search(text):
        # The key itself is not repeated in the message.
        where = "it goes in jh_certificate_key_file" if what == "a certificate" else "give the certificate only"
        raise ValueError(f"holds a private key where {what} belongs ({where}); the key is not shown here")
    blocks = [(match[1], match[0]) for match in PEM_BLOCK.finditer(text)]
    if PEM_BLOCK.sub("", text).strip():
        raise ValueError(f"holds text outside its PEM blocks: it must hold {what} in PEM form and nothing else")
    return blocks


def certificates(path: Path, what: str) -> list[x509.Certificate]:
    """The certificates of a PEM file that holds certificates and nothing else."""
    blocks = _pem_blocks(path, what)
    if not blocks:
        raise ValueError(f"holds no PEM certificate (-----BEGIN CERTIFICATE-----); it must hold {what}")
    found = []
    for number, (label, block) in enumerate(blocks, 1):
        if label != "CERTIFICATE":
            raise ValueError(f"holds a {label} block (block {number}): only CERTIFICATE blocks are allowed")
        try:
            with warnings.catch_warnings():  # old roots with a negative serial number
                warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                found.append(x509.load_pem_x509_certificate(block.encode()))
        except ValueError:
            raise ValueError(f"block {number} is not a valid certificate") from None
    return found


def ca_file(path: Path) -> Path:
    # Uploaded as <stem>.crt (tasks/system.py); update-ca-certificates reads only *.crt.
    if not PLAIN_NAME.fullmatch(path.stem):
        raise ValueError(
            f"the file name {path.name!r} must start with a letter or digit and hold only letters, digits "
            "and . _ - (it is uploaded as <name without suffix>.crt)"
        )
    # A CA certificate: basicConstraints CA:TRUE, or no basicConstraints at all (old v1
    # roots, and self-signed certificates made without extensions). CA:FALSE is a
    # server's certificate: its issuer belongs here, not it.
    for number, certificate in enumerate(certificates(path, "a CA certificate"), 1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            continue
        except ValueError:
            raise ValueError(f"certificate {number} has malformed extensions") from None
        if not constraints.ca:
            raise ValueError(
                f"certificate {number} is not a CA certificate (basicConstraints CA:FALSE): "
                "give the certificate of the CA that issued it"
            )
    return path


def certificate_file(path: Path) -> Path:
    certificates(path, "a certificate")
    return path


def private_key(path: Path, reader: str = "nginx") -> Any:
    """The key in path, which reader reads without a passphrase."""
    blocks = _pem_blocks(path, "a private key")
    if len(blocks) != 1 or not blocks[0][0].endswith("PRIVATE KEY"):
        raise ValueError("must hold exactly one PEM private key (-----BEGIN PRIVATE KEY-----) and nothing else")
    try:
        return serialization.load_pem_private_key(blocks[0][1].encode(), password=None)
    except TypeError:
        raise ValueError(f"holds an encrypted private key: {reader} needs it without a passphrase") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError("does not hold a valid PEM private key") from None


def private_key_file(path: Path) -> Path:
    private_key(path)
    return path


def rsa_key_file(path: Path) -> Path:
    """An unencrypted RSA private key of 2048 to 4096 bits (an LTI tool's: RS256; larger ones only
    make each signature slower)."""
    key = private_key(path, "the tool")
    if not isinstance(key, rsa.RSAPrivateKey) or not 2048 <= key.key_size <= 4096:
        raise ValueError(
            "must be an RSA key of 2048 to 4096 bits (LTI signs with RS256), such as "
            "`openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`"
        )
    return path


def _b64(number: int) -> str:
    return base64.urlsafe_b64encode(number.to_bytes((number.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()


def public_jwk(path: Path) -> dict:
    """The public JWK of the RSA key in path, its kid the RFC 7638 thumbprint, as
    hubside.lti_services.tool_jwk computes it for the assertions the key signs."""
    numbers = private_key(path, "the tool").public_key().public_numbers()
    public = {"e": _b64(numbers.e), "kty": "RSA", "n": _b64(numbers.n)}
    canonical = json.dumps(public, separators=(",", ":"), sort_keys=True)
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
    return {**public, "kid": kid, "alg": "RS256", "use": "sig"}


def public_key(key: Any) -> bytes:
    """A public key as DER bytes, to compare a certificate's with a private key's."""
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def dns_names(certificate: x509.Certificate) -> set[str]:
    """The DNS names a certificate's subjectAltName lists (browsers look nowhere else)."""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return set(names.get_values_for_type(x509.DNSName))
