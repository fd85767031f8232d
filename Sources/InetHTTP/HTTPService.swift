import Foundation
import Hummingbird
import HTTPTypes
import InetCore
import Logging
import NIOCore
import NIOPosix

/// HTTP (RFC 9110, 9112) on port 80: the site under `root` as nginx would serve it (files with
/// ETag, Last-Modified, conditional and range requests from Hummingbird's FileMiddleware;
/// folders with index.html or a listing), plus the host's own status pages under `status_path`.
public struct HTTPService: InetConnectionTaskService {
    public static let descriptor = ServiceDescriptor(
        name: "http", wellKnownPort: 80, transports: [.tcp], optionKeys: HTTPSettings.keys,
        summary: "serves a web site and the host's status pages (RFC 9110)"
    ) { options throws(ConfigError) in
        try HTTPService(settings: HTTPSettings(options: options), host: options.host)
    }

    let settings: HTTPSettings
    let host: HostDirectory
    /// Built once: the router is shared by every connection.
    let site: Site

    public init(settings: HTTPSettings, host: HostDirectory) {
        self.settings = settings
        self.host = host
        self.site = Site(settings: settings, host: host, logger: Logger(label: "inetkit.http"))
    }

    /// Creates the site folder with a small index page on first start (also when another
    /// service, such as FTP sharing the public folder, created it empty just before).
    public func prepare() throws {
        let files = FileManager.default
        var isDirectory: ObjCBool = false
        if files.fileExists(atPath: settings.root, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw PrepareError(message: "http root \(settings.root) is not a folder") }
            guard (try? files.contentsOfDirectory(atPath: settings.root))?.isEmpty == true else { return }
        }
        try files.createDirectory(atPath: settings.root, withIntermediateDirectories: true)
        let index = """
            <!DOCTYPE html>
            <html><head><meta charset="utf-8"><title>InetKit</title></head>
            <body><h1>It works: InetKit is serving this folder.</h1>
            <p>Put your files in <code>\(HTML.escape(settings.root))</code>. The host's status is at
            <a href="\(settings.statusPath)/">\(settings.statusPath)/</a>.</p></body></html>

            """
        try index.write(toFile: settings.root + "/index.html", atomically: true, encoding: .utf8)
    }

    public func drainConnections() {
        site.live.drain()
    }

    public func setupConnection(_ channel: any Channel, logger: Logger) -> EventLoopFuture<ConnectionTask> {
        HTTPConnection(settings: settings, responder: site.respond, accessLog: AccessLog(logger: logger), fastPath: site.fastPath,
                       fastAnswers: site.fastAnswers)
            .setup(channel, logger: logger)
    }

    struct PrepareError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}

/// The router: status pages, listing, and the guarded file middleware in front.
struct Site: Sendable {
    let responder: RouterResponder<BasicRequestContext>
    let logger: Logger
    /// Small files answered on the event loop (nil when the file cache is off).
    let fastPath: StaticFastPath?
    /// The event stream and the JSON API.
    let live: HostLive
    /// The fast handler's answers, per event loop (nil when the file cache is off).
    let fastAnswers: FastAnswersByLoop?

    init(settings: HTTPSettings, host: HostDirectory, logger: Logger) {
        self.logger = logger
        live = HostLive(host: host, statusPath: settings.statusPath, dataDirectory: settings.dataDirectory)
        let root = SiteRoot(settings.root)
        let cache = FileCache(maximumBytes: settings.fileCacheBytes, maximumFileBytes: settings.fileCacheMaxFile)
        fastPath = settings.fileCacheBytes > 0 ? StaticFastPath(root: root, statusPath: settings.statusPath, cache: cache) : nil
        fastAnswers = fastPath.map { FastAnswersByLoop(fastPath: $0) }
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: SiteGuard(root: root, statusPath: settings.statusPath))
        router.add(middleware: FileMiddleware(
            fileProvider: SiteFileProvider(
                root: root, cache: cache,
                threadPool: .singleton, logger: logger),
            searchForIndexHtml: true))
        let statusPath = settings.statusPath
        @Sendable func page(_ body: String, _ type: String) -> Response {
            Response(status: .ok, headers: [.contentType: type, .contentLength: String(body.utf8.count), .cacheControl: "no-store"],
                     body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        for method in [HTTPRequest.Method.get, .head] {
            router.on(RouterPath(statusPath + "/status.json"), method: method) { _, _ in
                page(StatusPages.json(host.services(), uptime: Date().timeIntervalSince1970 - host.started), "application/json")
            }
            router.on(RouterPath(statusPath + "/metrics"), method: method) { _, _ in
                page(StatusPages.metrics(host.services(), uptime: Date().timeIntervalSince1970 - host.started), "text/plain; version=0.0.4; charset=utf-8")
            }
            let listing: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
                // Only a folder asked for with its trailing slash and without index.html gets a
                // listing; anything else falls through to the file middleware (404 when missing).
                let rawPath = request.uri.path
                guard settings.listing, rawPath.hasSuffix("/"),
                      case .success(let decoded) = SitePath.check(rawPath: Substring(rawPath)),
                      case .found(let folder, true) = SitePath.resolve(decoded, root: root.path),
                      !FileManager.default.fileExists(atPath: folder + "/index.html"),
                      let entries = DirectoryListing.entries(of: folder)
                else { throw HTTPError(.notFound) }
                return page(DirectoryListing.html(path: decoded, entries: entries), "text/html; charset=utf-8")
            }
            router.on("/", method: method, use: listing)
            router.on("**", method: method, use: listing)
        }
        responder = router.buildResponder()
    }

    @Sendable
    func respond(_ request: Request, channel: any Channel) async -> Response {
        let context = BasicRequestContext(source: .init(channel: channel, logger: logger))
        var response: Response
        if live.handles(request.uri.path) {
            response = await live.respond(request, channel: channel)
            response.headers[.server] = "InetKit"
            response.headers[.date] = HTTPDate.now()
            return response
        }
        do {
            response = try await responder.respond(to: request, context: context)
        } catch let error as any HTTPResponseError {
            response = HTTPErrors.page(error.status, error.status == .notFound ? "Not found." : "\(error.status.reasonPhrase).")
        } catch {
            logger.error("http request failed", metadata: ["error": "\(error)"])
            response = HTTPErrors.page(.internalServerError, "The server could not answer this request.")
        }
        if response.status == .notFound && response.headers[.contentType] == nil {
            response = HTTPErrors.page(.notFound, "Not found.")
        }
        response.headers[.server] = "InetKit"
        response.headers[.date] = HTTPDate.now()
        return response
    }
}

/// The site folder with every symlink resolved, worked out on first use: the folder may only
/// be created by `prepare()`, after the router is built.
final class SiteRoot: Sendable {
    private let configured: String
    private let resolved = NIOLockedValueBox<String?>(nil)

    init(_ configured: String) {
        self.configured = configured
    }

    var path: String {
        if let path = resolved.withLockedValue({ $0 }) { return path }
        guard let path = SitePath.realPath(configured) else { return "/nonexistent-inetkit-root" }
        resolved.withLockedValue { $0 = path }
        return path
    }
}

/// The Date header (RFC 9110 5.6.7), e.g. `Mon, 30 Nov 2026 07:20:00 GMT`, cached per second.
enum HTTPDate {
    private static let cache = NIOLockedValueBoxCache()

    static func now() -> String {
        cache.value()
    }
}

import NIOConcurrencyHelpers

final class NIOLockedValueBoxCache: Sendable {
    private let box = NIOLockedValueBox<(Int, String)>((0, ""))

    func value() -> String {
        let now = Int(time(nil))
        return box.withLockedValue { cached in
            if cached.0 != now { cached = (now, Self.format(now)) }
            return cached.1
        }
    }

    static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]

    static func format(_ seconds: Int) -> String {
        var value = time_t(seconds)
        var parts = tm()
        gmtime_r(&value, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(AccessLog.months[Int(parts.tm_mon)]) \(Int(parts.tm_year) + 1900) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
