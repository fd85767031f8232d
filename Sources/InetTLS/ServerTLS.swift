import InetCore
import NIOSSL

/// The server side of TLS for any service: a PEM certificate chain and private key named by the
/// service's `cert` and `key` options. HTTPS, SMTP (STARTTLS), POP3 (STLS) and FTP (AUTH TLS)
/// load them the same way, so they report a missing or unreadable file the same way.
public enum ServerTLS {
    /// The keys a service accepts for its certificate.
    public static let keys: Set<String> = ["cert", "key"]

    /// Whether the service's config names a certificate (the service then offers TLS).
    public static func isConfigured(_ reader: ConfigReader?) -> Bool {
        reader?.value("cert") != nil || reader?.value("key") != nil
    }

    /// The server configuration from `cert` and `key`, or nil when neither is given.
    /// `purpose` finishes the sentence "… needs both cert and key" in the error.
    public static func load(_ options: ServiceOptions, purpose: String) throws(ConfigError) -> TLSConfiguration? {
        let cert = try options.path("cert")
        let key = try options.path("key")
        if cert == nil && key == nil { return nil }
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
