import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
import HummingbirdTLS
import InetCore
import InetTLS
import Logging
import NIOCore
import NIOSSL
import NIOHTTP1
import NIOHTTP2
import NIOTLS

/// HTTPS on port 443: the same site and status pages as `http` (its options, wherever
/// `services.https` does not give its own), over TLS, with HTTP/2
/// negotiated by ALPN (HTTP/1.1 otherwise), with the PEM certificate chain (`cert`) and private
/// key (`key`) of `services.https`, or else the certificate generated into `<data_dir>/tls/`.
public struct HTTPSService: InetConnectionTaskService {
    public static let descriptor = ServiceDescriptor(
        name: "https", wellKnownPort: 443, transports: [.tcp], optionKeys: HTTPSettings.keys.union(ServerTLS.keys),
        summary: "the web site over TLS, HTTP/2 by ALPN", inheritsOptionsOf: "http"
    ) { options throws(ConfigError) in
        guard let tls = try ServerTLS.load(options, purpose: "HTTPS") else { return ServerTLS.MissingCertificate(ServerTLS.missing(options, service: "https")) }
        return try HTTPSService(settings: HTTPSettings(options: options), tls: tls, host: options.host, options: options)
    }

    let settings: HTTPSettings
    let site: Site
    let sslContext: NIOSSLContext
    /// HTTP/1.1 over TLS: the plain service's connection (fast handler, llhttp, limits, replies).
    let http1: HTTPConnection
    /// HTTP/2 (ALPN "h2"): cached files from the frames, the rest through the same site and limits.
    let http2: HTTP2Connection

    init(settings: HTTPSettings, tls: TLSConfiguration, host: HostDirectory, options: ServiceOptions) throws(ConfigError) {
        self.settings = settings
        let logger = Logger(label: "inetkit.https")
        let site = Site(settings: settings, host: host, logger: logger)
        self.site = site
        var accessLog = AccessLog(logger: logger)
        accessLog.service = "https"
        var tls = tls
        tls.applicationProtocols = ["h2", "http/1.1"]
        do {
            sslContext = try NIOSSLContext(configuration: tls)
        } catch {
            throw options.error("cert", "cannot set up TLS: \(error)")
        }
        http1 = HTTPConnection(settings: settings, responder: site.respond, accessLog: accessLog, fastPath: site.fastPath,
                               fastAnswers: site.fastAnswers, secure: true)
        http2 = HTTP2Connection(settings: settings, responder: site.respond, accessLog: accessLog, fastAnswers: site.fastAnswers)
    }

    public func drainConnections() {
        site.live.drain()
    }

    public func prepare() throws {
        try HTTPService(settings: settings, host: HostDirectory()).prepare()
    }

    /// TLS first; once the handshake has chosen a protocol (ALPN: "h2", else HTTP/1.1), the
    /// pipeline for it. A client has `header_timeout` to finish the handshake.
    public func setupConnection(_ channel: any Channel, logger: Logger) -> EventLoopFuture<ConnectionTask> {
        let (http1, http2) = (self.http1, self.http2)
        return channel.eventLoop.makeCompletedFuture {
            let sync = channel.pipeline.syncOperations
            try sync.addHandler(NIOSSLServerHandler(context: sslContext))
            // What ALPN chose, once the pipeline for it is in place: the task that serves it.
            let alpn = NIOTypedApplicationProtocolNegotiationHandler<ConnectionTask> { result in
                switch result {
                case .negotiated("h2"):
                    return http2.setup(channel, logger: logger)
                case .negotiated("http/1.1"), .fallback:
                    return http1.setup(channel, logger: logger)
                case .negotiated:
                    return channel.close().flatMapThrowing { throw NIOHTTP2Errors.invalidALPNToken() }
                }
            }
            try sync.addHandler(alpn)
            let handshake = channel.eventLoop.scheduleTask(in: .seconds(clamping: settings.headerTimeout)) {
                channel.close(promise: nil)
            }
            let negotiated = alpn.protocolNegotiationResult
            negotiated.whenComplete { _ in handshake.cancel() }
            return ConnectionTask {
                if let task = try? await negotiated.get() {
                    await task.run()
                } else {
                    try? await channel.close()
                }
            }
        }
    }
}
