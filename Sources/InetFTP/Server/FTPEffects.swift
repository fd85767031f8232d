import InetTLS
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import InetCore
import InetLine
import NIOCore
import NIOPosix
import NIOSSL

/// Runs an FTP session's effects for one control connection, on its event loop: file requests
/// on the thread pool, the passive listener, and each transfer's data connection and file. It
/// holds those resources, so closing the control connection closes them all.
final class FTPEffects: LineEffectRunner {
    private let settings: FTPSettings
    private let tls: NIOSSLContext?
    private var passive: PassiveListener?
    private var transfer: Prepared?
    private var dataChannel: (any Channel)?
    /// ABOR or the end of the connection came while a data connection was being made.
    private var cancelled = false

    init(settings: FTPSettings, tls: NIOSSLContext?) {
        self.settings = settings
        self.tls = tls
    }

    /// A transfer whose file is open (or listing read), waiting for its data connection.
    private struct Prepared: Sendable {
        var request: FTPTransfer
        var ready: FTPTransferReady
        var action: Action

        enum Action: Sendable {
            case listing(ByteBuffer)
            case send(real: String, offset: Int, ascii: Bool, chunked: Bool)
            /// An upload: written into `fd`; a plain STOR goes to `temporary` and is renamed to
            /// `target` once complete.
            case receive(fd: Int32, temporary: String?, target: String)
        }
    }

    func perform(_ effect: FTPEffect, on loop: any EventLoop) -> EventLoopFuture<FTPOutcome> {
        switch effect {
        case .delay(let seconds):
            return loop.scheduleTask(in: .seconds(clamping: seconds)) { FTPOutcome.delayed }.futureResult
        case .files(let request):
            return NIOThreadPool.singleton.runIfActive(eventLoop: loop) { FTPFiles.perform(request) }
                .map { FTPOutcome.files($0) }.recover { _ in .files(.failed(.operationFailed("?"))) }
        case .openPassive(let host, let client, let protected):
            passive?.close()
            passive = nil
            return PassiveListener.open(on: loop, host: host, ports: settings.passivePorts, client: client,
                                        tls: protected ? tls : nil, stallTimeout: settings.dataTimeout)
                .assumeIsolated().map { listener -> FTPOutcome in
                    self.passive = listener
                    return .passiveOpened(port: listener.port)
                }.recover { _ in .passiveFailed }.nonisolated()
        case .closePassive:
            passive?.close()
            passive = nil
            return loop.makeSucceededFuture(.passiveClosed)
        case .startTransfer(let request):
            cancelled = false
            return NIOThreadPool.singleton.runIfActive(eventLoop: loop) { try Self.prepare(request) }
                .assumeIsolated().flatMap { prepared -> EventLoopFuture<FTPOutcome> in
                    self.transfer = prepared
                    return self.connect(prepared, on: loop).assumeIsolated().map { channel -> FTPOutcome in
                        guard !self.cancelled else {
                            channel.close(promise: nil)
                            self.finish(succeeded: false)
                            return .noDataConnection
                        }
                        self.dataChannel = channel
                        return .dataReady(prepared.ready)
                    }.recover { _ in
                        self.finish(succeeded: false)
                        return .noDataConnection
                    }.nonisolated()
                }.flatMapErrorThrowing { error in
                    // The file could not be used: the data channel set up for it is dropped.
                    self.passive?.close()
                    self.passive = nil
                    if let failure = error as? FTPFileFailure { return .transferRefused(failure) }
                    if let failure = error as? FTPPathError { return .transferRefused(.path(failure)) }
                    return .transferRefused(.operationFailed("?"))
                }.nonisolated()
        case .moveData:
            guard let prepared = transfer, let channel = dataChannel else {
                return loop.makeSucceededFuture(.transferFailed(FTPTransferError(reply: "426 Connection closed; transfer aborted.")))
            }
            return move(prepared, on: channel).assumeIsolated().map { moved -> FTPOutcome in
                self.finish(succeeded: true)
                return .transferred(bytes: moved.bytes, sha256: moved.sha256)
            }.recover { error in
                self.finish(succeeded: false)
                return .transferFailed((error as? FTPTransferError) ?? FTPTransferError(reply: "426 Connection closed; transfer aborted."))
            }.nonisolated()
        case .abortTransfer:
            cancelled = true
            dataChannel?.close(promise: nil)
            passive?.close()
            passive = nil
            return loop.makeSucceededFuture(.aborted)
        }
    }

    func closed() {
        cancelled = true
        passive?.close()
        passive = nil
        dataChannel?.close(promise: nil)
        if transfer != nil, dataChannel == nil { finish(succeeded: false) }
    }

    /// The data connection: the passive listener's first client, or a connection to the PORT
    /// address; fails after data_timeout.
    private func connect(_ prepared: Prepared, on loop: any EventLoop) -> EventLoopFuture<any Channel> {
        switch prepared.request.data {
        case .passive:
            guard let passive else { return loop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
            self.passive = nil
            let timeout = loop.scheduleTask(in: .seconds(clamping: settings.dataTimeout)) { passive.close() }
            return passive.accepted.futureResult.always { _ in
                timeout.cancel()
                passive.channel.close(promise: nil)
            }
        case .active(let address):
            return FTPData.connect(on: loop, to: address, timeout: settings.dataTimeout, tls: prepared.request.protected ? tls : nil)
        }
    }

    /// Downloads up to this size are hashed (after they are sent, off the event loop) for their
    /// event; uploads always are, as they are written.
    static let downloadDigestLimit = 16 << 20

    private func move(_ prepared: Prepared, on channel: any Channel) -> EventLoopFuture<(bytes: Int, sha256: String?)> {
        switch prepared.action {
        case .listing(let bytes):
            return FTPData.send(bytes, on: channel).map { ($0, nil) }
        case .send(let real, let offset, let ascii, let chunked):
            let sent = chunked ? FTPData.sendChunks(real, offset: offset, ascii: ascii, on: channel) : FTPData.sendFile(real, offset: offset, on: channel)
            return sent.flatMap { count in
                NIOThreadPool.singleton.runIfActive(eventLoop: channel.eventLoop) { () -> (bytes: Int, sha256: String?) in
                    (count, offset == 0 ? SHA256Digest.file(real, limit: Self.downloadDigestLimit) : nil)
                }.flatMapError { _ in channel.eventLoop.makeSucceededFuture((count, nil)) }
            }
        case .receive(let fd, let temporary, let target):
            return FTPData.receive(into: fd, ascii: prepared.request.ascii, on: channel).flatMap { received in
                // Durable before 226: the data, then the name; fsync waits on the disk, so not here.
                NIOThreadPool.singleton.runIfActive(eventLoop: channel.eventLoop) { () throws -> (bytes: Int, sha256: String?) in
                    guard fsync(fd) == 0 else { throw FTPTransferError(reply: "451 Cannot write the file.") }
                    if let temporary {
                        guard rename(temporary, target) == 0 else { throw FTPTransferError(reply: "553 Could not store the file.") }
                    }
                    return (received.bytes, received.sha256)
                }
            }
        }
    }

    /// Lets go of the transfer: its file closed, an incomplete upload's temporary file removed.
    private func finish(succeeded: Bool) {
        dataChannel?.close(promise: nil)
        dataChannel = nil
        guard let prepared = transfer else { return }
        transfer = nil
        if case .receive(let fd, let temporary, _) = prepared.action {
            close(fd)
            if !succeeded, let temporary { unlink(temporary) }
        }
    }

    /// Resolves and opens what a transfer needs, off the event loop.
    private static func prepare(_ request: FTPTransfer) throws -> Prepared {
        let files = request.files
        switch request.kind {
        case .listing(let verb, let path, let flags):
            let (_, real) = try files.existing(path)
            if verb == "MLSD", let entry = FTPEntry.info(real, name: ""), !entry.isDirectory { throw FTPFileFailure.needsDirectory("MLSD") }
            let text = FTPFiles.listingText(verb, real: real, writable: request.writable, arguments: flags)
            return Prepared(request: request, ready: FTPTransferReady(virtual: path, size: text.utf8.count), action: .listing(ByteBuffer(string: text)))
        case .retrieve(let path, let offset):
            let (virtual, real) = try files.existing(path)
            guard let entry = FTPEntry.info(real, name: ""), !entry.isDirectory else { throw FTPFileFailure.isADirectory("RETR") }
            guard access(real, R_OK) == 0 else { throw FTPFileFailure.unreadable }
            return Prepared(request: request, ready: FTPTransferReady(virtual: virtual, size: entry.size),
                            action: .send(real: real, offset: offset, ascii: request.ascii, chunked: request.ascii || request.protected))
        case .store(let verb, let path, let offset):
            var name = path
            if verb == "STOU" { name = (path.isEmpty ? "upload" : path) + ".\(UInt32.random(in: 0...UInt32.max))" }
            let target = try files.creatable(name)
            if let entry = FTPEntry.info(target.real, name: ""), entry.isDirectory { throw FTPFileFailure.isADirectory(verb) }
            // A plain STOR goes to a hidden temporary name in the same folder and is renamed into
            // place only when complete; APPE and a restarted STOR write into the file itself.
            let inPlace = verb == "APPE" || offset > 0
            guard let slash = target.real.lastIndex(of: "/") else { throw FTPFileFailure.cannotCreate }
            let temporary = String(target.real[...slash]) + ".inetkit-upload-\(UInt32.random(in: 0...UInt32.max))-"
                + target.real[target.real.index(after: slash)...]
            let path = inPlace ? target.real : temporary
            let flags = inPlace ? (verb == "APPE" ? O_WRONLY | O_CREAT | O_APPEND : O_WRONLY | O_CREAT) : O_WRONLY | O_CREAT | O_EXCL
            let fd = open(path, flags | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw FTPFileFailure.cannotCreate }
            if inPlace, verb != "APPE", offset > 0 {
                // A restart resumes an upload: it cannot start past what is there (that would
                // make a sparse file of any size), as ProFTPD and Pure-FTPd refuse too.
                var info = stat()
                guard fstat(fd, &info) == 0, offset <= Int(info.st_size), lseek(fd, off_t(offset), SEEK_SET) >= 0, ftruncate(fd, off_t(offset)) == 0 else {
                    close(fd)
                    throw FTPFileFailure.restartPastEnd(offset)
                }
            }
            return Prepared(request: request, ready: FTPTransferReady(virtual: target.virtual, size: 0, real: target.real),
                            action: .receive(fd: fd, temporary: inPlace ? nil : temporary, target: target.real))
        }
    }
}
