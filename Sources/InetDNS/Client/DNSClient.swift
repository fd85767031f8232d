import InetCore
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// Asks name servers: UDP with EDNS (retrying over TCP when the answer is truncated), or TCP
/// with RFC 7766 framing; AXFR over TCP. Answers are decoded with the same codec the server uses.
public struct DNSClient: Sendable {
    public struct Options: Sendable {
        public var tcp = false
        public var recursionDesired = true
        /// EDNS UDP payload size to offer; nil sends no OPT record.
        public var bufferSize: UInt16? = 1232
        public var timeout: Double = 3

        public init() {}
    }

    /// One answer and how it came.
    public struct Reply: Sendable {
        public var message: DNSMessage
        public var transport: Transport
        public var roundTrip: Double
        public var size: Int
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public let group: any EventLoopGroup

    public init(group: any EventLoopGroup) {
        self.group = group
    }

    public func query(_ name: DNSName, _ type: DNSType, host: String, port: Int, options: Options) async throws -> Reply {
        do {
            return try await exchange(name, type, host: host, port: port, options: options)
        } catch let error as IOError where error.errnoCode == ECONNREFUSED {
            throw Failure(description: "refused")
        } catch let error as NIOConnectionError {
            throw Failure(description: error.connectionErrors.isEmpty ? "cannot connect" : "refused")
        }
    }

    private func exchange(_ name: DNSName, _ type: DNSType, host: String, port: Int, options: Options) async throws -> Reply {
        let started = NIODeadline.now()
        var query = DNSMessage(id: UInt16.random(in: 0...UInt16.max), recursionDesired: options.recursionDesired,
                               questions: [DNSQuestion(name: name, type: type)])
        if let size = options.bufferSize { query.edns = EDNS(udpPayloadSize: size) }
        let bytes = try DNSMessageWriter.encode(query)
        if !options.tcp {
            let session = try await UDPSession.open(host: host, port: port, group: group)
            defer { Task { await session.close() } }
            var buffer = session.channel.allocator.buffer(capacity: bytes.count)
            buffer.writeBytes(bytes)
            let deadline = NIODeadline.now() + .seconds(clamping: options.timeout)
            while true {
                let left = deadline - NIODeadline.now()
                guard left > .zero, let reply = try await session.request(buffer, timeout: left) else {
                    throw Failure(description: "timed out")
                }
                let replyBytes = Array(reply.readableBytesView)
                // Replies with another ID are someone else's (or forged): wait for ours.
                guard let message = try? DNSMessageReader.decode(replyBytes), message.id == query.id, message.isResponse else { continue }
                if !message.truncated {
                    return Reply(message: message, transport: .udp, roundTrip: Self.seconds(since: started), size: replyBytes.count)
                }
                break
            }
        }
        let messages = try await tcpExchange(bytes, host: host, port: port, timeout: options.timeout, until: { _ in true })
        guard let first = messages.first else { throw Failure(description: "closed by server") }
        return Reply(message: first.0, transport: .tcp, roundTrip: Self.seconds(since: started), size: first.1)
    }

    /// A zone transfer: every message until the closing SOA.
    public func transfer(_ zone: DNSName, host: String, port: Int, timeout: Double) async throws -> [DNSRecord] {
        let query = DNSMessage(id: UInt16.random(in: 0...UInt16.max), questions: [DNSQuestion(name: zone, type: .axfr)])
        var soaCount = 0
        let messages = try await tcpExchange(try DNSMessageWriter.encode(query), host: host, port: port, timeout: timeout) { message in
            soaCount += message.answers.filter { $0.type == .soa }.count
            return message.rcode != DNSRCode.noError || soaCount >= 2
        }
        if let refused = messages.first(where: { $0.0.rcode != DNSRCode.noError }) {
            throw Failure(description: "transfer refused (\(DNSRCodeName.name(refused.0.rcode)))")
        }
        let records = messages.flatMap(\.0.answers)
        guard soaCount >= 2 else { throw Failure(description: "transfer ended before the closing SOA") }
        return Array(records.dropLast())
    }

    private func tcpExchange(_ bytes: [UInt8], host: String, port: Int, timeout: Double, until done: @escaping (DNSMessage) -> Bool) async throws -> [(DNSMessage, Int)] {
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(.seconds(clamping: timeout))
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        let timer = channel.channel.eventLoop.scheduleTask(in: .seconds(clamping: timeout)) { channel.channel.close(promise: nil) }
        defer { timer.cancel() }
        return try await channel.executeThenClose { inbound, outbound in
            var frame = channel.channel.allocator.buffer(capacity: bytes.count + 2)
            frame.writeInteger(UInt16(bytes.count))
            frame.writeBytes(bytes)
            try await outbound.write(frame)
            var pending = channel.channel.allocator.buffer(capacity: 4096)
            var messages: [(DNSMessage, Int)] = []
            for try await var chunk in inbound {
                pending.writeBuffer(&chunk)
                while let length = pending.getInteger(at: pending.readerIndex, as: UInt16.self), pending.readableBytes >= 2 + Int(length) {
                    pending.moveReaderIndex(forwardBy: 2)
                    let body = pending.readBytes(length: Int(length))!
                    let message = try DNSMessageReader.decode(body)
                    messages.append((message, body.count))
                    if done(message) { return messages }
                }
            }
            throw Failure(description: messages.isEmpty ? "closed by server" : "closed by server mid-transfer")
        }
    }

    static func seconds(since start: NIODeadline) -> Double {
        Double((NIODeadline.now() - start).nanoseconds) / 1e9
    }
}

/// RCODE mnemonics for output.
public enum DNSRCodeName {
    public static func name(_ code: UInt16) -> String {
        staticName(code).map { String(describing: $0) } ?? "RCODE\(code)"
    }

    /// The name of a known rcode as a literal; nil for the others.
    public static func staticName(_ code: UInt16) -> StaticString? {
        switch code {
        case 0: "NOERROR"
        case 1: "FORMERR"
        case 2: "SERVFAIL"
        case 3: "NXDOMAIN"
        case 4: "NOTIMP"
        case 5: "REFUSED"
        case 9: "NOTAUTH"
        case 16: "BADVERS"
        default: nil
        }
    }
}
