#if DEBUG
import InetCore
import NIOCore
@testable import InetNTP
@testable import InetWho

enum TimeWhoTargets {
    static let ntpService = NTPService(kissRate: 1_000_000, kernelState: {
        HostClock.KernelState(synchronized: true, leap: .none, estimatedError: 0.001, maximumError: 0.01)
    })
    static let peer = try! SocketAddress(ipAddress: "192.0.2.1", port: 123)

    /// One datagram to the NTP service, answered normally and as a rate-limited source: an
    /// answer is 48 bytes, no larger than the datagram, in server mode, echoing the client's
    /// transmit time; control and private modes get none.
    static let ntp = FuzzTarget(name: "ntp-reply", summary: "a datagram to the NTP service (and its Kiss-o'-Death)", maximumLength: 2048) { bytes in
        if let packet = NTPPacket.decode(bytes), packet.encode() != Array(bytes.prefix(48)) {
            return "decode → encode changed the header"
        }
        let allocator = ByteBufferAllocator()
        let payload = allocator.buffer(bytes: bytes)
        guard NTPPacket.decode(payload) == NTPPacket.decode(bytes) else { return "reading in place differs from reading a copy" }
        for kiss in [false, true] {
            let reply = kiss ? ntpService.replyWhenRateLimited(toDatagram: payload, from: peer, first: true, allocator: allocator)
                : ntpService.reply(toDatagram: payload, allocator: allocator)
            guard let reply else { continue }
            let answer = Array(reply.readableBytesView)
            guard answer.count == 48, answer.count <= bytes.count else { return "a reply of \(answer.count) bytes to \(bytes.count)" }
            guard bytes[0] & 7 == 3 else { return "answered mode \(bytes[0] & 7)" }
            guard answer[0] & 7 == 4, Array(answer[24..<32]) == Array(bytes[40..<48]) else { return "not a server reply echoing the origin" }
            guard kiss == (answer[1] == 0) else { return "kiss and stratum disagree" }
        }
        return nil
    }

    static let directory = FingerDirectory(users: [
        .init(name: "alice", realName: "Alice Liddell", plan: "Down the rabbit hole.\nThen \u{1b}[2Jtea."),
        .init(name: "bob", realName: "Bob"),
    ], lineWidth: 80, planLines: 5)

    /// A finger query: whatever it is, the answer is printable text in lines of at most 80.
    static let finger = FuzzTarget(name: "finger-query", summary: "a finger query line and its answer", maximumLength: 4096) { bytes in
        let answer = directory.answer(FingerQuery.parse(bytes))
        guard answer.hasSuffix("\r\n") else { return "the answer does not end in CRLF" }
        for line in answer.utf8.split(separator: 0x0a) {
            let body = line.last == 0x0d ? line.dropLast() : line[...]
            guard body.count <= 80 else { return "a line of \(body.count) characters" }
            guard body.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) else { return "a control character in the answer" }
        }
        return nil
    }

    /// An ident query line (the first byte 0) or a socket table as /proc shows it (1): the
    /// reply is one short printable line; the table's rows hold 4- or 16-byte addresses.
    static let ident = FuzzTarget(name: "ident-query", summary: "an ident query, and the kernel socket table parser", maximumLength: 16_384) { bytes in
        var input = FuzzInput(bytes)
        let table = input.bool()
        let rest = input.rest()
        if table {
            for row in SocketTable.parse(Substring(String(decoding: rest, as: UTF8.self))) {
                for end in [row.local, row.remote] {
                    guard end.address.count == 4 || end.address.count == 16, (0...65_535).contains(end.port) else { return "a bad endpoint \(end)" }
                }
            }
            return nil
        }
        let reply: String
        switch IdentQuery.parse(rest) {
        case .success(let query):
            guard (1...65_535).contains(query.serverPort), (1...65_535).contains(query.clientPort) else { return "ports out of range" }
            reply = IdentQuery.reply(query, .error(.noUser))
        case .failure(.invalidPort(let a, let b)): reply = IdentQuery.reply(ports: "\(a) , \(b)", .error(.invalidPort))
        case .failure(.malformed): reply = IdentQuery.reply(ports: "0 , 0", .error(.unknownError))
        }
        guard reply.utf8.count <= 64, reply.utf8.dropLast(2).allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) else { return "reply \(reply.debugDescription)" }
        return nil
    }
}
#endif
