#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation
import InetCore
import X509

/// The certificate TLS uses when the config names none: a self-signed ECDSA P-256 one that
/// InetKit writes on first start into `<data_dir>/tls/` (for localhost, 127.0.0.1, ::1, the host
/// name and the bind addresses) and reuses on every later start, so HTTPS, SMTPS, POP3S, FTPS
/// and STARTTLS work with no configuration. Clients trust it with `--cacert <data_dir>/tls/cert.pem`.
public enum DefaultCertificate {
    public static func folder(dataDirectory: String) -> String {
        dataDirectory.hasSuffix("/") ? dataDirectory + "tls" : dataDirectory + "/tls"
    }

    public static func paths(dataDirectory: String) -> (certificate: String, key: String) {
        let folder = folder(dataDirectory: dataDirectory)
        return (folder + "/cert.pem", folder + "/key.pem")
    }

    public struct Outcome: Sendable {
        public var certificate: String
        /// SHA-256 of the certificate's DER, as `AB:CD:…`.
        public var fingerprint: String
        public var created: Bool
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The names a generated certificate covers.
    public static func names(bind: [String]) -> [String] {
        var names = ["localhost", "127.0.0.1", "::1"]
        var buffer = [CChar](repeating: 0, count: 256)
        if gethostname(&buffer, buffer.count) == 0 {
            let host = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if !host.isEmpty { names.append(host) }
        }
        for address in bind where address != "0.0.0.0" && address != "::" { names.append(address) }
        var seen = Set<String>()
        return names.filter { seen.insert($0).inserted }
    }

    /// The certificate in the data folder, written first if there is none (or it has expired
    /// or is about to). A pair the user put there is used as it is.
    public static func ensure(dataDirectory: String, names: [String], now: Date = Date()) throws(Failure) -> Outcome {
        let (certificatePath, keyPath) = paths(dataDirectory: dataDirectory)
        if let pem = try? String(contentsOfFile: certificatePath, encoding: .utf8), FileManager.default.fileExists(atPath: keyPath),
           let certificate = try? Certificate(pemEncoded: pem), certificate.notValidAfter > now.addingTimeInterval(86_400) {
            return Outcome(certificate: certificatePath, fingerprint: fingerprint(certificate) ?? "?", created: false)
        }
        let pair: SelfSignedCertificate.Output
        do {
            pair = try SelfSignedCertificate.make(names: names, days: 825, now: now)
        } catch {
            throw Failure(description: "cannot make a certificate: \(error)")
        }
        let folder = folder(dataDirectory: dataDirectory)
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            try write(pair.privateKeyPEM, to: keyPath, mode: 0o600)
            try write(pair.certificatePEM, to: certificatePath, mode: 0o644)
        } catch {
            throw Failure(description: "cannot write the TLS certificate into \(folder): \(error)")
        }
        let written = try? Certificate(pemEncoded: pair.certificatePEM)
        return Outcome(certificate: certificatePath, fingerprint: written.flatMap(fingerprint) ?? "?", created: true)
    }

    static func write(_ text: String, to path: String, mode: mode_t) throws {
        let temporary = path + ".tmp"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw Failure(description: "\(temporary): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw Failure(description: "\(path): \(String(cString: strerror(errno)))")
        }
    }

    /// SHA-256 over the certificate's DER encoding, as `AB:CD:…` (what `openssl x509 -fingerprint -sha256` prints).
    public static func fingerprint(_ certificate: Certificate) -> String? {
        guard let der = try? certificate.serializeAsPEM().derBytes else { return nil }
        return SHA256.hash(data: der).map { byte in
            let hex = String(byte, radix: 16, uppercase: true)
            return byte < 16 ? "0" + hex : hex
        }.joined(separator: ":")
    }
}
