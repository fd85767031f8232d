#if canImport(Glibc)
import Glibc
#endif
import InetCore
import NIOSSL

/// The server side of TLS for any service: a PEM certificate chain and private key named by the
/// service's `cert` and `key` options. HTTPS, SMTP (STARTTLS), POP3 (STLS) and FTP (AUTH TLS)
/// load them the same way, so they report a missing or unreadable file the same way.
public enum ServerTLS {
    /// The keys a service accepts for its certificate.
    public static let keys: Set<String> = ["cert", "key"]

    /// Whether the service's config names its own certificate.
    public static func isConfigured(_ reader: ConfigReader?) -> Bool {
        reader?.value("cert") != nil || reader?.value("key") != nil
    }

    /// The server configuration from `cert` and `key`; when neither is given, the certificate
    /// generated into `<data_dir>/tls/` (see `DefaultCertificate`), or nil when there is none.
    /// `purpose` finishes the sentence "… needs both cert and key" in the error.
    public static func load(_ options: ServiceOptions, purpose: String) throws(ConfigError) -> TLSConfiguration? {
        var cert = try options.path("cert")
        var key = try options.path("key")
        if cert == nil && key == nil {
            // The pair InetKit generated into the data folder at start, when there is one.
            let generated = DefaultCertificate.paths(dataDirectory: options.dataDirectory)
            guard access(generated.certificate, R_OK) == 0, access(generated.key, R_OK) == 0 else { return nil }
            (cert, key) = (generated.certificate, generated.key)
        }
        guard let cert, let key else {
            throw options.error(cert == nil ? "cert" : "key",
                                "\(purpose) needs both cert and key (PEM files); 'inetkit cert --self-signed' writes a pair")
        }
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(cert).map { NIOSSLCertificateSource.certificate($0) }
            guard !chain.isEmpty else { throw options.error("cert", "\(cert) holds no certificate") }
            let privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
            return TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(privateKey))
        } catch let error as ConfigError {
            throw error
        } catch {
            throw options.error("cert", "cannot load \(cert) / \(key): \(error)")
        }
    }

    /// The error of an implicit-TLS service that has no certificate at all.
    public static func missing(_ options: ServiceOptions, service: String) -> ConfigError {
        options.error("cert", "\(service) needs a certificate: give cert and key, or let InetKit generate one into \(DefaultCertificate.folder(dataDirectory: options.dataDirectory))")
    }

    /// A TLS service without any certificate: configured but disabled it is fine (its other
    /// options were checked); started, it fails like a port that cannot be bound.
    public struct MissingCertificate: InetService {
        public let error: ConfigError

        public init(_ error: ConfigError) {
            self.error = error
        }

        public func prepare() throws {
            throw error
        }
    }

    /// A server context from `load`, or nil when no certificate is configured.
    public static func context(_ options: ServiceOptions, purpose: String) throws(ConfigError) -> NIOSSLContext? {
        guard let configuration = try load(options, purpose: purpose) else { return nil }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw options.error("cert", "cannot set up TLS: \(error)")
        }
    }
}
