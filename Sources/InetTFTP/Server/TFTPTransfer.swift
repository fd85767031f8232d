#if canImport(Glibc)
import Glibc
#endif
// In a release (whole-module) build `stat` resolves through CoreFoundation's view of the C
// headers (InetTLS imports Foundation), whose members MemberImportVisibility hides unless
// CoreFoundation is imported here too.
import CoreFoundation
import InetCore
import InetTLS
import Logging
import NIOCore
import NIOPosix

/// One transfer on a socket of its own (its TID), bound to the address the request came to.
/// Everything runs on the socket's event loop; file work goes to the thread pool.
final class TFTPTransfer: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    static func start(_ request: TFTPRequest, client: SocketAddress, listener: any Channel, settings: TFTPSettings,
                      transfers: TransferCount, logger: Logger) {
        let host = listener.localAddress?.ipAddress ?? (client.protocol == .inet6 ? "::1" : "127.0.0.1")
        let loop = listener.eventLoop
        let events = HostEvents.of(listener)
        let port = listener.localAddress?.port ?? 0
        DatagramBootstrap(group: loop)
            .channelOption(.socketOption(.so_sndbuf), value: 4 << 20)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(TFTPTransfer(request: request, client: client, settings: settings, transfers: transfers, logger: logger,
                                                                                 events: events, port: port))
                }
            }
            .bind(host: host, port: 0)
            .whenFailure { error in
                transfers.close(client)
                logger.warning("cannot open a socket for a transfer", metadata: ["peer": "\(client)", "error": "\(error)"])
            }
    }

    enum Source {
        case file(CInt)
        case memory([UInt8])
    }

    enum Phase {
        case opening
        /// OACK sent; waiting for ACK 0 (a read) or DATA 1 (a write).
        case optionsSent
        case reading(TFTPSendWindow, Source)
        case writing(TFTPReceiveWindow, fd: CInt, temporary: String, final: String)
        /// The last ACK of a write went out; it is sent again if the last DATA comes again.
        case dallying
        case done
    }

    let request: TFTPRequest
    let client: SocketAddress
    let settings: TFTPSettings
    let transfers: TransferCount
    let logger: Logger
    private var phase = Phase.opening
    private var options = TFTPOptions()
    private var context: ChannelHandlerContext?
    private var timer: Scheduled<Void>?
    private var retries = 0
    /// What a timeout sends again when it is not a window (OACK, an ACK).
    private var lastControl: TFTPPacket?
    /// Bumped whenever a window is (re)sent, so a read that finishes late is not sent twice.
    private var generation = 0
    private var bytes = 0
    private var outcome = "incomplete"
    private let started = NIODeadline.now()
    private var pendingWrites: EventLoopFuture<Void>?
    private var clientVerified = false
    /// Where the transfer's `tftp.transfer` event goes, and the port the request came to.
    private let events: HostEvents?
    private let port: Int
    /// The SHA-256 of a completed upload, and where it was stored.
    private var sha256: String?
    private var stored: String?

    init(request: TFTPRequest, client: SocketAddress, settings: TFTPSettings, transfers: TransferCount, logger: Logger,
         events: HostEvents? = nil, port: Int = 0) {
        self.events = events
        self.port = port
        self.request = request
        self.client = client
        self.settings = settings
        self.transfers = transfers
        self.logger = logger
    }

    var name: String { String(decoding: request.file.prefix(200).map { $0 < 0x20 || $0 == 0x7f ? UInt8(ascii: "?") : $0 }, as: UTF8.self) }

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        context.fireChannelActive()
        if request.write { openWrite(context) } else { openRead(context) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        release()
        transfers.close(client)
        let milliseconds = Double((NIODeadline.now() - started).nanoseconds) / 1e6
        logger.info("transfer", metadata: [
            "service": "tftp", "peer": "\(client.ipAddress ?? "?"):\(client.port ?? 0)", "file": "\(name)", "direction": "\(request.write ? "upload" : "download")",
            "bytes": "\(bytes)", "blksize": "\(options.blockSize)", "windowsize": "\(options.windowSize)",
            "duration_ms": "\(Int(milliseconds))", "outcome": "\(outcome)",
        ])
        events?.emit(service: "tftp", kind: "tftp.transfer") { body in
            body.string("transport", "udp")
            body.address("peer", client)
            body.int("port", port)
            body.string("direction", request.write ? "upload" : "download")
            body.string("file", name)
            body.int("bytes", bytes)
            body.string("outcome", outcome)
            body.int("blksize", options.blockSize)
            body.milliseconds("duration_ms", nanoseconds: (NIODeadline.now() - started).nanoseconds)
            if let sha256 { body.string("sha256", sha256) }
            if let stored { body.string("path", stored) }
        }
        context.fireChannelInactive()
    }

    private func release() {
        switch phase {
        case .reading(_, .file(let fd)):
            close(fd)
        case .writing(_, let fd, let temporary, _):
            close(fd)
            unlink(temporary)
        default:
            break
        }
        phase = .done
    }

    // MARK: opening

    private enum Opened {
        case read(Source, size: Int)
        case write(fd: CInt, temporary: String, final: String)
        case refused(TFTPErrorCode, String)
    }

    private func openRead(_ context: ChannelHandlerContext) {
        let settings = self.settings, request = self.request
        let this = NIOLoopBound(self, eventLoop: context.eventLoop)
        NIOThreadPool.singleton.runIfActive(eventLoop: context.eventLoop) { () -> Opened in
            guard let relative = TFTPPath.relative(request.file) else { return .refused(.accessViolation, "access violation: absolute paths and .. are refused") }
            var info = stat()
            guard lstat(settings.root + "/" + relative, &info) == 0 else { return .refused(.fileNotFound, "file not found") }
            guard let real = TFTPPath.contained(relative, in: settings.root) else { return .refused(.accessViolation, "access violation: outside the served folder") }
            let fd = open(real, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return errno == EACCES ? .refused(.accessViolation, "access violation: not readable") : .refused(.fileNotFound, "file not found") }
            guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
                close(fd)
                return .refused(.fileNotFound, "not a file")
            }
            let size = Int(info.st_size)
            guard request.netascii else { return .read(.file(fd), size: size) }
            defer { close(fd) }
            guard size <= settings.maximumNetASCIIBytes else { return .refused(.undefined, "file too large for netascii; ask in octet mode") }
            var data = [UInt8](repeating: 0, count: size)
            let count = data.withUnsafeMutableBytes { pread(fd, $0.baseAddress, size, 0) }
            guard count == size else { return .refused(.undefined, "read error") }
            let converted = NetASCII.encode(data)
            return .read(.memory(converted), size: converted.count)
        }.whenComplete { result in
            switch result {
            case .success(.read(let source, let size)):
                this.value.beginRead(source: source, size: size)
            case .success(.refused(let code, let message)):
                this.value.fail(code, message)
            default:
                this.value.fail(.undefined, "cannot open the file")
            }
        }
    }

    private func openWrite(_ context: ChannelHandlerContext) {
        let settings = self.settings, request = self.request
        let this = NIOLoopBound(self, eventLoop: context.eventLoop)
        guard settings.write else { return fail(.accessViolation, "access violation: uploads are off on this server") }
        let (granted, _) = TFTPOptions.negotiate(request.options, write: true, fileSize: nil, maximumBlockSize: settings.maximumBlockSize, maximumWindowSize: settings.maximumWindowSize)
        if let size = granted.transferSize, size > settings.maximumUploadBytes {
            return fail(.diskFull, "the file is larger than this server accepts (\(settings.maximumUploadBytes) bytes)")
        }
        NIOThreadPool.singleton.runIfActive(eventLoop: context.eventLoop) { () -> Opened in
            guard let relative = TFTPPath.relative(request.file), !relative.contains("/") else {
                return .refused(.accessViolation, "access violation: an upload is a plain file name")
            }
            let final = settings.uploadDirectory + "/" + relative
            var info = stat()
            if lstat(final, &info) == 0 && !settings.overwrite { return .refused(.fileExists, "file already exists") }
            let temporary = settings.uploadDirectory + "/.\(relative).\(UInt32.random(in: 0...UInt32.max)).part"
            let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard fd >= 0 else { return .refused(.accessViolation, "cannot create the file: \(String(cString: strerror(errno)))") }
            return .write(fd: fd, temporary: temporary, final: final)
        }.whenComplete { result in
            switch result {
            case .success(.write(let fd, let temporary, let final)):
                guard case .opening = this.value.phase, this.value.context != nil else {
                    close(fd)
                    unlink(temporary)
                    return
                }
                this.value.beginWrite(fd: fd, temporary: temporary, final: final)
            case .success(.refused(let code, let message)):
                this.value.fail(code, message)
            default:
                this.value.fail(.undefined, "cannot create the file")
            }
        }
    }

    private func beginRead(source: Source, size: Int) {
        guard case .opening = phase, context != nil else {
            if case .file(let fd) = source { close(fd) }
            return
        }
        let (granted, acknowledged) = TFTPOptions.negotiate(request.options, write: false, fileSize: size,
                                                           maximumBlockSize: settings.maximumBlockSize, maximumWindowSize: settings.maximumWindowSize)
        options = granted
        let window = TFTPSendWindow(size: size, blockSize: granted.blockSize, windowSize: granted.windowSize)
        if let acknowledged {
            phase = .reading(window, source)
            // Until ACK 0 proves the client is at that address, only the small OACK goes there.
            pendingOACK = true
            sendControl(.optionAck(acknowledged))
        } else {
            phase = .reading(window, source)
            sendWindow()
        }
    }

    private var pendingOACK = false

    private func beginWrite(fd: CInt, temporary: String, final: String) {
        let (granted, acknowledged) = TFTPOptions.negotiate(request.options, write: true, fileSize: nil,
                                                           maximumBlockSize: settings.maximumBlockSize, maximumWindowSize: settings.maximumWindowSize)
        options = granted
        phase = .writing(TFTPReceiveWindow(blockSize: granted.blockSize, windowSize: granted.windowSize), fd: fd, temporary: temporary, final: final)
        pendingWrites = context?.eventLoop.makeSucceededVoidFuture()
        sendControl(acknowledged.map { .optionAck($0) } ?? .ack(block: 0))
    }

    // MARK: traffic

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard envelope.remoteAddress == client else {
            // RFC 1350 §4: a packet from another TID gets ERROR 5; the transfer goes on.
            send(.error(.unknownTransferID, message: "unknown transfer ID"), to: envelope.remoteAddress)
            return
        }
        guard let packet = try? TFTPPacket.decode(Array(envelope.data.readableBytesView)) else {
            return fail(.illegalOperation, "malformed packet")
        }
        switch (packet, phase) {
        case (.error(let code, let message), _):
            outcome = "client error \(code.rawValue): \(String(message.prefix(80)))"
            finish()
        case (.ack(let block), .reading(var window, let source)):
            if pendingOACK {
                guard block == 0 else { return }
                pendingOACK = false
                clientVerified = true
                retries = 0
                phase = .reading(window, source)
                sendWindow()
                return
            }
            clientVerified = true
            guard window.acknowledge(block) == .advanced else { return }  // duplicate: nothing (no Sorcerer's Apprentice)
            retries = 0
            phase = .reading(window, source)
            if window.finished {
                bytes = window.size
                outcome = "complete"
                finish()
            } else {
                sendWindow()
            }
        case (.data(let block, let payload), .writing(var window, let fd, let temporary, let final)):
            switch window.data(block, count: payload.count) {
            case .reacknowledge:
                sendControl(.ack(block: window.ackNumber))
            case .accept(let index, let ackDue):
                retries = 0
                let offset = Int(index - 1) * window.blockSize
                guard offset + payload.count <= settings.maximumUploadBytes else {
                    return fail(.diskFull, "upload larger than \(settings.maximumUploadBytes) bytes")
                }
                bytes = offset + payload.count
                phase = .writing(window, fd: fd, temporary: temporary, final: final)
                let loop = context.eventLoop
                let this = NIOLoopBound(self, eventLoop: loop)
                let overwrite = settings.overwrite
                let written = pendingWrites?.flatMap {
                    NIOThreadPool.singleton.runIfActive(eventLoop: loop) { () throws -> Void in
                        let count = payload.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
                        guard count == payload.count else { throw TFTPFileError("write failed: \(String(cString: strerror(errno)))") }
                    }
                }
                pendingWrites = written
                let ack = window.ackNumber
                if window.finished {
                    written?.flatMap {
                        NIOThreadPool.singleton.runIfActive(eventLoop: loop) { () throws -> (String?, String) in
                            guard fsync(fd) == 0 else { throw TFTPFileError("fsync failed") }
                            // Uploads are bounded by max_upload_bytes: hashing one is bounded too.
                            let digest = SHA256Digest.file(temporary, limit: Int.max)
                            if overwrite {
                                guard rename(temporary, final) == 0 else { throw TFTPFileError("rename failed") }
                            } else {
                                // link(2) refuses an existing name: an upload never replaces a file.
                                guard link(temporary, final) == 0 else { throw TFTPFileError(errno == EEXIST ? "exists" : "link failed") }
                                unlink(temporary)
                            }
                            // The event names the file by its absolute path (the uploads API checks it).
                            guard let absolute = realpath(final, nil) else { return (digest, final) }
                            defer { free(absolute) }
                            return (digest, String(cString: absolute))
                        }
                    }.whenComplete { result in
                        switch result {
                        case .success(let (digest, stored)):
                            close(fd)
                            this.value.sha256 = digest
                            this.value.stored = stored
                            this.value.phase = .dallying
                            this.value.outcome = "complete"
                            this.value.sendControl(.ack(block: ack))
                            // Stay a moment for a repeated last DATA (our ACK lost), then close.
                            this.value.timer?.cancel()
                            this.value.timer = loop.scheduleTask(in: .milliseconds(Int64(this.value.options.timeout * 2000))) { this.value.finish() }
                        case .failure(let error):
                            this.value.fail((error as? TFTPFileError)?.description == "exists" ? .fileExists : .diskFull, "cannot store the file")
                        }
                    }
                } else if ackDue {
                    written?.whenComplete { result in
                        if case .failure = result { return this.value.fail(.diskFull, "cannot store the file") }
                        this.value.sendControl(.ack(block: ack))
                    }
                }
            }
        case (.data, .dallying):
            if let lastControl { send(lastControl, to: client) }
        case (.ack, _), (.data, _):
            return  // stale: a retransmission from before the phase changed
        default:
            fail(.illegalOperation, "unexpected packet")
        }
    }

    private func sendWindow() {
        guard case .reading(var window, let source) = phase, let context else { return }
        guard let range = window.window() else { return }
        phase = .reading(window, source)
        generation += 1
        let generation = self.generation
        let first = window.range(of: range.lowerBound)
        let last = window.range(of: range.upperBound)
        let span = (offset: first.offset, count: last.offset + last.count - first.offset)
        let blockSize = window.blockSize
        switch source {
        case .memory(let data):
            emit(Array(data[min(span.offset, data.count)..<min(span.offset + span.count, data.count)]), blocks: range, generation: generation, blockSize: blockSize)
        case .file(let fd):
            let this = NIOLoopBound(self, eventLoop: context.eventLoop)
            NIOThreadPool.singleton.runIfActive(eventLoop: context.eventLoop) { () throws -> [UInt8] in
                var data = [UInt8](repeating: 0, count: span.count)
                let count = data.withUnsafeMutableBytes { pread(fd, $0.baseAddress, span.count, off_t(span.offset)) }
                guard count == span.count else { throw TFTPFileError("short read") }
                return data
            }.whenComplete { result in
                switch result {
                case .success(let data): this.value.emit(data, blocks: range, generation: generation, blockSize: blockSize)
                case .failure: this.value.fail(.undefined, "read error (the file changed?)")
                }
            }
        }
    }

    /// Sends the blocks of a window read for `generation` (unless a later window replaced it).
    private func emit(_ data: [UInt8], blocks range: ClosedRange<Int64>, generation: Int, blockSize: Int) {
        guard self.generation == generation, let context else { return }
        var block = range.lowerBound
        var start = 0
        while block <= range.upperBound {
            let count = min(blockSize, max(0, data.count - start))
            var buffer = context.channel.allocator.buffer(capacity: count + 4)
            buffer.writeInteger(UInt16(3))
            buffer.writeInteger(TFTPSendWindow.wire(block))
            buffer.writeBytes(data[start..<(start + count)])
            context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: client, data: buffer)), promise: nil)
            start += count
            block += 1
        }
        context.flush()
        armTimer()
    }

    private func sendControl(_ packet: TFTPPacket) {
        lastControl = packet
        send(packet, to: client)
        armTimer()
    }

    private func send(_ packet: TFTPPacket, to address: SocketAddress) {
        guard let context else { return }
        context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: address, data: context.channel.allocator.buffer(bytes: packet.encode()))), promise: nil)
    }

    private func armTimer() {
        guard let context else { return }
        timer?.cancel()
        if case .dallying = phase { return }
        let this = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: .milliseconds(Int64(options.timeout * 1000))) { this.value.timedOut() }
    }

    private func timedOut() {
        retries += 1
        // A client not yet heard from (the source may be forged) gets one repeat, not `retries`.
        let limit = clientVerified || request.write ? settings.retries : min(settings.retries, 1)
        guard retries <= limit else {
            outcome = "timed out"
            return finish()
        }
        if case .reading = phase, !pendingOACK {
            sendWindow()
        } else if let lastControl {
            sendControl(lastControl)
        }
    }

    private func fail(_ code: TFTPErrorCode, _ message: String) {
        outcome = "error \(code.rawValue): \(message)"
        send(.error(code, message: message), to: client)
        finish()
    }

    private func finish() {
        timer?.cancel()
        timer = nil
        guard let context else { return }
        self.context = nil
        context.close(promise: nil)
    }
}
