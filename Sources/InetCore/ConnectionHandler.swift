#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore

/// Sits first in every TCP connection's pipeline: counts bytes both ways, closes the connection
/// when the idle timer fires, and writes the connection's one log line when it ends.
final class ConnectionAccountingHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private let counters: ServiceCounters
    private let logger: Logger
    private let peer: String
    private let started = NIODeadline.now()
    private var bytesIn = 0
    /// Bytes in not yet added to the shared counters.
    private var unreportedIn = 0
    /// Bytes handed to the socket (counted so far).
    private var bytesOut = 0
    /// Bytes written to the channel (some may still wait in it).
    private var queuedOut = 0
    private var outcome: String?
    private var failed = false

    private let onActive: @Sendable () -> Void
    private let events: ConnectionEvents?

    init(counters: ServiceCounters, logger: Logger, peer: String, events: ConnectionEvents? = nil, onActive: @escaping @Sendable () -> Void = {}) {
        self.counters = counters
        self.logger = logger
        self.peer = peer
        self.events = events
        self.onActive = onActive
    }

    func channelActive(context: ChannelHandlerContext) {
        onActive()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let count = unwrapInboundIn(data).readableBytes
        bytesIn += count
        unreportedIn += count
        // (A client that speaks again has mostly read what it was sent.)
        if queuedOut > bytesOut { noteWritten(context: context) }
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // The shared counters (every worker's, in shared memory) once per batch of reads.
        if unreportedIn > 0 {
            counters.bytesIn.bump(unreportedIn)
            unreportedIn = 0
        }
        context.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .byteBuffer(let buffer): queuedOut += buffer.readableBytes
        case .fileRegion(let region): queuedOut += region.readableBytes
        }
        context.write(data, promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        context.flush()
        noteWritten(context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        noteWritten(context: context)
        context.fireChannelWritabilityChanged()
    }

    /// Bytes out are counted when they reach the socket, not when queued (a client that goes
    /// away leaves queued bytes unsent, and the log must not claim them): what was queued less
    /// what the channel still buffers, looked at after each flush, when the socket drains, and
    /// before the connection closes (without a promise and a callback per write).
    private func noteWritten(context: ChannelHandlerContext) {
        let buffered = (try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
        let written = queuedOut - buffered
        guard written > bytesOut else { return }
        counters.bytesOut.bump(written - bytesOut)
        bytesOut = written
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            noteWritten(context: context)
            let notice = ConnectionIdleNotice()
            context.fireUserInboundEventTriggered(notice)
            if notice.handledByService { return }
            outcome = outcome ?? "idle timeout"
            failed = true
            context.close(promise: nil)
            return
        }
        if let event = event as? ChannelEvent, event == .inputClosed {
            noteWritten(context: context)
            outcome = outcome ?? "closed by peer"
        }
        context.fireUserInboundEventTriggered(event)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        noteWritten(context: context)
        outcome = outcome ?? "closed by server"
        context.close(mode: mode, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        noteWritten(context: context)
        if outcome == nil {
            if let error = error as? IOError, error.errnoCode == ECONNRESET || error.errnoCode == EPIPE {
                // The client closed without a goodbye (curl over HTTP/2 does, after its last
                // stream): not the server's error.
                outcome = "reset by peer"
            } else {
                outcome = "error: \(error)"
                failed = true
            }
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if unreportedIn > 0 {
            counters.bytesIn.bump(unreportedIn)
            unreportedIn = 0
        }
        counters.activeConnections.bump(-1)
        if failed { counters.errors.bump(1) }
        if logger.logLevel <= .info {
            var line = LogLine(level: .info, message: "connection")
            line.field("bytes_in", bytesIn)
            line.field("bytes_out", bytesOut)
            line.field("duration_ms", millisecondsSince: started)
            line.field("outcome", outcome ?? "closed by peer")
            line.field("peer", peer)
            line.field("service", counters.service)
            line.field("transport", "tcp")
            line.write()
        }
        if let events {
            let nanoseconds = (NIODeadline.now() - started).nanoseconds
            let (bytesIn, bytesOut, outcome) = (bytesIn, bytesOut, outcome ?? "closed by peer")
            events.emit("connection.close") { body in
                body.milliseconds("duration_ms", nanoseconds: nanoseconds)
                body.int("bytes_in", bytesIn)
                body.int("bytes_out", bytesOut)
                body.string("outcome", outcome)
            }
        }
        context.fireChannelInactive()
    }

    static func milliseconds(since start: NIODeadline) -> String {
        LogLine.milliseconds(since: start)
    }
}

/// Sent down a connection's pipeline when its `idle_timeout` passes. A service that times its
/// sessions itself (SMTP's command and data timeouts, POP3's autologout timer) sets
/// `handledByService`, and the host then leaves the connection to it.
public final class ConnectionIdleNotice {
    public var handledByService = false

    public init() {}
}

/// Installed instead of the service when `max_connections` is reached: the connection is
/// closed as soon as it is active, so the client sees an immediate end, never a hang.
final class RefuseConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    func channelActive(context: ChannelHandlerContext) {
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

extension SocketAddress {
    /// `ip:port` with brackets for IPv6; for logs.
    public var logDescription: String {
        guard let ip = ipAddress, let port else { return "\(self)" }
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}
