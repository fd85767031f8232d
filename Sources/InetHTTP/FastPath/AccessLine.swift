import InetCore
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

/// The access log line of a request the fast handler answered, built straight into bytes from
/// the request's own bytes: the same line `AccessLog` writes (Combined Log Format as the
/// message, then duration_ms, peer, service and status, in the host's text or JSON format),
/// with the times worked out once a second. One per event loop (`FastAnswers`).
final class AccessLine {
    private var line: [UInt8] = []
    private var second = -1
    /// `2026-12-07T07:00:00.` (the log's time, without milliseconds and `Z`).
    private var isoPrefix: [UInt8] = []
    /// `07/Dec/2026:07:00:00 +0000`.
    private var clfTime: [UInt8] = []

    /// The process's own field as the text and JSON formats end a line with it.
    private let processText: [UInt8]
    private let processJSON: [UInt8]

    init() {
        line.reserveCapacity(512)
        if let (key, value) = LogLine.processField {
            let plain = value.utf8.allSatisfy { $0 != 0x20 && $0 != 0x22 && $0 != 0x3D } && !value.isEmpty
            processText = Array(" \(key)=\(plain ? value : JSON.quote(value))".utf8)
            processJSON = Array(",\"\(key)\":\(JSON.quote(value))".utf8)
        } else {
            processText = []
            processJSON = []
        }
    }

    /// A connection's peer as the line shows it: its IP address, and `ip:port`.
    struct Peer {
        var ip: [UInt8]
        var address: [UInt8]

        init(_ peer: SocketAddress?) {
            guard let peer, let ip = peer.ipAddress, let port = peer.port else {
                self.ip = Array("-".utf8)
                address = Array("-".utf8)
                return
            }
            self.ip = Array(ip.utf8)
            address = Array((ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)").utf8)
        }
    }

    func write(peer: Peer, isHead: Bool, target: UnsafeRawBufferPointer, http10: Bool, status: Int, bytes sent: Int,
               referer: UnsafeRawBufferPointer?, agent: UnsafeRawBufferPointer?, started: NIODeadline, secure: Bool = false,
               to sink: LogSink = .standardError) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        refresh(Int(now.tv_sec))
        let json = LogLine.format == .json
        line.removeAll(keepingCapacity: true)
        if json { line.append(contentsOf: #"{"time":""#.utf8) }
        line.append(contentsOf: isoPrefix)
        let millis = Int(now.tv_nsec) / 1_000_000
        line.append(UInt8(ascii: "0") + UInt8(millis / 100))
        line.append(UInt8(ascii: "0") + UInt8(millis / 10 % 10))
        line.append(UInt8(ascii: "0") + UInt8(millis % 10))
        line.append(UInt8(ascii: "Z"))
        line.append(contentsOf: json ? #"","level":"info","msg":""#.utf8 : " INFO ".utf8)
        // 127.0.0.1 - - [07/Dec/2026:07:00:00 +0000] "GET / HTTP/1.1" 200 512 "-" "curl/8"
        // (the message: in JSON its quotes and the cleaner's backslashes are escaped again)
        let quote: [UInt8] = json ? [0x5C, 0x22] : [0x22]
        line.append(contentsOf: peer.ip)
        line.append(contentsOf: " - - [".utf8)
        line.append(contentsOf: clfTime)
        line.append(contentsOf: "] ".utf8)
        line.append(contentsOf: quote)
        line.append(contentsOf: (isHead ? "HEAD " : "GET ").utf8)
        clean(target, json: json)
        line.append(contentsOf: (http10 ? " HTTP/1.0" : " HTTP/1.1").utf8)
        line.append(contentsOf: quote)
        line.append(0x20)
        decimal(status)
        line.append(0x20)
        decimal(sent)
        line.append(0x20)
        line.append(contentsOf: quote)
        if let referer { clean(referer, json: json) } else { line.append(UInt8(ascii: "-")) }
        line.append(contentsOf: quote)
        line.append(0x20)
        line.append(contentsOf: quote)
        if let agent { clean(agent, json: json) } else { line.append(UInt8(ascii: "-")) }
        line.append(contentsOf: quote)
        let duration = LogLine.milliseconds(since: started)
        if json {
            line.append(contentsOf: #"","duration_ms":""#.utf8)
            line.append(contentsOf: duration.utf8)
            line.append(contentsOf: #"","peer":""#.utf8)
            line.append(contentsOf: peer.address)
            line.append(contentsOf: (secure ? #"","service":"https","status":"# : #"","service":"http","status":"#).utf8)
            decimal(status)
            line.append(contentsOf: processJSON)
            line.append(contentsOf: "}\n".utf8)
        } else {
            line.append(contentsOf: " duration_ms=".utf8)
            line.append(contentsOf: duration.utf8)
            line.append(contentsOf: " peer=".utf8)
            line.append(contentsOf: peer.address)
            line.append(contentsOf: (secure ? " service=https status=" : " service=http status=").utf8)
            decimal(status)
            line.append(contentsOf: processText)
            line.append(0x0A)
        }
        line.withUnsafeBytes { sink.append($0) }
    }

    private func refresh(_ seconds: Int) {
        guard seconds != second else { return }
        second = seconds
        let iso = InetLogHandler.timestamp(seconds: seconds)
        isoPrefix = Array(iso.utf8.dropLast(4))  // "000Z"
        clfTime = Array(AccessLog.clfTime(seconds).utf8)
    }

    private func decimal(_ value: Int) {
        guard value > 0 else {
            line.append(UInt8(ascii: "0"))
            return
        }
        var divisor = 1
        while divisor <= value / 10 { divisor *= 10 }
        while divisor > 0 {
            line.append(UInt8(ascii: "0") + UInt8(value / divisor % 10))
            divisor /= 10
        }
    }

    /// A request field as `AccessLog.clean` writes it: quotes, backslashes, control and
    /// non-ASCII bytes as `\xHH` (so a line cannot be forged), the backslash doubled in JSON.
    private func clean(_ bytes: UnsafeRawBufferPointer, json: Bool) {
        for byte in bytes {
            if byte >= 0x20, byte < 0x7F, byte != 0x22, byte != 0x5C {
                line.append(byte)
                continue
            }
            if json { line.append(0x5C) }
            line.append(0x5C)
            line.append(UInt8(ascii: "x"))
            let digits = Array(String(byte, radix: 16, uppercase: true).utf8)
            line.append(contentsOf: digits)
        }
    }
}
