import InetTLS
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import InetCore
import NIOCore
import NIOPosix
import NIOSSL

/// Why a transfer did not complete.
struct FTPTransferError: Error {
    var reply: String
}

/// A passive-mode listener: accepts the first data connection from the control connection's
/// client address; connections from anywhere else are closed (no third-party data).
final class PassiveListener {
    let channel: any Channel
    let port: Int
    let accepted: EventLoopPromise<any Channel>

    init(channel: any Channel, port: Int, accepted: EventLoopPromise<any Channel>) {
        self.channel = channel
        self.port = port
        self.accepted = accepted
    }

    /// Binds on `host`, on a port of `ports` (any free port when nil).
    static func open(on loop: any EventLoop, host: String, ports: ClosedRange<Int>?, client: String, tls: NIOSSLContext?,
                     stallTimeout: Double) -> EventLoopFuture<PassiveListener> {
        let accepted = loop.makePromise(of: (any Channel).self)
        let delivered = NIOLoopBoundBox(false, eventLoop: loop)
        let bootstrap = ServerBootstrap(group: loop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 4)
            .childChannelOption(.autoRead, value: false)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.socketOption(.so_sndbuf), value: FTPData.sendBuffer)
            .childChannelInitializer { child in
                // Only the control connection's client may connect (RFC 2577 5, like vsftpd's
                // pasv_promiscuous=NO), and only once.
                guard child.remoteAddress?.ipAddress == client, !delivered.value else { return child.close() }
                delivered.value = true
                do {
                    try child.pipeline.syncOperations.addHandlers(FTPData.stallGuard(stallTimeout))
                } catch {
                    return child.close()
                }
                if let tls {
                    do {
                        try child.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    } catch {
                        return child.close()
                    }
                }
                // Handed over once active (registered with the loop), not while being set up.
                return loop.makeCompletedFuture { try child.pipeline.syncOperations.addHandler(ActiveNotifier(accepted)) }
            }
        var candidates: [Int] = [0]
        if let ports {
            let start = Int.random(in: ports)
            candidates = Array(start...ports.upperBound) + Array(ports.lowerBound..<start)
        }
        func attempt(_ index: Int) -> EventLoopFuture<PassiveListener> {
            bootstrap.bind(host: host, port: candidates[index]).map { channel in
                PassiveListener(channel: channel, port: channel.localAddress?.port ?? 0, accepted: accepted)
            }.flatMapError { error in
                index + 1 < candidates.count && index < 200 ? attempt(index + 1) : loop.makeFailedFuture(error)
            }
        }
        return attempt(0)
    }

    func close() {
        channel.close(promise: nil)
        accepted.fail(ChannelError.ioOnClosedChannel)
    }
}

/// Succeeds a promise with the channel once it is active.
final class ActiveNotifier: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let promise: EventLoopPromise<any Channel>

    init(_ promise: EventLoopPromise<any Channel>) {
        self.promise = promise
    }

    private var done = false

    func channelActive(context: ChannelHandlerContext) {
        deliver(context.channel)
        context.fireChannelActive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { deliver(context.channel) }
    }

    private func deliver(_ channel: any Channel) {
        guard !done else { return }
        done = true
        promise.succeed(channel)
    }
}

/// Closes a data connection on which nothing moved for data_timeout (a client that stops
/// reading a download or sending an upload); the transfer then ends with 426.
final class StallCloser: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

enum FTPData {
    /// A large send buffer: sendfile moves more per wake-up on a fast link.
    static let sendBuffer = 4 << 20
    static func stallGuard(_ seconds: Double) -> [any ChannelHandler] {
        [IdleStateHandler(allTimeout: .seconds(clamping: seconds)), StallCloser()]
    }

    /// Connects to the client for PORT/EPRT.
    static func connect(on loop: any EventLoop, to address: SocketAddress, timeout: Double, tls: NIOSSLContext?) -> EventLoopFuture<any Channel> {
        ClientBootstrap(group: loop)
            .channelOption(.autoRead, value: false)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_sndbuf), value: FTPData.sendBuffer)
            .connectTimeout(.seconds(clamping: timeout))
            .channelInitializer { channel in
                loop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(FTPData.stallGuard(timeout))
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                }
            }
            .connect(to: address)
    }

    /// Sends bytes and closes.
    static func send(_ bytes: ByteBuffer, on channel: any Channel) -> EventLoopFuture<Int> {
        let count = bytes.readableBytes
        // Reading lets a TLS handshake proceed and notices a client that goes away.
        channel.setOption(.autoRead, value: true).whenComplete { _ in }
        return channel.writeAndFlush(bytes).flatMap { channel.close() }.map { count }
            .flatMapErrorThrowing { _ in throw FTPTransferError(reply: "426 Connection closed; transfer aborted.") }
    }

    /// Sends a file from `offset` with sendfile (binary mode, no TLS), then closes.
    static func sendFile(_ path: String, offset: Int, on channel: any Channel) -> EventLoopFuture<Int> {
        let loop = channel.eventLoop
        let handle: NIOFileHandle
        var info = stat()
        do {
            handle = try NIOFileHandle(_deprecatedPath: path)
            guard fstat(try handle.withUnsafeFileDescriptor { $0 }, &info) == 0 else { throw FTPTransferError(reply: "451 Cannot read the file.") }
        } catch {
            return loop.makeFailedFuture(FTPTransferError(reply: "451 Cannot read the file."))
        }
        let size = Int(info.st_size)
        guard offset < size else {
            try? handle.close()
            return channel.close().map { 0 }.recover { _ in 0 }
        }
        channel.setOption(.autoRead, value: true).whenComplete { _ in }
        let region = FileRegion(fileHandle: handle, readerIndex: offset, endIndex: size)
        return channel.writeAndFlush(IOData.fileRegion(region)).flatMap { channel.close() }.always { _ in try? handle.close() }
            .map { size - offset }
            .flatMapErrorThrowing { _ in throw FTPTransferError(reply: "426 Connection closed; transfer aborted.") }
    }

    /// Sends a file chunk by chunk (ASCII mode, or over TLS): read off the event loop, each chunk
    /// written once the previous one reached the socket.
    static func sendChunks(_ path: String, offset: Int, ascii: Bool, on channel: any Channel) -> EventLoopFuture<Int> {
        let loop = channel.eventLoop
        channel.setOption(.autoRead, value: true).whenComplete { _ in }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return loop.makeFailedFuture(FTPTransferError(reply: "451 Cannot read the file.")) }
        if offset > 0 { lseek(fd, off_t(offset), SEEK_SET) }
        let total = NIOLoopBoundBox(0, eventLoop: loop)
        func next() -> EventLoopFuture<Int> {
            NIOThreadPool.singleton.runIfActive(eventLoop: loop) { () throws -> ByteBuffer? in
                var buffer = ByteBufferAllocator().buffer(capacity: 256 * 1024)
                var failure: Int32 = 0
                let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 256 * 1024) { raw in
                    while true {
                        let result = read(fd, raw.baseAddress, 256 * 1024)
                        if result >= 0 { return result }
                        if errno == EINTR { continue }
                        failure = errno
                        return 0
                    }
                }
                // A read error is not the end of the file: the transfer failed (451), and the
                // client must not take a short file for a whole one.
                if failure != 0 {
                    throw FTPTransferError(reply: "451 Cannot read the file (\(String(cString: strerror(failure)))).")
                }
                guard count > 0 else { return nil }
                guard ascii else { return buffer }
                var converted = ByteBuffer()
                converted.reserveCapacity(count + count / 16)
                for byte in buffer.readableBytesView {
                    if byte == 0x0A { converted.writeInteger(UInt8(0x0D)) }
                    converted.writeInteger(byte)
                }
                return converted
            }.flatMap { chunk in
                guard let chunk else { return channel.close().map { total.value } }
                total.value += chunk.readableBytes
                return channel.writeAndFlush(chunk).flatMap { next() }
            }
        }
        return next().always { _ in close(fd) }
            .flatMapErrorThrowing { error in
                if error is FTPTransferError { throw error }
                throw FTPTransferError(reply: "426 Connection closed; transfer aborted.")
            }
    }

    /// Receives into `fd` until the client closes the data connection; the count and the
    /// SHA-256 of what was written (as stored: after ASCII conversion).
    static func receive(into fd: Int32, ascii: Bool, on channel: any Channel) -> EventLoopFuture<(bytes: Int, sha256: String)> {
        let promise = channel.eventLoop.makePromise(of: Int.self)
        let digest = SHA256Digest()
        do {
            try channel.pipeline.syncOperations.addHandler(UploadHandler(fd: fd, ascii: ascii, promise: promise, digest: digest))
        } catch {
            promise.fail(FTPTransferError(reply: "426 Connection closed; transfer aborted."))
        }
        return promise.futureResult.map { ($0, digest.finish()) }
    }
}

/// Writes what arrives on a data connection to a file off the event loop, reading the next
/// chunk only once the previous one is written (backpressure; memory stays bounded).
final class UploadHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    let fd: Int32
    let ascii: Bool
    let promise: EventLoopPromise<Int>
    let digest: SHA256Digest
    private var writing = false
    private var ended = false
    private var finished = false
    private var total = 0
    private var pendingCR = false

    init(fd: Int32, ascii: Bool, promise: EventLoopPromise<Int>, digest: SHA256Digest = SHA256Digest()) {
        self.digest = digest
        self.fd = fd
        self.ascii = ascii
        self.promise = promise
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { context.read() }
    }

    func channelActive(context: ChannelHandlerContext) {
        context.read()
        context.fireChannelActive()
    }

    /// Data read while a write is in flight: one read() can deliver several chunks, and writes
    /// to the file must stay in order, so they go one at a time.
    private var queued: ByteBuffer?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if ascii { bytes = convert(bytes) }
        total += bytes.readableBytes
        if writing {
            if queued == nil { queued = bytes } else { queued!.writeBuffer(&bytes) }
            return
        }
        write(bytes, context: context)
    }

    private func write(_ bytes: ByteBuffer, context: ChannelHandlerContext) {
        writing = true
        let fd = self.fd
        let digest = digest
        NIOThreadPool.singleton.runIfActive(eventLoop: context.eventLoop) { () throws -> Bool in
            try bytes.withUnsafeReadableBytes { raw in
                digest.update(raw)
                var offset = 0
                while offset < raw.count {
                    let written = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        throw FTPTransferError(reply: "452 Cannot write the file (\(String(cString: strerror(errno)))).")
                    }
                    offset += written
                }
            }
            return true
        }.assumeIsolated().whenComplete { result in
            self.writing = false
            switch result {
            case .success:
                if let next = self.queued {
                    self.queued = nil
                    self.write(next, context: context)
                } else if self.ended {
                    self.finish()
                } else {
                    context.read()
                }
            case .failure(let error):
                self.fail(error)
                context.close(promise: nil)
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // A read that brought no data for us (TLS handshake records): ask for more.
        if !writing, !ended { context.read() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        ended = true
        if !writing, queued == nil { finish() }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A TLS close without close_notify, or a reset: the upload is incomplete.
        fail(FTPTransferError(reply: "426 Connection closed; transfer aborted."))
        context.close(promise: nil)
    }

    private func finish() {
        guard !finished else { return }
        finished = true
        if pendingCR {
            var cr: UInt8 = 0x0D
            _ = Glibc.write(fd, &cr, 1)
            withUnsafeBytes(of: &cr) { digest.update($0) }
        }
        promise.succeed(total)
    }

    private func fail(_ error: any Error) {
        guard !finished else { return }
        finished = true
        promise.fail(error)
    }

    /// CRLF to LF (ASCII type), across chunk boundaries.
    private func convert(_ input: ByteBuffer) -> ByteBuffer {
        var out = ByteBuffer()
        out.reserveCapacity(input.readableBytes + 1)
        for byte in input.readableBytesView {
            if pendingCR {
                pendingCR = false
                if byte != 0x0A { out.writeInteger(UInt8(0x0D)) }
            }
            if byte == 0x0D {
                pendingCR = true
            } else {
                out.writeInteger(byte)
            }
        }
        return out
    }
}
