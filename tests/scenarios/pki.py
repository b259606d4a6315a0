"""A throwaway PKI for the security scenarios, made with the host's `cryptography`: a CA, a
server certificate for 127.0.0.1, certificates signed from a charger's CSR, and the
CertificateHashData the OCPP security whitepaper defines, computed independently of the
firmware."""
import datetime
import hashlib
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

DAY = datetime.timedelta(days=1)


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class Authority:
    """A CA (self-signed unless `parent` is given) that signs certificates."""

    def __init__(self, cn="Test CSMS Root", kind="rsa", parent=None, expired=False, ca=True,
                 serial=None):
        self.key = (rsa.generate_private_key(65537, 2048) if kind == "rsa"
                    else ec.generate_private_key(ec.SECP256R1()))
        start = _now() - (30 * DAY if expired else DAY)
        end = _now() - DAY if expired else _now() + 365 * DAY
        issuer = parent or self
        b = (x509.CertificateBuilder().subject_name(_name(cn))
             .issuer_name(_name(cn) if parent is None else parent.cert.subject)
             .public_key(self.key.public_key())
             .serial_number(serial or x509.random_serial_number())
             .not_valid_before(start).not_valid_after(end)
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if ca:
            b = b.add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        self.cert = b.sign(issuer.key, hashes.SHA256())
        self.parent = parent

    @property
    def pem(self):
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def write(self, folder, name):
        """Write the certificate (name.pem) and key (name.key) -> (cert path, key path)."""
        cert, key = folder / (name + ".pem"), folder / (name + ".key")
        cert.write_text(self.pem)
        key.write_bytes(self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption()))
        return str(cert), str(key)

    def issue(self, public_key, cn, server=False, days=90):
        """An end-entity certificate for `public_key` -> x509.Certificate."""
        b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(self.cert.subject)
             .public_key(public_key).serial_number(x509.random_serial_number())
             .not_valid_before(_now() - DAY).not_valid_after(_now() + days * DAY)
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
        if server:
            b = b.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
        return b.sign(self.key, hashes.SHA256())

    def server(self, folder, name="server"):
        """A server certificate for 127.0.0.1 and its key in `folder` -> (cert, key) paths."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self.issue(key.public_key(), "127.0.0.1", server=True)
        cert_path, key_path = folder / (name + ".pem"), folder / (name + ".key")
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption()))
        return str(cert_path), str(key_path)

    def client(self, folder, cn, name="client", days=90):
        """A client certificate and key, as a technician would provision them."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self.issue(key.public_key(), cn, days=days)
        cert_path, key_path = folder / (name + ".pem"), folder / (name + ".key")
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption()))
        return str(cert_path), str(key_path)

    def sign_csr(self, csr_pem):
        """The PEM chain (leaf first) for a charger's CSR; checks the CSR's own signature."""
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        assert csr.is_signature_valid
        leaf = self.issue(csr.public_key(), csr.subject.get_attributes_for_oid(
            NameOID.COMMON_NAME)[0].value)
        return leaf.public_bytes(serialization.Encoding.PEM).decode(), csr


def hash_data(cert, issuer=None):
    """CertificateHashDataType of `cert` (x509.Certificate) as the whitepaper defines it."""
    issuer = issuer or cert
    key_bits = issuer.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    # The subjectPublicKey BIT STRING's content (without the unused-bits byte), as OCSP.
    spki = x509.load_der_x509_certificate(issuer.public_bytes(
        serialization.Encoding.DER)).public_key()
    if isinstance(spki, ec.EllipticCurvePublicKey):
        bits = spki.public_bytes(serialization.Encoding.X962,
                                 serialization.PublicFormat.UncompressedPoint)
    else:
        bits = spki.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    assert bits in key_bits
    return {"hashAlgorithm": "SHA256",
            "issuerNameHash": hashlib.sha256(cert.issuer.public_bytes()).hexdigest(),
            "issuerKeyHash": hashlib.sha256(bits).hexdigest(),
            "serialNumber": "%x" % cert.serial_number}
