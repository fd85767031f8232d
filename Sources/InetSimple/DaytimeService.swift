import InetCore
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Daytime (RFC 867): one human-readable date-time line, e.g.
/// `Monday, November 30, 2026 06:20:02-UTC` (the RFC's suggested form), then close.
public struct DaytimeService: InetService {
    public static let descriptor = ServiceDescriptor(
        name: "daytime", wellKnownPort: 13, transports: [.tcp, .udp],
        summary: "sends the date and time as a line of text (RFC 867)"
    ) { options in DaytimeService(now: { [clock = options.clock] in clock.seconds() }) }

    /// Seconds since 1970-01-01 UTC; injectable for tests.
    let now: @Sendable () -> Int

    public init(now: @escaping @Sendable () -> Int = { Int(time(nil)) }) {
        self.now = now
    }

    public func configureTCPConnection(_ channel: any Channel) throws {
        let now = self.now
        try channel.pipeline.syncOperations.addHandler(OneShotHandler { allocator in
            allocator.buffer(string: Self.line(secondsSince1970: now()))
        })
    }

    public func reply(toDatagram payload: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer? {
        allocator.buffer(string: Self.line(secondsSince1970: now()))
    }

    static let weekdays = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
    static let months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]

    /// The daytime line for a moment, ending in CRLF.
    public static func line(secondsSince1970: Int) -> String {
        var seconds = time_t(secondsSince1970)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(weekdays[Int(parts.tm_wday)]), \(months[Int(parts.tm_mon)]) \(parts.tm_mday), \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))-UTC\r\n"
    }
}
