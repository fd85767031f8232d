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
    let channel: HTTP2UpgradeChannel

    init(settings: HTTPSettings, tls: TLSConfiguration, host: HostDirectory, options: ServiceOptions) throws(ConfigError) {
        self.settings = settings
        let logger = Logger(label: "inetkit.https")
        let site = Site(settings: settings, host: host, logger: logger)
        self.site = site
        let accessLog = AccessLog(logger: logger)
        do {
            // Over TLS, Hummingbird's HTTP/1 and HTTP/2 channels carry the requests; give them the
            // service's limits: header sizes, and header_timeout as their idle timeout.
            let idle = TimeAmount.seconds(clamping: settings.headerTimeout)
            let configuration = HTTP2ChannelConfiguration(
                idleTimeout: .nanoseconds(idle.nanoseconds),
                streamConfiguration: .init(
                    idleTimeout: idle,
                    httpDecoderConfiguration: .init(maxHeaderFieldSize: settings.maxHeaderBytes, maxHeaderListSize: settings.maxHeaderBytes)))
            channel = try HTTP2UpgradeChannel(tlsConfiguration: tls, configuration: configuration) { request, writer, channel in
                let started = NIODeadline.now()
                let response = await site.respond(request, channel: channel)
                // An HTTP/2 stream is a child of the connection's channel.
                let version: HTTPVersion = channel.parent?.parent != nil ? .init(major: 2, minor: 0) : .http1_1
                try await writer.write(response)
                accessLog.record(peer: channel.remoteAddress ?? channel.parent?.remoteAddress, head: request.head, version: version,
                                 status: response.status.code,
                                 bytes: request.method == .head ? 0 : response.headers[.contentLength].flatMap(Int.init) ?? 0,
                                 started: started, events: ConnectionEvents.of(channel))
            }
        } catch {
            throw options.error("cert", "cannot set up TLS: \(error)")
        }
    }

    public func drainConnections() {
        site.live.drain()
    }

    public func prepare() throws {
        try HTTPService(settings: settings, host: HostDirectory()).prepare()
    }

    public func setupConnection(_ channel: any Channel, logger: Logger) -> EventLoopFuture<ConnectionTask> {
        let upgrade = self.channel
        return upgrade.setup(channel: channel, logger: logger).map { value in
            ConnectionTask { await upgrade.handle(value: value, logger: logger) }
        }
    }
}
