import Crypto
import Foundation
import SwiftASN1
import X509

/// A development certificate: a P-256 key and a self-signed certificate for the given names
/// (DNS names and IP addresses in subjectAltName), valid for `days` days, usable for TLS servers.
public enum SelfSignedCertificate {
    public struct Output: Sendable {
        public var certificatePEM: String
        public var privateKeyPEM: String
    }

    public static func make(names: [String], days: Int, now: Date = Date()) throws -> Output {
        let key = P256.Signing.PrivateKey()
        let commonName = names.first ?? "localhost"
        let subject = try DistinguishedName {
            OrganizationName("InetKit development")
            CommonName(commonName)
        }
        var alternatives: [GeneralName] = []
        for name in names {
            if let bytes = ipBytes(name) {
                alternatives.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes))))
            } else {
                alternatives.append(.dnsName(name))
            }
        }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
            try ExtendedKeyUsage([.serverAuth])
            SubjectAlternativeNames(alternatives)
        }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(Double(days) * 86_400),
            issuer: subject,
            subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: Certificate.PrivateKey(key))
        return Output(certificatePEM: try certificate.serializeAsPEM().pemString + "\n", privateKeyPEM: key.pemRepresentation + "\n")
    }

    /// The 4 or 16 bytes of a literal IPv4/IPv6 address, nil for a name.
    static func ipBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}
