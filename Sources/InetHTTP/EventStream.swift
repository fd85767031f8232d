import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import InetCore
import NIOCore
import Logging
import Synchronization

/// The host's live side under `status_path`: the event stream (`/events`, server-sent events)
/// and the JSON API (`/api/v1/events`, `/api/v1/services`, `/api/v1/connections`).
///
/// Every subscriber reads the ring shared by all processes with its own cursor, so a slow one
/// costs nothing but its socket buffer: when the ring has moved past it, it is told how many
/// events it lost (`stream.lagged`) and carries on from the oldest still there.
final class HostLive: Sendable {
    let host: HostDirectory
    let statusPath: String
    private let subscribers = Atomic<Int>(0)
    private let stop: StopFlag
    /// The token asked of clients reaching the host over a non-loopback address.
    private let token: TokenSource
    private let mail: MailAPI
    private let uploads: UploadsAPI

    /// Events per page of `/api/v1/events` (and per write of the stream).
    static let pageLimit = 1000
    /// How often a subscriber looks at the ring when it has caught up.
    static let pollInterval: UInt64 = 50_000_000

    init(host: HostDirectory, statusPath: String, dataDirectory: String) {
        self.host = host
        self.statusPath = statusPath
        token = TokenSource(dataDirectory: dataDirectory)
        let flag = StopFlag()
        stop = flag
        mail = MailAPI(host: host, statusPath: statusPath) { flag.value.load(ordering: .relaxed) }
        uploads = UploadsAPI(host: host, statusPath: statusPath)
    }

    /// Whether this request is for the live side.
    func handles(_ path: String) -> Bool {
        guard path.hasPrefix(statusPath) else { return false }
        let rest = path.utf8.dropFirst(statusPath.utf8.count)
        return rest.isEmpty || rest.elementsEqual("/".utf8) || rest.elementsEqual("/events".utf8) || rest.starts(with: "/api/".utf8)
            || rest.elementsEqual("/dashboard.js".utf8) || rest.elementsEqual("/dashboard.css".utf8)
    }

    /// The open streams end (the host is shutting down).
    func drain() {
        stop.value.store(true, ordering: .relaxed)
    }

    func respond(_ request: Request, channel: any Channel) async -> Response {
        let path = request.uri.path
        let allowed = mail.handles(path) ? mail.allowed(path) : "GET, HEAD"
        guard request.method == .get || request.method == .head || (request.method == .delete && allowed.hasSuffix("DELETE")) else {
            var response = HTTPErrors.page(.methodNotAllowed, "This resource takes \(allowed).")
            response.headers[.allow] = allowed
            return response
        }
        if path == statusPath {
            return Response(status: .movedPermanently, headers: [.location: statusPath + "/", .contentLength: "0"])
        }
        if path.hasPrefix(statusPath + "/dashboard."), let asset = Dashboard.asset(path.dropFirst(statusPath.count + 1)) {
            // The script and style sheet hold nothing of the host's: no token needed.
            return Response(status: .ok, headers: Dashboard.headers(type: asset.type, length: asset.body.utf8.count, cache: true),
                            body: .init(byteBuffer: ByteBuffer(string: asset.body)))
        }
        let refusal = checkToken(request, channel: channel)
        if path == statusPath + "/" {
            // Without the token, the page comes without the host's services and asks for it.
            let services = refusal == nil ? host.services() : []
            let page = Dashboard.page(services, uptime: Date().timeIntervalSince1970 - host.started, statusPath: statusPath)
            return Response(status: .ok, headers: Dashboard.headers(type: "text/html; charset=utf-8", length: page.utf8.count),
                            body: .init(byteBuffer: ByteBuffer(string: page)))
        }
        if let refusal { return refusal }
        if mail.handles(path) { return await mail.respond(request) }
        if uploads.handles(path) { return await uploads.respond(request) }
        let query = request.uri.queryParameters
        switch path {
        case statusPath + "/events":
            return stream(request, query: query)
        case statusPath + "/api/v1/events":
            return eventsPage(query: query)
        case statusPath + "/api/v1/services":
            return json(StatusPages.json(host.services(), uptime: Date().timeIntervalSince1970 - host.started))
        case statusPath + "/api/v1/connections":
            return connections()
        case statusPath + "/api/openapi.json":
            return json(OpenAPIDocument.json(statusPath: statusPath))
        default:
            return HTTPErrors.page(.notFound, "Not found.")
        }
    }

    // MARK: - Access

    /// Over loopback, no token; otherwise `Authorization: Bearer TOKEN` or `?token=TOKEN`.
    private func checkToken(_ request: Request, channel: any Channel) -> Response? {
        let local = channel.localAddress ?? channel.parent?.localAddress
        if let local, Self.isLoopback(local) { return nil }
        guard let expected = token.value(settings: host.events.settings) else {
            return HTTPErrors.page(.forbidden, "The dashboard token could not be made; set events.dashboard_token.")
        }
        var offered: Substring?
        if let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") {
            offered = Substring(header.dropFirst(7)).trimmingPrefix(while: { $0 == " " })
        } else if let value = request.uri.queryParameters["token"] {
            offered = value
        }
        guard let offered, Secret.equal(String(offered), expected) else {
            var response = HTTPErrors.page(.unauthorized, "This host is reached over a non-loopback address: a token is needed (Authorization: Bearer, or ?token=).")
            response.headers[.wwwAuthenticate] = "Bearer realm=\"inetkit\""
            return response
        }
        return nil
    }

    static func isLoopback(_ address: SocketAddress) -> Bool {
        switch address {
        case .v4(let v4): return (UInt32(bigEndian: v4.address.sin_addr.s_addr) >> 24) == 127
        case .v6:
            guard let ip = address.ipAddress else { return false }
            return ip == "::1" || ip.hasPrefix("::ffff:127.")
        case .unixDomainSocket: return true
        }
    }

    // MARK: - The API

    private func json(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [
            .contentType: "application/json", .contentLength: String(text.utf8.count), .cacheControl: "no-store",
            HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        ], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// `?since=ID` (events after it; default: the oldest kept), `limit` (1…1000, default 100),
    /// `service=a,b`, `kind=http.request,dns.*`.
    private func eventsPage(query: FlatDictionary<Substring, Substring>) -> Response {
        guard let ring = host.events.readableRing else {
            return json(#"{"events":[],"next":1,"lost":0,"enabled":false}"# + "\n")
        }
        guard let since = Self.number(query["since"], default: 0) else {
            return json(#"{"error":"since must be a number of up to 15 digits"}"# + "\n", status: .badRequest)
        }
        guard let limit = Self.number(query["limit"], default: 100), (1...Self.pageLimit).contains(limit) else {
            return json(#"{"error":"limit must be 1 to 1000"}"# + "\n", status: .badRequest)
        }
        guard let connection = Self.number(query["conn"], default: 0) else {
            return json(#"{"error":"conn must be a number of up to 15 digits"}"# + "\n", status: .badRequest)
        }
        var filter = EventFilter(services: query["service"], kinds: query["kind"])
        filter.connection = connection
        var cursor = EventCursor(next: since + 1)
        var bytes: [UInt8] = Array(#"{"events":["#.utf8)
        var count = 0
        var lost = 0
        // Filtered events do not count against the limit; the scan stops at the ring's end.
        scan: while count < limit {
            let (events, lostNow) = cursor.poll(ring, limit: Self.pageLimit, now: Self.monotonic())
            lost += lostNow
            if events.isEmpty { break }
            for event in events {
                guard filter.matches(event) else { continue }
                if count > 0 { bytes.append(UInt8(ascii: ",")) }
                bytes.append(UInt8(ascii: "\n"))
                bytes.append(contentsOf: event.json)
                count += 1
                if count == limit {
                    cursor = EventCursor(next: event.id + 1)
                    break scan
                }
            }
        }
        bytes.append(contentsOf: "\n],\"next\":\(cursor.next),\"last_id\":\(ring.lastID),\"lost\":\(lost)}\n".utf8)
        return Response(status: .ok, headers: [
            .contentType: "application/json", .contentLength: String(bytes.count), .cacheControl: "no-store",
            HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        ], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    private func connections() -> Response {
        let open = host.events.readableRing?.openConnections() ?? []
        let items = open.map { connection in
            "{\"id\":\(connection.id),\"service\":\(JSON.quote(connection.service)),\"transport\":\"\(connection.transport)\","
                + "\"peer\":\(JSON.quote(connection.peer)),\"port\":\(connection.port),\"pid\":\(connection.pid),"
                + "\"started\":\(JSON.quote(EventBody.isoTime(connection.started)))}"
        }
        return json("{\"connections\":[\(items.joined(separator: ",\n"))]}\n")
    }

    static func number(_ text: Substring?, default value: Int) -> Int? {
        guard let text else { return value }
        guard (1...15).contains(text.utf8.count), text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(text)
    }

    static func monotonic() -> Double {
        Double(DispatchTime.now().uptimeNanoseconds) / 1e9
    }

    // MARK: - The stream

    /// `text/event-stream`: from `Last-Event-ID` (or `?since=`) on, else only what comes next.
    private func stream(_ request: Request, query: FlatDictionary<Substring, Substring>) -> Response {
        guard let ring = host.events.readableRing else {
            return HTTPErrors.page(.notFound, "Events are off on this host (events.enabled: false).")
        }
        let settings = host.events.settings
        let lastSeen = request.headers[HTTPField.Name("Last-Event-ID")!].map { Substring($0) } ?? query["since"]
        guard let after = Self.number(lastSeen, default: ring.lastID) else {
            return HTTPErrors.page(.badRequest, "Last-Event-ID (or since) must be a number of up to 15 digits.")
        }
        guard subscribers.wrappingAdd(1, ordering: .relaxed).newValue <= settings.maxSubscribers else {
            subscribers.wrappingSubtract(1, ordering: .relaxed)
            var response = HTTPErrors.page(.serviceUnavailable, "Too many event subscribers (events.max_subscribers: \(settings.maxSubscribers)).")
            response.headers[.retryAfter] = "5"
            return response
        }
        let filter = EventFilter(services: query["service"], kinds: query["kind"])
        let heartbeat = settings.heartbeat
        let headers: HTTPFields = [
            .contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-store",
            HTTPField.Name("X-Accel-Buffering")!: "no", HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        ]
        if request.method == .head {
            subscribers.wrappingSubtract(1, ordering: .relaxed)
            return Response(status: .ok, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: ResponseBody { [self] writer in
            defer { subscribers.wrappingSubtract(1, ordering: .relaxed) }
            var cursor = EventCursor(next: after + 1)
            // How long the client waits before reconnecting, and where the stream starts.
            try await writer.write(ByteBuffer(string: "retry: 2000\n: inetkit events from \(after + 1)\n\n"))
            var lastWrite = Self.monotonic()
            var out = ByteBuffer()
            while !stop.value.load(ordering: .relaxed), !Task.isCancelled {
                let (events, lost) = cursor.poll(ring, limit: 256, now: Self.monotonic())
                out.clear()
                if lost > 0 {
                    out.writeString("data: {\"kind\":\"stream.lagged\",\"lost\":\(lost),\"next\":\(cursor.next)}\n\n")
                }
                for event in events where filter.matches(event) {
                    out.writeString("id: \(event.id)\ndata: ")
                    out.writeBytes(event.json)
                    out.writeString("\n\n")
                }
                if events.isEmpty, Self.monotonic() - lastWrite >= heartbeat {
                    out.writeString(": heartbeat\n\n")
                }
                if out.readableBytes > 0 {
                    // Suspends while the client does not read: nothing queues here meanwhile.
                    try await writer.write(out)
                    lastWrite = Self.monotonic()
                }
                if events.count < 256 { try await Task.sleep(nanoseconds: Self.pollInterval) }
            }
            try await writer.finish(nil)
        })
    }
}

/// Set once the host is shutting down: open streams and waits end.
final class StopFlag: Sendable {
    let value = Atomic<Bool>(false)
}

/// `service=a,b` and `kind=http.request,dns.*` (a trailing `*` matches a prefix).
struct EventFilter: Sendable {
    var services: [String]
    var kinds: [String]
    /// Only this connection's events (0: any).
    var connection = 0

    init(services: Substring?, kinds: Substring?) {
        self.services = services.map { $0.split(separator: ",").map { String($0).lowercased() } } ?? []
        self.kinds = kinds.map { $0.split(separator: ",").map(String.init) } ?? []
    }

    func matches(_ event: StoredEvent) -> Bool {
        if connection != 0, event.connection != connection { return false }
        if !services.isEmpty, !services.contains(event.service) { return false }
        if !kinds.isEmpty {
            return kinds.contains { kind in
                kind.hasSuffix("*") ? event.kind.hasPrefix(kind.dropLast()) : event.kind == kind
            }
        }
        return true
    }
}

/// The dashboard token: `events.dashboard_token`, or one made once and kept in
/// `<data_dir>/dashboard.token` (mode 0600), so every worker and restart agree.
public final class TokenSource: Sendable {
    public let path: String
    private let cached = Mutex<String?>(nil)

    public init(dataDirectory: String) {
        path = (dataDirectory.hasSuffix("/") ? dataDirectory : dataDirectory + "/") + "dashboard.token"
    }

    func value(settings: EventSettings) -> String? {
        ensure(settings: settings)?.token
    }

    /// The token, and whether this call made it (the host prints a new one once, at start).
    public func ensure(settings: EventSettings) -> (token: String, made: Bool)? {
        if let configured = settings.dashboardToken { return (configured, false) }
        return cached.withLock { cached in
            if let cached { return (cached, false) }
            if let text = readTextFile(path, limit: 256)?.trimmingCharacters(in: .whitespacesAndNewlines), text.count >= 16 {
                cached = text
                return (text, false)
            }
            var bytes = [UInt8](repeating: 0, count: 24)
            var generator = SystemRandomNumberGenerator()
            for index in bytes.indices { bytes[index] = generator.next() }
            let token = bytes.map { String(format: "%02x", $0) }.joined()
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if fd < 0 {
                // Another worker made it first.
                if let text = readTextFile(path, limit: 256)?.trimmingCharacters(in: .whitespacesAndNewlines), text.count >= 16 {
                    cached = text
                    return (text, false)
                }
                return nil
            }
            let line = token + "\n"
            _ = line.withCString { write(fd, $0, strlen($0)) }
            close(fd)
            cached = token
            return (token, true)
        }
    }
}
