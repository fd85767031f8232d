import HTTPTypes
import InetCore
import NIOHTTP1
import Logging
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// One line per request in the Combined Log Format, through the host's logger:
/// `127.0.0.1 - - [30/Nov/2026:07:20:00 +0000] "GET / HTTP/1.1" 200 512 "-" "curl/7.88.1"`.
struct AccessLog: Sendable {
    let logger: Logger
    /// The service its lines name (`http`, or `https`).
    var service = "http"
    /// Where the lines go (tests give their own).
    var sink: LogSink = .standardError

    func record(peer: SocketAddress?, head: HTTPRequest, version: HTTPVersion, status: Int, bytes: Int, started: NIODeadline, events: ConnectionEvents? = nil) {
        guard events != nil || logger.logLevel <= .info else { return }
        record(peer: peer, method: head.method.rawValue, target: head.path ?? "*", version: version,
               referer: head.headerFields[.referer], agent: head.headerFields[.userAgent], status: status, bytes: bytes, started: started,
               events: events, host: head.authority)
    }

    func record(peer: SocketAddress?, method: String, target: String, version: HTTPVersion, referer: String?, agent: String?, status: Int, bytes: Int, started: NIODeadline,
                events: ConnectionEvents? = nil, host: String? = nil) {
        let target = Self.masked(target)
        if let events {
            // One `http.request` event: the request line, where it was sent and how it was answered.
            let nanoseconds = (NIODeadline.now() - started).nanoseconds
            events.emit("http.request") { body in
                body.string("method", method)
                body.string("target", target)
                body.string("version", Self.versionText(version))
                body.int("status", status)
                body.int("bytes_out", bytes)
                body.milliseconds("duration_ms", nanoseconds: nanoseconds)
                if let host { body.string("host", host) }
                if let agent { body.string("user_agent", agent) }
                if let referer { body.string("referer", referer) }
            }
        }
        guard logger.logLevel <= .info else { return }
        let line = "\(peer?.ipAddress ?? "-") - - [\(Self.clfTime())] \"\(method) \(Self.clean(target)) HTTP/\(version.major).\(version.minor)\" "
            + "\(status) \(bytes) \"\(Self.clean(referer ?? "-"))\" \"\(Self.clean(agent ?? "-"))\""
        // Straight to the sink, in the handler's format (fields by key): no metadata dictionary.
        var entry = LogLine(level: .info, message: line)
        entry.field("duration_ms", millisecondsSince: started)
        entry.field("peer", Self.peerText(peer))
        entry.field("service", service)
        entry.field("status", status)
        entry.write(to: sink)
    }

    /// The target with the value of any `token=` query parameter (the dashboard's) masked: the
    /// log and the events never hold the secret that opens them.
    static func masked(_ target: String) -> String {
        guard let question = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return target }
        let query = target.utf8[target.utf8.index(after: question)...]
        guard query.count >= 6, String(Substring(query)).contains("token=") else { return target }
        let parts = String(Substring(query)).split(separator: "&", omittingEmptySubsequences: false).map { part -> String in
            part.hasPrefix("token=") ? "token=****" : String(part)
        }
        return String(target[..<question]) + "?" + parts.joined(separator: "&")
    }

    static func versionText(_ version: HTTPVersion) -> String {
        switch (version.major, version.minor) {
        case (1, 1): "HTTP/1.1"
        case (1, 0): "HTTP/1.0"
        case (2, 0): "HTTP/2"
        default: "HTTP/\(version.major).\(version.minor)"
        }
    }

    func recordMalformed(peer: SocketAddress?, status: Int, events: ConnectionEvents? = nil, reason: String = "malformed request") {
        events?.emit("http.error") { body in
            body.int("status", status)
            body.string("outcome", reason)
        }
        guard logger.logLevel <= .info else { return }
        logger.info("\(peer?.ipAddress ?? "-") - - [\(Self.clfTime())] \"-\" \(status) 0 \"-\" \"-\"", metadata: [
            "service": "\(service)", "peer": "\(Self.peerText(peer))", "status": "\(status)",
        ])
    }

    private static func peerText(_ peer: SocketAddress?) -> String {
        guard let peer, let ip = peer.ipAddress, let port = peer.port else { return "-" }
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    /// Quotes and control characters escaped, as nginx does, so a line cannot be forged.
    static func clean(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            if scalar == "\"" || scalar == "\\" || scalar.value < 0x20 || scalar.value == 0x7f {
                result += "\\x" + String(scalar.value, radix: 16, uppercase: true)
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func clfTime() -> String {
        clfTime(Int(time(nil)))
    }

    static func clfTime(_ seconds: Int) -> String {
        var now = time_t(seconds)
        var parts = tm()
        gmtime_r(&now, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(two(parts.tm_mday))/\(months[Int(parts.tm_mon)])/\(Int(parts.tm_year) + 1900):\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) +0000"
    }
}
