import InetCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// A client's failure, with what the server said when it refused.
public struct LineClientError: Error, CustomStringConvertible, Sendable {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// The client side of a line protocol over TCP: read CRLF lines, send commands, with a
/// deadline on every read and an optional trace of the dialogue.
public final class LineConnection {
    private var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private var buffer = ByteBuffer()
    private let timeout: Double
    private let timedOut: NIOLockedValueBox<Bool>
    private let trace: (@Sendable (String) -> Void)?
    /// This end's address (FTP's active mode listens on it).
    public let localAddress: SocketAddress?
    /// Longest line accepted from the server.
    static let maximumLine = 64 * 1024

    public init(inbound: NIOAsyncChannelInboundStream<ByteBuffer>, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
         timeout: Double, timedOut: NIOLockedValueBox<Bool>, trace: (@Sendable (String) -> Void)?, localAddress: SocketAddress? = nil) {
        self.localAddress = localAddress
        self.timedOut = timedOut
        self.inbound = inbound.makeAsyncIterator()
        self.outbound = outbound
        self.timeout = timeout
        self.trace = trace
    }

    /// Connects to `host:port` and runs `body` on the connection, closing it afterwards; with
    /// `tls`, TLS from the first byte (SMTPS, POP3S, FTPS).
    public static func withConnection<Result: Sendable>(
        host: String, port: Int, timeout: Double = 30, trace: (@Sendable (String) -> Void)? = nil, tls: NIOSSLContext? = nil,
        _ body: (LineConnection) async throws -> Result
    ) async throws -> Result {
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        let timedOut = NIOLockedValueBox(false)
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(clamping: timeout))
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls {
                            let name = (try? SocketAddress(ipAddress: host, port: 0)) == nil ? host : nil
                            try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: name))
                        }
                        try channel.pipeline.syncOperations.addHandlers([
                            IdleStateHandler(allTimeout: .seconds(clamping: timeout)),
                            IdleCloseHandler(timedOut: timedOut),
                        ])
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw LineClientError("cannot connect to \(host):\(port): \(error)")
        }
        return try await channel.executeThenClose { inbound, outbound in
            let connection = LineConnection(inbound: inbound, outbound: outbound, timeout: timeout, timedOut: timedOut, trace: trace,
                                            localAddress: channel.channel.localAddress)
            return try await body(connection)
        }
    }

    /// The next line without its CRLF (a bare LF is accepted too).
    public func readLine() async throws -> String {
        let line = try await readRawLine()
        let text = String(decoding: line, as: UTF8.self)
        trace?("S: \(text)")
        return text
    }

    /// The next line's bytes, without the line end and without tracing.
    public func readRawLine() async throws -> [UInt8] {
        while true {
            if let newline = buffer.readableBytesView.firstIndex(of: 0x0A) {
                var bytes = buffer.readBytes(length: newline - buffer.readerIndex)!
                buffer.moveReaderIndex(forwardBy: 1)
                if bytes.last == 0x0D { bytes.removeLast() }
                return bytes
            }
            guard buffer.readableBytes <= Self.maximumLine else { throw LineClientError("the server sent a line longer than 64 KiB") }
            guard var more = try await nextChunk() else { throw LineClientError("the server closed the connection") }
            buffer.discardReadBytes()
            buffer.writeBuffer(&more)
        }
    }

    private func nextChunk() async throws -> ByteBuffer? {
        if let chunk = try await inbound.next() { return chunk }
        if timedOut.withLockedValue({ $0 }) { throw LineClientError("no answer from the server within \(timeout) s") }
        return nil
    }

    /// Sends one command line (CRLF appended).
    public func send(_ line: String, traced shown: String? = nil) async throws {
        trace?("C: \(shown ?? line)")
        var bytes = ByteBuffer()
        bytes.writeString(line)
        bytes.writeStaticString("\r\n")
        try await outbound.write(bytes)
    }

    /// Sends raw bytes (message content), untraced.
    public func sendRaw(_ bytes: ByteBuffer) async throws {
        try await outbound.write(bytes)
    }
}

/// Closes a client connection on which nothing moved for the timeout, and says so.
final class IdleCloseHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let timedOut: NIOLockedValueBox<Bool>

    init(timedOut: NIOLockedValueBox<Bool>) {
        self.timedOut = timedOut
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            timedOut.withLockedValue { $0 = true }
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
