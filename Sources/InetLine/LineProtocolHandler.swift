import InetCore
import Logging
import NIOCore
import NIOSSL

/// What a line-protocol session (SMTP, POP3) asks its connection to do, in order.
public enum LineAction {
    /// Queue a reply; `text` carries its own CRLFs.
    case reply(String)
    /// Queue raw bytes (a message being retrieved).
    case write(ByteBuffer)
    /// Flush and continue once everything queued so far has reached the socket (backpressure
    /// for long retrievals).
    case flushAndWait
    /// Stop reading commands until the future gives the next actions (a Maildir write on the
    /// thread pool, a delay after a wrong password). Input meanwhile stays buffered, so
    /// pipelined commands are answered in order.
    case wait(EventLoopFuture<[LineAction]>.Isolated)
    /// Flush, drop whatever the client sent after the command (RFC 3207 5, RFC 2595 4), and
    /// start the TLS handshake as the server.
    case startTLS
    /// Flush and close.
    case close
}

/// How a received line ended.
public enum LineEnding {
    case crlf
    /// A bare LF (accepted and normalised, as Postfix does by default).
    case lf
}

/// One connection's protocol state; used only on the connection's event loop.
public protocol LineSession: AnyObject {
    /// The greeting and anything else to do when the connection opens.
    func start(context: LineSessionContext) -> [LineAction]
    /// One line without its ending.
    func receive(line: ByteBuffer, ending: LineEnding) -> [LineAction]
    /// A line longer than `maximumLineLength` arrived; its bytes were discarded.
    func lineTooLong() -> [LineAction]
    /// The longest line, without the ending, that `receive` takes in the current state.
    var maximumLineLength: Int { get }
    /// How long the client may stay silent in the current state, and the reply then.
    var timeout: (seconds: Double, reply: String) { get }
    /// The connection is gone (clean up locks and half-written files).
    func closed()
    /// A complete line that arrived while the session waits on a step (a file transfer):
    /// actions to take now (FTP's ABOR and STAT), or nil to leave it for after the step.
    func receiveWhileBusy(line: ByteBuffer) -> [LineAction]?
}

extension LineSession {
    public func receiveWhileBusy(line: ByteBuffer) -> [LineAction]? { nil }
}

/// What the session may know of its connection.
public struct LineSessionContext {
    public var eventLoop: any EventLoop
    public var peer: SocketAddress?
    public var local: SocketAddress?

    public init(eventLoop: any EventLoop, peer: SocketAddress?, local: SocketAddress?) {
        self.eventLoop = eventLoop
        self.peer = peer
        self.local = local
    }
}

/// Drives a `LineSession` on a TCP connection: splits input into lines (bounded), answers each
/// line before looking at the next (so pipelined commands are answered in order and an
/// asynchronous step such as a durable delivery finishes before anything after it), holds
/// reads while the session waits and the buffer is full, enforces the session's timeouts, and
/// inserts TLS in front of itself for STARTTLS/STLS.
public final class LineProtocolHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private let session: any LineSession
    private let tls: NIOSSLContext?
    private let logger: Logger
    /// Bytes buffered beyond the line being read before reads pause (while the session waits).
    private let maximumBuffered: Int

    private var buffer: ByteBuffer?
    /// Where to look for the next LF (bytes before it were already searched).
    private var scanned = 0
    /// Inside an over-long line: its bytes are dropped up to the next LF.
    private var discarding = false
    private var pending: [LineAction] = []
    private var pendingIndex = 0
    private var waiting = false
    private var readHeld = false
    private var closing = false
    private var lastActivity = NIODeadline.now()
    private var timer: Scheduled<Void>?
    private var context: ChannelHandlerContext?

    public init(session: any LineSession, tls: NIOSSLContext?, logger: Logger, maximumBuffered: Int = 256 * 1024) {
        self.session = session
        self.tls = tls
        self.logger = logger
        self.maximumBuffered = maximumBuffered
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { begin(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        begin(context: context)
        context.fireChannelActive()
    }

    private var begun = false

    private func begin(context: ChannelHandlerContext) {
        guard !begun else { return }
        begun = true
        let sessionContext = LineSessionContext(
            eventLoop: context.eventLoop, peer: context.channel.remoteAddress, local: context.channel.localAddress)
        enqueue(session.start(context: sessionContext))
        armTimer(context: context)
        drive(context: context)
        context.flush()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        lastActivity = .now()
        if closing { return }
        if buffer == nil || buffer!.readableBytes == 0 {
            buffer = incoming
            scanned = 0
        } else {
            // Keep only the unfinished line before appending, so the buffer never grows with
            // bytes already answered.
            if buffer!.readerIndex > 0 { buffer!.discardReadBytes() }
            buffer!.writeBuffer(&incoming)
        }
        drive(context: context)
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        context.fireChannelReadComplete()
    }

    public func read(context: ChannelHandlerContext) {
        if waiting, (buffer?.readableBytes ?? 0) > maximumBuffered {
            readHeld = true
            return
        }
        context.read()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // The client is done sending; finish what it asked for, then close.
            enqueue([.close])
            drive(context: context)
            return
        }
        if let notice = event as? ConnectionIdleNotice {
            // The session's own timeouts (command, data, autologout) govern this connection.
            notice.handledByService = true
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        closing = true
        timer?.cancel()
        session.closed()
        context.fireChannelInactive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        self.context = nil
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error", metadata: ["error": "\(error)"])
        closing = true
        context.close(promise: nil)
    }

    // MARK: - The loop

    private func enqueue(_ actions: [LineAction]) {
        if pendingIndex == pending.count {
            pending = actions
            pendingIndex = 0
        } else {
            pending.append(contentsOf: actions)
        }
    }

    private var driving = false

    private func drive(context: ChannelHandlerContext) {
        driving = true
        defer { driving = false }
        while !waiting, !closing {
            if pendingIndex < pending.count {
                let action = pending[pendingIndex]
                pendingIndex += 1
                perform(action, context: context)
                continue
            }
            guard let actions = nextLine() else { break }
            enqueue(actions)
        }
        if pendingIndex == pending.count, !pending.isEmpty {
            pending.removeAll(keepingCapacity: true)
            pendingIndex = 0
        }
        while waiting, !closing, let actions = busyLine() {
            for action in actions { perform(action, context: context) }
            context.flush()
        }
        if !waiting, readHeld {
            readHeld = false
            context.read()
        }
    }

    /// While the session waits: offers the next complete line to `receiveWhileBusy`, and
    /// consumes it only if the session takes it.
    private func busyLine() -> [LineAction]? {
        guard let bytes = buffer, bytes.readableBytes > 0, !discarding,
              let newline = bytes.readableBytesView.firstIndex(of: 0x0A) else { return nil }
        var line = bytes.getSlice(at: bytes.readerIndex, length: newline - bytes.readerIndex)!
        if line.readableBytes > 0, line.getInteger(at: line.writerIndex - 1, as: UInt8.self) == 0x0D {
            line.moveWriterIndex(to: line.writerIndex - 1)
        }
        guard line.readableBytes <= session.maximumLineLength else { return nil }
        // Consumed before the session sees it: what it does (closing a data connection) may
        // finish the step at once and re-enter this handler.
        let readerIndex = bytes.readerIndex
        buffer!.moveReaderIndex(to: newline + 1)
        scanned = 0
        guard let actions = session.receiveWhileBusy(line: line) else {
            buffer!.moveReaderIndex(to: readerIndex)
            return nil
        }
        return actions
    }

    /// The session's actions for the next complete line in the buffer, or nil when none is.
    private func nextLine() -> [LineAction]? {
        guard var bytes = buffer, bytes.readableBytes > 0 else { return nil }
        let view = bytes.readableBytesView
        let start = view.startIndex + scanned
        guard let newline = view[start...].firstIndex(of: 0x0A) else {
            let limit = session.maximumLineLength + 1
            if bytes.readableBytes > limit {
                // Too long already: drop what is buffered and the rest of the line when it comes.
                discarding = true
                buffer!.moveReaderIndex(forwardBy: bytes.readableBytes)
                scanned = 0
            } else {
                scanned = bytes.readableBytes
            }
            return nil
        }
        let length = newline - view.startIndex
        var line = bytes.readSlice(length: length)!
        bytes.moveReaderIndex(forwardBy: 1)
        buffer = bytes
        scanned = 0
        var ending = LineEnding.lf
        if line.readableBytes > 0, line.getInteger(at: line.writerIndex - 1, as: UInt8.self) == 0x0D {
            line.moveWriterIndex(to: line.writerIndex - 1)
            ending = .crlf
        }
        if discarding {
            discarding = false
            return session.lineTooLong()
        }
        if line.readableBytes > session.maximumLineLength {
            return session.lineTooLong()
        }
        return session.receive(line: line, ending: ending)
    }

    private func perform(_ action: LineAction, context: ChannelHandlerContext) {
        switch action {
        case .reply(let text):
            var out = context.channel.allocator.buffer(capacity: text.utf8.count)
            out.writeString(text)
            context.write(wrapOutboundOut(out), promise: nil)
        case .write(let bytes):
            context.write(wrapOutboundOut(bytes), promise: nil)
        case .flushAndWait:
            waiting = true
            let promise = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: promise)
            promise.futureResult.assumeIsolated().whenComplete { result in
                self.resume(with: result.isFailure ? [.close] : [])
            }
        case .wait(let future):
            waiting = true
            context.flush()
            future.whenComplete { result in
                switch result {
                case .success(let actions): self.resume(with: actions)
                case .failure(let error):
                    self.logger.error("session step failed", metadata: ["error": "\(error)"])
                    self.resume(with: [.close])
                }
            }
        case .startTLS:
            guard let tls else { return }
            context.flush()
            // RFC 3207 5: anything pipelined after STARTTLS is discarded, never read as TLS data.
            buffer = nil
            scanned = 0
            discarding = false
            do {
                try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls), position: .before(self))
            } catch {
                closing = true
                context.close(promise: nil)
            }
        case .close:
            closing = true
            timer?.cancel()
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }

    private func resume(with actions: [LineAction]) {
        guard let context, !closing else { return }
        if driving {
            // Completed from inside `drive` (a step finished synchronously): continue afterwards.
            context.eventLoop.assumeIsolated().execute { self.resume(with: actions) }
            return
        }
        waiting = false
        lastActivity = .now()
        // The actions of the finished step run before whatever was queued behind it.
        let rest = Array(pending[pendingIndex...])
        pending = actions + rest
        pendingIndex = 0
        drive(context: context)
        context.flush()
    }

    // MARK: - Timeouts

    private func armTimer(context: ChannelHandlerContext) {
        let seconds = session.timeout.seconds
        let due = lastActivity + .nanoseconds(Int64(seconds * 1e9))
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: due) {
            self.timerFired()
        }
    }

    private func timerFired() {
        guard let context, !closing else { return }
        let (seconds, reply) = session.timeout
        if waiting || NIODeadline.now() < lastActivity + .nanoseconds(Int64(seconds * 1e9)) {
            armTimer(context: context)
            return
        }
        logger.debug("session timeout", metadata: ["seconds": "\(seconds)"])
        pending = [.reply(reply), .close]
        pendingIndex = 0
        waiting = false
        drive(context: context)
    }
}

extension Result {
    public var isFailure: Bool {
        if case .failure = self { return true }
        return false
    }
}

/// A session's error replies, counted: past `limit` the error reply is followed by `closing`
/// and the connection ends (SMTP's 421, POP3's -ERR, FTP's 421).
public struct LineErrorBudget {
    public let limit: Int
    public let closing: String
    public private(set) var count = 0

    public init(limit: Int, closing: String) {
        self.limit = limit
        self.closing = closing
    }

    /// Counts one error; true once the limit is reached.
    public mutating func spend() -> Bool {
        count += 1
        return count >= limit
    }

    /// The reply `text` (without CRLF), counted; with the closing line and a close at the limit.
    public mutating func fail(_ text: String) -> [LineAction] {
        spend() ? [.reply(text + "\r\n"), .reply(closing + "\r\n"), .close] : [.reply(text + "\r\n")]
    }
}
