import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

public struct QueryClientError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The client side of finger and ident: connect, send one query line, read the answer until
/// the server closes (at most `limit` bytes), within `timeout` seconds in all.
public enum QueryClient {
    public static func ask(host: String, port: Int, query: String, timeout: Double, limit: Int = 1 << 20,
                           group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> [UInt8] {
        let collector = Collector(limit: limit)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(.nanoseconds(Int64(timeout * 1e9)))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(CollectHandler(collector)) }
                }
                .connect(host: host, port: port).get()
        } catch {
            let failure = QueryClientError("cannot connect to \(host):\(port): \(error)")
            collector.finish(.failure(failure))  // (a promise must not die unfulfilled)
            throw failure
        }
        let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout * 1e9))) {
            collector.finish(.failure(QueryClientError("no complete answer from \(host):\(port) within \(timeout) s")))
            channel.close(promise: nil)
        }
        defer { timer.cancel() }
        try await channel.writeAndFlush(channel.allocator.buffer(string: query + "\r\n"))
        return try await collector.result.get()
    }

    final class Collector: Sendable {
        let limit: Int
        private let state = NIOLockedValueBox<(bytes: [UInt8], done: Bool)>(([], false))
        private let promise: EventLoopPromise<[UInt8]>
        var result: EventLoopFuture<[UInt8]> { promise.futureResult }

        init(limit: Int) {
            self.limit = limit
            promise = MultiThreadedEventLoopGroup.singleton.any().makePromise()
        }

        /// Adds bytes; false once the limit is reached.
        func add(_ buffer: ByteBuffer) -> Bool {
            state.withLockedValue { state in
                state.bytes += buffer.readableBytesView.prefix(max(0, limit - state.bytes.count))
                return state.bytes.count < limit
            }
        }

        func finish(_ outcome: Result<[UInt8], any Error>? = nil) {
            let bytes: [UInt8]? = state.withLockedValue { state in
                guard !state.done else { return nil }
                state.done = true
                return state.bytes
            }
            guard let bytes else { return }
            switch outcome {
            case .failure(let error)?: promise.fail(error)
            default: promise.succeed(bytes)
            }
        }
    }

    final class CollectHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let collector: Collector

        init(_ collector: Collector) {
            self.collector = collector
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if !collector.add(unwrapInboundIn(data)) {
                collector.finish()
                context.close(promise: nil)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            collector.finish()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            collector.finish(.failure(error))
            context.close(promise: nil)
        }
    }
}
