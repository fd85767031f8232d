import InetCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One request of the simple-services client: what to send and how long to wait.
public struct SimpleRequest: Sendable {
    public var kind: SimpleKind
    public var transport: Transport
    /// Echo and discard: the bytes to send (`--message` or `--bytes`).
    public var payload: Payload
    /// Chargen over TCP: how many bytes to read before closing.
    public var chargenBytes: Int
    /// Seconds for the whole exchange, connection included.
    public var timeout: Double

    public init(kind: SimpleKind, transport: Transport, payload: Payload = .message("hello from inetkit\r\n"), chargenBytes: Int = 7_400, timeout: Double = 5) {
        self.kind = kind
        self.transport = transport
        self.payload = payload
        self.chargenBytes = chargenBytes
        self.timeout = timeout
    }

    /// What echo and discard send.
    public enum Payload: Sendable {
        /// These exact bytes.
        case message(String)
        /// This many bytes of the chargen pattern (streamed; never held whole in memory).
        case pattern(Int)

        var count: Int {
            switch self {
            case .message(let text): text.utf8.count
            case .pattern(let count): count
            }
        }
    }
}

/// The outcome of one exchange.
public struct SimpleResult: Sendable {
    public var target: Target
    public var transport: Transport
    public var kind: SimpleKind
    public var ok: Bool
    /// What came back (the time, the quote, "N bytes echoed") or why it failed
    /// (refused, timed out, wrong reply: ...).
    public var detail: String
    public var bytesSent: Int
    public var bytesReceived: Int
    /// Seconds from the start of the exchange to its end.
    public var roundTrip: Double
}

/// Why an exchange failed, in the words the client prints.
public struct SimpleClientError: Error, CustomStringConvertible, Sendable {
    public var description: String

    static func describe(_ error: any Error) -> String {
        if let error = error as? SimpleClientError { return error.description }
        if let io = error as? IOError {
            switch io.errnoCode {
            case ECONNREFUSED: return "refused"
            case ECONNRESET: return "reset by server"
            case ETIMEDOUT: return "timed out"
            case EHOSTUNREACH, ENETUNREACH: return "unreachable"
            default: return String(cString: strerror(io.errnoCode))
            }
        }
        if let error = error as? ChannelError {
            switch error {
            case .connectTimeout: return "timed out (connect)"
            case .eof, .ioOnClosedChannel, .alreadyClosed, .outputClosed: return "closed by server"
            default: return "\(error)"
            }
        }
        if let error = error as? NIOConnectionError {
            if let first = error.connectionErrors.first { return describe(first.error) }
            if let dns = error.dnsAAAAError ?? error.dnsAError { return "cannot resolve host: \(dns)" }
            return "cannot connect"
        }
        if error is SocketAddressError { return "cannot resolve host" }
        return "\(error)"
    }
}

/// Talks to echo, discard, daytime, qotd, chargen and time servers over TCP and UDP.
public struct SimpleClient: Sendable {
    public let group: any EventLoopGroup

    public init(group: any EventLoopGroup) {
        self.group = group
    }

    /// Runs `count` requests to every target with `concurrency` exchanges at once; calls
    /// `onResult` as each finishes (from any task). Returns every result.
    public func run(
        _ request: SimpleRequest, targets: [Target], count: Int, concurrency: Int,
        onResult: @escaping @Sendable (SimpleResult) -> Void = { _ in }
    ) async -> [SimpleResult] {
        let jobs = targets.flatMap { target in Array(repeating: target, count: count) }
        let next = NIOLockedValueBox(0)
        let results = NIOLockedValueBox<[SimpleResult]>([])
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<max(1, min(concurrency, jobs.count)) {
                group.addTask {
                    var udp: UDPSession?
                    var udpTarget: Target?
                    while true {
                        let index = next.withLockedValue { value -> Int in
                            defer { value += 1 }
                            return value
                        }
                        guard index < jobs.count else { break }
                        let result: SimpleResult
                        if request.transport == .udp {
                            // One socket per worker and target, reused while it behaves.
                            if udpTarget != jobs[index] {
                                await udp?.close()
                                udp = nil
                                udpTarget = jobs[index]
                            }
                            result = await exchangeUDP(request, session: &udp, target: jobs[index])
                        } else {
                            result = await exchangeTCP(request, target: jobs[index])
                        }
                        results.withLockedValue { $0.append(result) }
                        onResult(result)
                    }
                    await udp?.close()
                }
            }
        }
        return results.withLockedValue { $0 }
    }

    /// One exchange.
    public func exchange(_ request: SimpleRequest, target: Target) async -> SimpleResult {
        if request.transport == .tcp { return await exchangeTCP(request, target: target) }
        var session: UDPSession?
        let result = await exchangeUDP(request, session: &session, target: target)
        await session?.close()
        return result
    }

    // MARK: - TCP

    private func exchangeTCP(_ request: SimpleRequest, target: Target) async -> SimpleResult {
        let started = NIODeadline.now()
        var result = SimpleResult(target: target, transport: .tcp, kind: request.kind, ok: false, detail: "", bytesSent: 0, bytesReceived: 0, roundTrip: 0)
        do {
            let deadline = started + .seconds(clamping: request.timeout)
            let channel = try await ClientBootstrap(group: group)
                .connectTimeout(.seconds(clamping: request.timeout))
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelOption(.allowRemoteHalfClosure, value: true)
                .connect(host: target.host, port: target.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                            wrappingChannelSynchronously: channel,
                            configuration: .init(isOutboundHalfClosureEnabled: true))
                    }
                }
            let outcome = try await withDeadline(deadline, closing: channel.channel) {
                try await channel.executeThenClose { inbound, outbound in
                    try await TCPExchange.run(request, inbound: inbound, outbound: outbound, allocator: channel.channel.allocator)
                }
            }
            result.ok = true
            result.detail = outcome.detail
            result.bytesSent = outcome.sent
            result.bytesReceived = outcome.received
        } catch {
            result.detail = SimpleClientError.describe(error)
        }
        result.roundTrip = Double((NIODeadline.now() - started).nanoseconds) / 1e9
        return result
    }

    // MARK: - UDP

    private func exchangeUDP(_ request: SimpleRequest, session: inout UDPSession?, target: Target) async -> SimpleResult {
        let started = NIODeadline.now()
        var result = SimpleResult(target: target, transport: .udp, kind: request.kind, ok: false, detail: "", bytesSent: 0, bytesReceived: 0, roundTrip: 0)
        do {
            if session == nil { session = try await UDPSession.open(host: target.host, port: target.port, group: group) }
            let open = session!
            var payload = open.channel.allocator.buffer(capacity: min(request.payload.count, 65_507))
            switch request.kind {
            case .echo, .discard:
                guard request.payload.count <= 65_507 else {
                    throw SimpleClientError(description: "a UDP datagram holds at most 65507 bytes")
                }
                switch request.payload {
                case .message(let text): payload.writeString(text)
                case .pattern(let count): payload.writeBytes(PatternStream.bytes(from: 0, count: count))
                }
            default:
                // Any datagram asks these services for their answer (RFC 865, 867, 868); an
                // empty one will do.
                break
            }
            result.bytesSent = payload.readableBytes
            // Discard sends nothing back: wait a moment only to notice an ICMP "port unreachable".
            let wait = request.kind == .discard ? min(request.timeout, 0.25) : request.timeout
            let reply = try await open.request(payload, timeout: .seconds(clamping: wait))
            if request.kind == .discard {
                if reply != nil { throw SimpleClientError(description: "wrong reply: discard answered") }
                result.ok = true
                result.detail = "sent \(result.bytesSent) bytes (no reply expected)"
            } else {
                guard let reply else { throw SimpleClientError(description: "timed out") }
                result.bytesReceived = reply.readableBytes
                result.detail = try ReplyCheck.datagram(request, sent: payload, reply: reply)
                result.ok = true
            }
        } catch {
            // After a failure the socket may still get a late answer: use a fresh one next time.
            await session?.close()
            session = nil
            result.detail = SimpleClientError.describe(error)
        }
        result.roundTrip = Double((NIODeadline.now() - started).nanoseconds) / 1e9
        return result
    }
}

/// Runs `body` until `deadline`; past it, closes `channel` and fails with "timed out" (or
/// returns nil when `timeoutIsNil`).
func withDeadline<T: Sendable>(
    _ deadline: NIODeadline, closing channel: (any Channel)?, timeoutIsNil: Bool = false,
    _ body: @escaping @Sendable () async throws -> T?
) async throws -> T? {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            let nanos = (deadline - NIODeadline.now()).nanoseconds
            if nanos > 0 { try await Task.sleep(nanoseconds: UInt64(nanos)) }
            if timeoutIsNil { return nil }
            try? await channel?.close()
            throw SimpleClientError(description: "timed out")
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

func withDeadline<T: Sendable>(
    _ deadline: NIODeadline, closing channel: (any Channel)?,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let value: T? = try await withDeadline(deadline, closing: channel, timeoutIsNil: false) { () async throws -> T? in try await body() }
    return value!
}
