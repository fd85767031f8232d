import Hummingbird
import InetCore
import HummingbirdCore
import HTTPTypes
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// What the HTTP/1 head said that swift-http-types drops: the version and whether the
/// connection stays open after the response.
struct RequestLine: Sendable {
    var version: HTTPVersion
    var keepAlive: Bool
}

/// Sits between NIO's HTTP/1 decoder and the HTTP-types codec: remembers each request's
/// version and keep-alive (in order, for pipelined requests), and closes a connection whose
/// client takes longer than `header_timeout` to send a request head (slowloris).
final class RequestLineRecorder: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    let lines: NIOLockedValueBox<[RequestLine]>
    private let headerTimeout: TimeAmount
    private var timer: Scheduled<Void>?

    init(lines: NIOLockedValueBox<[RequestLine]>, headerTimeout: TimeAmount) {
        self.lines = lines
        self.headerTimeout = headerTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        arm(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            timer?.cancel()
            timer = nil
            let line = RequestLine(version: head.version, keepAlive: head.isKeepAlive)
            lines.withLockedValue { $0.append(line) }
        case .body:
            break
        case .end:
            arm(context: context)
        }
        context.fireChannelRead(data)
    }

    private func arm(context: ChannelHandlerContext) {
        timer?.cancel()
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: headerTimeout) {
            bound.value.close(promise: nil)
        }
    }
}

/// One HTTP/1.x connection: reads requests in order (pipelining), answers each through the
/// router, writes the access log line, keeps the connection open as HTTP/1.1 and 1.0 say.
struct HTTPConnection: Sendable {
    let settings: HTTPSettings
    let responder: @Sendable (Request, any Channel) async -> Response
    let accessLog: AccessLog

    func setup(_ channel: any Channel, logger: Logger) -> EventLoopFuture<ConnectionTask> {
        channel.eventLoop.makeCompletedFuture {
            var limits = NIOHTTPDecoderLimitConfiguration()
            limits.maxHeaderListSize = settings.maxHeaderBytes
            limits.maxHeaderFieldSize = settings.maxHeaderBytes
            let sync = channel.pipeline.syncOperations
            try sync.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withErrorHandling: false,
                withOutboundHeaderValidation: false, withEncoderConfiguration: .init(),
                withDecoderLimitConfiguration: limits)
            let lines = NIOLockedValueBox<[RequestLine]>([])
            try sync.addHandler(RequestLineRecorder(lines: lines, headerTimeout: .nanoseconds(Int64(settings.headerTimeout * 1e9))))
            try sync.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            let async = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
            return ConnectionTask { await serve(async, lines: lines, logger: logger) }
        }
    }

    private func serve(_ connection: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, lines: NIOLockedValueBox<[RequestLine]>, logger: Logger) async {
        let channel = connection.channel
        let peer = channel.remoteAddress
        do {
            try await connection.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                let writer = outbound
                do {
                    while let part = try await iterator.next() {
                        guard case .head(let head) = part else { continue }
                        let line = lines.withLockedValue { $0.isEmpty ? RequestLine(version: .http1_1, keepAlive: true) : $0.removeFirst() }
                        // Read (and bound) the body before answering: static files take none.
                        var bodyBytes = 0
                        var tooLarge = false
                        body: while let next = try await iterator.next() {
                            switch next {
                            case .body(let buffer):
                                bodyBytes += buffer.readableBytes
                                if bodyBytes > settings.maxBodyBytes { tooLarge = true; break body }
                            case .end: break body
                            case .head: break body
                            }
                        }
                        let started = NIODeadline.now()
                        var response: Response
                        if tooLarge || (head.headerFields[.contentLength].flatMap(Int.init) ?? 0) > settings.maxBodyBytes {
                            response = HTTPErrors.page(.contentTooLarge, "The request body is larger than \(settings.maxBodyBytes) bytes.")
                            tooLarge = true
                        } else if (head.path ?? "").utf8.count > settings.maxURIBytes {
                            response = HTTPErrors.page(.uriTooLong, "The request target is longer than \(settings.maxURIBytes) bytes.")
                        } else {
                            response = await responder(Request(head: head, body: RequestBody(buffer: ByteBuffer())), channel)
                        }
                        let keepAlive = line.keepAlive && !tooLarge && head.headerFields[.connection]?.lowercased() != "close"
                        if !keepAlive { response.headers[.connection] = "close" } else if line.version == .http1_0 { response.headers[.connection] = "keep-alive" }
                        let sent = response.headers[.contentLength].flatMap(Int.init) ?? 0
                        try await ResponseWriter(outbound: writer).write(response)
                        accessLog.record(peer: peer, head: head, version: line.version, status: response.status.code,
                                         bytes: head.method == .head ? 0 : sent, started: started)
                        if !keepAlive { break }
                    }
                } catch let error as HTTPParserError {
                    // A malformed request: answer once, then close (the parser cannot resync).
                    let response: Response
                    switch error {
                    case .headerOverflow: response = HTTPErrors.page(.requestHeaderFieldsTooLarge, "The request head is larger than \(settings.maxHeaderBytes) bytes.")
                    default: response = HTTPErrors.page(.badRequest, "Malformed request: \(error).")
                    }
                    var closing = response
                    closing.headers[.connection] = "close"
                    try? await ResponseWriter(outbound: writer).write(closing)
                    accessLog.recordMalformed(peer: peer, status: response.status.code)
                }
                outbound.finish()
                try? await channel.closeFuture.get()
            }
        } catch {
            logger.trace("http connection ended", metadata: ["error": "\(error)"])
        }
    }
}

extension ResponseWriter {
    /// Writes a whole response (head and body).
    consuming func write(_ response: Response) async throws {
        try await self.write(response: response.head, body: response.body)
    }
}
