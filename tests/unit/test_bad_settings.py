"""Hostile and mistaken settings: each is refused before any host changes, naming the setting.

No setting may inject into a shell line, a unit file, the sudoers rule, the nginx site or
the hub's Python config, including values a type checker would accept (a trailing newline,
a look-alike letter, a private key where a CA certificate belongs).
"""

import re
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tasks.settings import Settings, SettingsError
from tests.unit.settings_cases import BAD, GOOD, MANUAL, NOTIFY, File, service


def make_certificate(key, issuer_key=None, ca=None, name="Test CA"):
    now = datetime.now(UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
    )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    return builder.sign(issuer_key or key, hashes.SHA256())


def pem(certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def key_pem(key, password=None) -> bytes:
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


@pytest.fixture(scope="module")
def pem_files(tmp_path_factory):
    """CA and server certificates, keys, and the wrong things in their place."""
    folder = tmp_path_factory.mktemp("pem")
    ca_key, key, other_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = make_certificate(ca_key, ca=True)
    leaf = make_certificate(key, issuer_key=ca_key, ca=False, name="hub.example.org")
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hub.example.org")]))
        .sign(key, hashes.SHA256())
    )
    body = pem(ca).decode().splitlines()
    files = {
        "ca.crt": pem(ca),
        "ca.pem": pem(ca),
        "my ca.crt": pem(ca),
        "-ca.crt": pem(ca),
        "v1-root.crt": pem(make_certificate(other_key, name="Old Root")),  # no basicConstraints
        "bundle.crt": pem(ca) + pem(make_certificate(other_key, ca=True, name="Second CA")),
        "leaf.crt": pem(leaf),
        "key.pem": key_pem(key),
        "other-key.pem": key_pem(other_key),
        "two-keys.pem": key_pem(key) + key_pem(other_key),
        "encrypted.pem": key_pem(key, b"secret"),
        "ca-and-key.crt": pem(ca) + key_pem(ca_key),
        "garbage.crt": b"this is not a certificate\n",
        "chatty.crt": b"subject=CN = Test CA\n" + pem(ca),
        "der.crt": ca.public_bytes(serialization.Encoding.DER),
        "empty.crt": b"",
        "request.crt": request.public_bytes(serialization.Encoding.PEM),
        "broken.crt": "\n".join([body[0], body[1][:10] + "!!!!" + body[1][14:], *body[2:]]).encode() + b"\n",
    }
    for name, content in files.items():
        (folder / name).write_bytes(content)
    # Controller folders others may write to: one open, one sticky (as /tmp).
    for name, mode in (("open", 0o777), ("sticky", 0o1777)):
        (folder / name).mkdir()
        (folder / name).chmod(mode)
    return folder


def resolve(value, folder):
    if isinstance(value, File):
        return str(folder / value)
    if isinstance(value, dict):
        return {key: resolve(item, folder) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, folder) for item in value]
    return value


@pytest.mark.parametrize("data, setting", BAD.values(), ids=BAD.keys())
def test_bad_input_is_refused_naming_the_setting(pem_files, data, setting):
    data = resolve(data, pem_files)
    with pytest.raises(SettingsError) as error:
        Settings.from_data(data)
    message = str(error.value)
    assert message.startswith("invalid settings (no host was changed):")
    # The exact setting, not a longer or shorter one: jh_services[0][upstream], not jh_services[0].
    assert re.search(re.escape(setting) + r"[: ]", message), message


def test_the_table_is_large_and_has_no_duplicate_inputs():
    assert len(BAD) >= 45
    inputs = [repr(data) for data, _ in BAD.values()]
    assert len(set(inputs)) == len(inputs)


def test_a_private_key_is_named_but_not_printed(pem_files):
    with pytest.raises(SettingsError) as error:
        Settings.from_data({"jh_extra_ca_certificates": [str(pem_files / "key.pem")]})
    message = str(error.value)
    assert "jh_extra_ca_certificates[0]: holds a private key where a CA certificate belongs" in message
    assert "the key is not shown here" in message
    key_lines = (pem_files / "key.pem").read_text().splitlines()[1:-1]
    assert not any(line in message for line in key_lines)


def test_messages_say_what_is_allowed():
    def message(data):
        with pytest.raises(SettingsError) as error:
            Settings.from_data(data)
        return str(error.value)

    assert "jh_install_root: must not be /etc or below it" in message({"jh_install_root": "/etc/jupyter"})
    assert "jh_pip_index_url: must be an http(s) URL of letters, digits" in message(
        {"jh_pip_index_url": "https://mirror.example.org/simple\n"}
    )
    assert "it has '\\n'" in message({"jh_pip_index_url": "https://mirror.example.org/simple\n"})
    assert "jh_services[0][upstream]: must not point at the hub's own API (port 8081" in message(
        service("http://127.0.0.1:8081/")
    )
    assert "jh_notify_command: must be the absolute path of a program, then arguments" in message(
        {**NOTIFY, "jh_notify_command": "/usr/local/bin/page %n"}
    )
    assert "jh_users_group: 'sudo' is a privileged group" in message({"jh_users_group": "sudo"})


@pytest.mark.parametrize("data", GOOD.values(), ids=GOOD.keys())
def test_good_input_still_passes(data):
    Settings.from_data(data)


def test_urls_are_rendered_as_given():
    given = "https://mirror.example.org:8443/pypi/simple/"
    assert str(Settings.from_data({"jh_pip_index_url": given}).pip_index_url) == given
    upstream = "http://127.0.0.1:8787/rstudio/"
    assert str(Settings.from_data(service(upstream)).services[0].upstream) == upstream


def test_ca_files_with_ca_certificates_pass(pem_files):
    names = ["ca.crt", "bundle.crt", "v1-root.crt"]
    settings = Settings.from_data({"jh_extra_ca_certificates": [str(pem_files / name) for name in names]})
    assert [path.stem for path in settings.extra_ca_certificates] == ["ca", "bundle", "v1-root"]


def test_manual_certificate_with_its_key_passes(pem_files):
    Settings.from_data(
        {
            **MANUAL,
            "jh_certificate_file": str(pem_files / "leaf.crt"),
            "jh_certificate_key_file": str(pem_files / "key.pem"),
        }
    )


def test_a_risk_taken_on_purpose_is_named_for_the_run_s_warnings():
    settings = Settings.from_data({"jh_public_ip": "0.0.0.0", "jh_allow_public_http": True})
    assert settings.risks_taken() == [
        "jh_allow_public_http = True: Let the proxy listen on an address other than loopback without `jh_domain` "
        "(no TLS)"
    ]
    assert Settings.from_data({}).risks_taken() == []
