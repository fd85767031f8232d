#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import InetCore
import NIOCore

/// What one server said, as `sntp` reports it.
public struct NTPMeasurement: Sendable {
    public var reply: NTPPacket
    /// Seconds to add to this machine's clock to get the server's.
    public var offset: Double
    /// The round trip minus the server's own time, in seconds.
    public var delay: Double
    /// The server's transmit time as a Unix time.
    public var serverTime: Double

    /// A Kiss-o'-Death: the server tells the client to go away or slow down (the code says why).
    public var kissCode: String? { reply.stratum == 0 ? reply.referenceText : nil }
}

public struct NTPClientError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// An SNTP client (RFC 4330 §5): one client-mode request per try, the reply checked against
/// it (mode, origin timestamp) before its times are used.
public enum NTPClient {
    /// The system clock as a Unix time with fraction.
    public static func systemTime() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// The request for `now`: version 4, client mode, the transmit time with its lowest bits
    /// random (so that a forged reply cannot guess the origin it must echo).
    public static func request(now: Double, version: UInt8 = 4) -> NTPPacket {
        var transmit = NTPTimestamp(unixTime: now)
        transmit.fraction = transmit.fraction & ~0xff | UInt32.random(in: 0...0xff)
        return NTPPacket(version: version, mode: .client, poll: 6, transmitTime: transmit)
    }

    /// Checks a reply against the request it answers and computes offset and delay from the
    /// four times (RFC 5905 §8): t1 sent, t2 received by the server, t3 sent by it, t4 received.
    public static func measure(reply bytes: [UInt8], request: NTPPacket, sent t1: Double, received t4: Double) throws -> NTPMeasurement {
        guard let reply = NTPPacket.decode(bytes) else { throw NTPClientError("a reply of \(bytes.count) bytes is shorter than an NTP header") }
        guard reply.mode == .server || reply.mode == .symmetricPassive else { throw NTPClientError("the reply is in mode \(reply.mode.rawValue), not server mode") }
        guard reply.originTime == request.transmitTime else { throw NTPClientError("the reply's origin time is not this request's (a stale or forged reply)") }
        let t2 = reply.receiveTime.unixTime(near: t1)
        let t3 = reply.transmitTime.unixTime(near: t1)
        return NTPMeasurement(reply: reply, offset: ((t2 - t1) + (t3 - t4)) / 2, delay: (t4 - t1) - (t3 - t2), serverTime: t3)
    }

    /// Asks one server; retries `attempts` times on silence.
    public static func query(host: String, port: Int, timeout: Double, attempts: Int = 1, version: UInt8 = 4, group: any EventLoopGroup) async throws -> NTPMeasurement {
        let session = try await UDPSession.open(host: host, port: port, group: group)
        defer { Task { await session.close() } }
        for _ in 0..<max(1, attempts) {
            let t1 = systemTime()
            let request = request(now: t1, version: version)
            let answer = try await session.request(session.channel.allocator.buffer(bytes: request.encode()), timeout: .nanoseconds(Int64(timeout * 1e9)))
            let t4 = systemTime()
            guard let answer else { continue }
            return try measure(reply: Array(answer.readableBytesView), request: request, sent: t1, received: t4)
        }
        throw NTPClientError("no answer from \(host):\(port) within \(timeout) s")
    }
}

extension NTPMeasurement {
    /// The server's time as `2026-12-03 13:50:01.123456 UTC`.
    public var serverTimeText: String { NTPClient.utc(serverTime) }

    /// The leap indicator as sntp words it.
    public var leapText: String {
        switch reply.leap {
        case .none: "no-leap"
        case .insertSecond: "add-leap"
        case .deleteSecond: "del-leap"
        case .unsynchronized: "unsynchronized"
        }
    }
}

extension NTPClient {
    /// A Unix time as `YYYY-MM-DD HH:MM:SS.ffffff UTC`.
    public static func utc(_ time: Double) -> String {
        let whole = time.rounded(.down)
        guard whole.isFinite, abs(whole) < 1e15 else { return "?" }
        var seconds = time_t(whole)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        let micros = Int32(min(999_999, max(0, ((time - whole) * 1e6).rounded(.down))))
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2)) "
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(micros, 6)) UTC"
    }
}
