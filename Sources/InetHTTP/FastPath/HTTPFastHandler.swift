import InetCore
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

/// The first HTTP handler of a plain connection: answers the requests a static site is made of
/// (GET and HEAD of a file, `If-None-Match` included) straight from the bytes the socket
/// brought, with response heads worked out once a second per path (`FastAnswers`) and one
/// write per batch of pipelined responses. It decides nothing the full server would decide
/// differently: the first request it does not take (`HTTPHeadScanner.Result.notFast`, or a
/// path without a fast answer) and everything after it go, byte for byte, to the full pipeline
/// behind it (llhttp, the front handler, Hummingbird), which then owns the connection.
///
/// It reads no more than it can answer: while the channel is not writable it stops parsing
/// and holds further reads, so a pipelining client that never reads its responses costs one
/// socket buffer. A client has `header_timeout` to send each head (slowloris), timed from
/// when the previous response was handed to the socket.
final class HTTPFastHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    /// Responses up to this size are built in one buffer with their head.
    static let inlineBodyLimit = 16 << 10
    /// Pending response bytes written out before more requests are parsed.
    static let batchLimit = 64 << 10

    private let maximumTarget: Int
    private let maximumHead: Int
    private let headerTimeout: TimeAmount
    private let accessLog: AccessLog
    /// Whether requests are logged (log_level info or lower), looked up once.
    private let logsRequests: Bool
    private let answersByLoop: FastAnswersByLoop
    private weak var front: HTTP1FrontHandler?
    /// Under TLS (NIOSSL takes bytes, not file regions): files not in the cache go to the full
    /// pipeline, which streams them in chunks.
    private let secure: Bool

    private var answers: FastAnswers?
    private var events: ConnectionEvents?
    /// The client as the access log shows it (worked out for the first line).
    private var peer: AccessLine.Peer?
    private var passthrough = false
    private var input: ByteBuffer?
    /// Parsing stopped because the channel was not writable: reads wait too.
    private var blocked = false
    private var readHeld = false
    private var processing = false
    private var closing = false
    private var needsFlush = false
    private var output: ByteBuffer?
    /// When the connection began to wait for a request head (nil: a head is being answered).
    private var waitingSince: NIODeadline?
    private var timer: Scheduled<Void>?
    /// File responses (sendfile) not yet written: the next head is timed from their end.
    private var filesInFlight = 0

    init(settings: HTTPSettings, accessLog: AccessLog, answers: FastAnswersByLoop, front: HTTP1FrontHandler, secure: Bool = false) {
        self.secure = secure
        maximumTarget = settings.maxURIBytes
        maximumHead = settings.maxHeaderBytes
        headerTimeout = .seconds(clamping: settings.headerTimeout)
        self.accessLog = accessLog
        logsRequests = accessLog.logger.logLevel <= .info
        answersByLoop = answers
        self.front = front
    }

    func handlerAdded(context: ChannelHandlerContext) {
        answers = answersByLoop.answers(on: context.eventLoop)
        events = ConnectionEvents.of(context.channel)
        startWaiting(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    // MARK: - Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !passthrough else {
            context.fireChannelRead(data)
            return
        }
        guard !closing else { return }
        var incoming = unwrapInboundIn(data)
        if input == nil {
            input = incoming
        } else {
            input!.discardReadBytes()
            input!.writeBuffer(&incoming)
        }
        process(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded(context: context)
        if passthrough { context.fireChannelReadComplete() }
    }

    func read(context: ChannelHandlerContext) {
        if blocked {
            readHeld = true
            return
        }
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if !passthrough, blocked, context.channel.isWritable {
            blocked = false
            process(context: context)
            flushIfNeeded(context: context)
            if !blocked, readHeld {
                readHeld = false
                context.read()
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if !passthrough, let event = event as? ChannelEvent, event == .inputClosed {
            // The client sent all it will send: answer what is complete, then close.
            closeAfterWrites(context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Answers every complete head in `input` while the channel can take the responses.
    private func process(context: ChannelHandlerContext) {
        guard !processing, let answers else { return }
        processing = true
        defer { processing = false }
        requests: while !passthrough, !closing, var buffer = input, buffer.readableBytes > 0 {
            guard context.channel.isWritable else {
                blocked = true
                break
            }
            let now = NIODeadline.now()
            let outcome = buffer.withUnsafeReadableBytes { bytes -> Outcome in
                switch HTTPHeadScanner.scan(bytes, maximumTarget: maximumTarget, maximumHead: maximumHead) {
                case .incomplete: return .wait
                case .notFast: return .handOver
                case .complete(let head):
                    guard let answer = answers.answer(path: UnsafeRawBufferPointer(rebasing: bytes[head.path]), now: Int(time(nil))) else { return .handOver }
                    return respond(head, answer, bytes: bytes, started: now, context: context) ? .answered(head) : .handOver
                }
            }
            switch outcome {
            case .wait:
                if waitingSince == nil { startWaiting(context: context) }
                break requests
            case .handOver:
                handOver(context: context)
                return
            case .answered(let head):
                buffer.moveReaderIndex(forwardBy: head.length)
                input = buffer.readableBytes > 0 ? buffer : nil
                if !head.keepAlive {
                    input = nil
                    closeAfterWrites(context: context)
                }
            }
        }
        guard !passthrough else { return }
        writeOutput(context: context)
        if input == nil, !closing, filesInFlight == 0, waitingSince == nil { startWaiting(context: context) }
    }

    private enum Outcome {
        case wait, handOver, answered(HTTPHeadScanner.Head)
    }

    // MARK: - Answering

    /// Writes the answer to `head`; false when it cannot be given here after all (a file that
    /// became unreadable: the full server says why).
    private func respond(_ head: HTTPHeadScanner.Head, _ answer: FastAnswer, bytes: UnsafeRawBufferPointer, started: NIODeadline, context: ChannelHandlerContext) -> Bool {
        waitingSince = nil
        let notModified = head.ifNoneMatch.map { answer.matches(ifNoneMatch: UnsafeRawBufferPointer(rebasing: bytes[$0])) } ?? false
        let bodyBytes = head.isHead || notModified ? 0 : answer.size
        var file: NIOFileHandle?
        if bodyBytes > 0, case .file(let path, _) = answer.body {
            guard !secure, let handle = try? NIOFileHandle(_deprecatedPath: path) else { return false }
            file = handle
        }
        let statusHead = notModified ? answer.notModifiedHead : answer.okHead
        let date = answers!.date(now: Int(time(nil)))
        let connection: StaticString? = !head.keepAlive ? "Connection: close\r\n" : (head.http10 ? "Connection: keep-alive\r\n" : nil)
        let inline: ByteBuffer? = {
            guard bodyBytes > 0, case .cached(let body) = answer.body, body.readableBytes <= Self.inlineBodyLimit else { return nil }
            return body
        }()
        let headBytes = statusHead.count + date.count + (connection?.utf8CodeUnitCount ?? 0) + 2
        var out = output ?? context.channel.allocator.buffer(capacity: max(headBytes + (inline?.readableBytes ?? 0), 1024))
        out.writeBytes(statusHead)
        out.writeBytes(date)
        if let connection { out.writeStaticString(connection) }
        out.writeStaticString("\r\n")
        if var body = inline {
            out.writeBuffer(&body)
            output = out
        } else if bodyBytes > 0, case .cached(let body) = answer.body {
            output = nil
            context.write(wrapOutboundOut(.byteBuffer(out)), promise: nil)
            context.write(wrapOutboundOut(.byteBuffer(body)), promise: nil)
        } else if let file {
            output = nil
            context.write(wrapOutboundOut(.byteBuffer(out)), promise: nil)
            let written = context.eventLoop.makePromise(of: Void.self)
            filesInFlight += 1
            context.write(wrapOutboundOut(.fileRegion(FileRegion(fileHandle: file, readerIndex: 0, endIndex: bodyBytes))), promise: written)
            written.futureResult.assumeIsolated().whenComplete { _ in
                try? file.close()
                self.filesInFlight -= 1
                if self.filesInFlight == 0, self.input == nil, self.waitingSince == nil, !self.closing, !self.passthrough {
                    self.startWaiting(context: context)
                }
            }
        } else {
            output = out
        }
        needsFlush = true
        if (output?.readableBytes ?? 0) >= Self.batchLimit { writeOutput(context: context) }
        record(head, status: notModified ? 304 : 200, bytes: bodyBytes, in: bytes, started: started, context: context)
        return true
    }

    /// The request's `http.request` event and access log line.
    private func record(_ head: HTTPHeadScanner.Head, status: Int, bytes sent: Int, in bytes: UnsafeRawBufferPointer, started: NIODeadline, context: ChannelHandlerContext) {
        func slice(_ range: Range<Int>) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: bytes[range]) }
        func text(_ range: Range<Int>?) -> String? { range.map { String(decoding: slice($0), as: UTF8.self) } }
        let target = slice(head.target)
        // A `token=` in a query (the dashboard's) is never recorded as sent.
        let masked = Self.contains(target, "token=") ? AccessLog.masked(text(head.target)!) : nil
        if let events {
            let nanoseconds = (NIODeadline.now() - started).nanoseconds
            events.emit("http.request") { body in
                body.string("method", head.isHead ? "HEAD" : "GET")
                if let masked { body.string("target", masked) } else { body.text("target", raw: target) }
                body.string("version", head.http10 ? "HTTP/1.0" : "HTTP/1.1")
                body.int("status", status)
                body.int("bytes_out", sent)
                body.milliseconds("duration_ms", nanoseconds: nanoseconds)
                if let host = head.host { body.text("host", raw: slice(host)) }
                if let agent = head.userAgent { body.text("user_agent", raw: slice(agent)) }
                if let referer = head.referer { body.text("referer", raw: slice(referer)) }
            }
        }
        if logsRequests, let answers {
            if peer == nil { peer = AccessLine.Peer(context.channel.remoteAddress) }
            func write(_ target: UnsafeRawBufferPointer) {
                answers.accessLine.write(peer: peer!, isHead: head.isHead, target: target, http10: head.http10, status: status, bytes: sent,
                                         referer: head.referer.map(slice), agent: head.userAgent.map(slice), started: started, secure: secure)
            }
            if let masked {
                Array(masked.utf8).withUnsafeBytes { write($0) }
            } else {
                write(target)
            }
        }
    }

    /// Whether `bytes` hold `needle` (a short ASCII literal).
    static func contains(_ bytes: UnsafeRawBufferPointer, _ needle: StaticString) -> Bool {
        let count = needle.utf8CodeUnitCount
        guard bytes.count >= count else { return false }
        let first = needle.utf8Start[0]
        var index = 0
        while index <= bytes.count - count {
            if bytes[index] == first, memcmp(bytes.baseAddress! + index, needle.utf8Start, count) == 0 { return true }
            index += 1
        }
        return false
    }

    private func writeOutput(context: ChannelHandlerContext) {
        guard let out = output else { return }
        output = nil
        context.write(wrapOutboundOut(.byteBuffer(out)), promise: nil)
        needsFlush = true
    }

    private func flushIfNeeded(context: ChannelHandlerContext) {
        writeOutput(context: context)
        if needsFlush {
            needsFlush = false
            context.flush()
        }
    }

    /// Closes once what was written has reached the socket.
    private func closeAfterWrites(context: ChannelHandlerContext) {
        guard !closing else { return }
        closing = true
        timer?.cancel()
        timer = nil
        writeOutput(context: context)
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(context.channel.allocator.buffer(capacity: 0))), promise: done)
        needsFlush = false
        done.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    // MARK: - Handing over

    /// From here on the full pipeline reads this connection: what is buffered goes to it first.
    private func handOver(context: ChannelHandlerContext) {
        passthrough = true
        timer?.cancel()
        timer = nil
        waitingSince = nil
        writeOutput(context: context)
        front?.takeOver()
        let rest = input
        input = nil
        if blocked {
            blocked = false
        }
        if let rest { context.fireChannelRead(wrapInboundOut(rest)) }
        context.fireChannelReadComplete()
        if readHeld {
            readHeld = false
            context.read()
        }
    }

    // MARK: - Header timeout

    private func startWaiting(context: ChannelHandlerContext) {
        // The loop's own clock (an EmbeddedEventLoop's is virtual).
        waitingSince = context.eventLoop.now
        guard timer == nil else { return }
        schedule(at: waitingSince! + headerTimeout, context: context)
    }

    private func schedule(at deadline: NIODeadline, context: ChannelHandlerContext) {
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.timer = nil
            guard !self.passthrough, !self.closing, let since = self.waitingSince else { return }
            let due = since + self.headerTimeout
            if context.eventLoop.now >= due {
                context.close(promise: nil)
            } else {
                self.schedule(at: due, context: context)
            }
        }
    }
}
