import InetCore
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Judges the answers of daytime, qotd and time (and UDP replies) and turns them into the
/// text the client prints.
enum ReplyCheck {
    static func answer(_ kind: SimpleKind, _ buffer: ByteBuffer) throws -> String {
        switch kind {
        case .time:
            guard buffer.readableBytes == 4, let value = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else {
                throw SimpleClientError(description: "wrong reply: time answer must be 4 bytes, got \(buffer.readableBytes)")
            }
            let now = Int(time(nil))
            let seconds = TimeService.decode(value, near: now)
            let offset = seconds - now
            return "\(Self.utc(seconds)) (\(offset >= 0 ? "+" : "")\(offset) s from this clock)"
        case .daytime:
            let text = String(decoding: buffer.readableBytesView, as: UTF8.self)
            let line = text.trimmingLineEnds
            guard !line.isEmpty else { throw SimpleClientError(description: "wrong reply: empty daytime answer") }
            return line
        case .qotd:
            let text = String(decoding: buffer.readableBytesView, as: UTF8.self)
            guard buffer.readableBytes <= QotdService.maximumLength else {
                throw SimpleClientError(description: "wrong reply: quote is \(buffer.readableBytes) bytes, RFC 865 allows 512")
            }
            let quote = text.trimmingLineEnds
            guard !quote.isEmpty else { throw SimpleClientError(description: "wrong reply: empty quote") }
            return quote.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }).map { $0.trimming(" \r") }.joined(separator: " / ")
        case .chargen, .echo, .discard:
            return "\(buffer.readableBytes) bytes"
        }
    }

    static func datagram(_ request: SimpleRequest, sent: ByteBuffer, reply: ByteBuffer) throws -> String {
        switch request.kind {
        case .echo:
            guard reply == sent else {
                throw SimpleClientError(description: "wrong reply: echoed datagram differs (\(reply.readableBytes) bytes back for \(sent.readableBytes))")
            }
            return "\(reply.readableBytes) bytes echoed"
        case .chargen:
            guard reply.readableBytes <= 512, reply.readableBytesView.allSatisfy({ (32...126).contains($0) || $0 == 13 || $0 == 10 }) else {
                throw SimpleClientError(description: "wrong reply: chargen datagram must be 0-512 printable characters")
            }
            return "\(reply.readableBytes) characters"
        case .daytime, .qotd, .time, .discard:
            return try answer(request.kind, reply)
        }
    }

    static func utc(_ seconds: Int) -> String {
        var value = time_t(seconds)
        var parts = tm()
        gmtime_r(&value, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) UTC"
    }
}

extension StringProtocol {
    var trimmingLineEnds: String {
        var slice = Substring(self)
        while let last = slice.last, last == "\n" || last == "\r" || last == "\r\n" || last == " " { slice = slice.dropLast() }
        return String(slice)
    }
}
