import InetCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

extension ServiceDescriptor {
    /// Uploads (with `write: true`) land in `upload_dir`.
    fileprivate func withUploadFolders() -> ServiceDescriptor {
        var descriptor = self
        descriptor.uploadFolders = { options throws(ConfigError) in
            let settings = try TFTPSettings(options: options)
            return settings.write ? [settings.uploadDirectory] : []
        }
        return descriptor
    }
}

/// TFTP (RFC 1350) on UDP 69 with options (RFC 2347: blksize 2348, timeout and tsize 2349,
/// windowsize 7440): RRQ reads from `root` (the public folder), WRQ (off unless `write: true`)
/// lands in `upload_dir` through a temporary file renamed when complete. Each transfer runs on a
/// socket of its own (its TID); the request socket only starts them.
public struct TFTPService: InetService {
    public static let descriptor = ServiceDescriptor(
        name: "tftp", wellKnownPort: 69, transports: [.udp], optionKeys: TFTPSettings.keys,
        summary: "serves the public folder by TFTP (RFC 1350, options 2347-2349, windowsize 7440)",
        udpKeepsSourceOrder: true
    ) { options throws(ConfigError) in try TFTPService(settings: TFTPSettings(options: options)) }.withUploadFolders()

    public let settings: TFTPSettings
    let transfers: TransferCount
    let logger = Logger(label: "inetkit.tftp")

    public init(settings: TFTPSettings) {
        self.settings = settings
        transfers = TransferCount(total: settings.maximumTransfers, perSource: settings.maximumTransfersPerSource)
    }

    public func prepare() throws {
        for folder in [settings.root] + (settings.write ? [settings.uploadDirectory] : []) {
            try FileSystemFolders.create(folder)
        }
    }

    /// A datagram to port 69 with no channel to start a transfer on (tests): only errors.
    public func reply(toDatagram payload: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard case .failure(let error) = Self.request(payload) else { return nil }
        return error.map { allocator.buffer(bytes: $0.encode()) }
    }

    public func reply(toDatagram payload: ByteBuffer, from source: SocketAddress, channel: any Channel) -> ByteBuffer? {
        switch Self.request(payload) {
        case .failure(let error):
            return error.map { channel.allocator.buffer(bytes: $0.encode()) }
        case .success(let request):
            guard transfers.open(source) else {
                return channel.allocator.buffer(bytes: TFTPPacket.error(.undefined, message: "too many transfers; try again later").encode())
            }
            TFTPTransfer.start(request, client: source, listener: channel, settings: settings, transfers: transfers, logger: logger)
            return nil
        }
    }

    /// A request to start a transfer, or the error packet to answer instead (nil: no answer).
    static func request(_ payload: ByteBuffer) -> Result<TFTPRequest, ErrorAnswer> {
        let packet: TFTPPacket
        do {
            packet = try TFTPPacket.decode(Array(payload.readableBytesView))
        } catch {
            return .failure(ErrorAnswer(.error(.illegalOperation, message: "malformed request")))
        }
        switch packet {
        case .readRequest(let file, let mode, let options), .writeRequest(let file, let mode, let options):
            guard mode == "octet" || mode == "netascii" else { return .failure(ErrorAnswer(.error(.illegalOperation, message: "mode \(mode.prefix(16)) is not supported"))) }
            if case .writeRequest = packet { return .success(TFTPRequest(write: true, file: file, netascii: mode == "netascii", options: options)) }
            return .success(TFTPRequest(write: false, file: file, netascii: mode == "netascii", options: options))
        case .error:
            return .failure(ErrorAnswer(nil))  // never answer an error (no loops)
        default:
            return .failure(ErrorAnswer(.error(.illegalOperation, message: "only RRQ and WRQ start a transfer")))
        }
    }

    struct ErrorAnswer: Error {
        var packet: TFTPPacket?
        init(_ packet: TFTPPacket?) { self.packet = packet }
        func map<T>(_ body: (TFTPPacket) -> T) -> T? { packet.map(body) }
    }
}

struct TFTPRequest: Sendable {
    var write: Bool
    var file: [UInt8]
    var netascii: Bool
    var options: [TFTPOption]
}

/// Transfers in progress, in all and per source address.
final class TransferCount: Sendable {
    private let state = NIOLockedValueBox<(total: Int, bySource: [String: Int])>((0, [:]))
    let total: Int
    let perSource: Int

    init(total: Int, perSource: Int) {
        self.total = total
        self.perSource = perSource
    }

    func open(_ source: SocketAddress) -> Bool {
        let key = source.ipAddress ?? "?"
        return state.withLockedValue { state in
            guard state.total < total, state.bySource[key, default: 0] < perSource else { return false }
            state.total += 1
            state.bySource[key, default: 0] += 1
            return true
        }
    }

    func close(_ source: SocketAddress) {
        let key = source.ipAddress ?? "?"
        state.withLockedValue { state in
            state.total -= 1
            let left = state.bySource[key, default: 1] - 1
            state.bySource[key] = left > 0 ? left : nil
        }
    }

    var active: Int { state.withLockedValue { $0.total } }
}

enum FileSystemFolders {
    static func create(_ path: String) throws {
        var built = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            built += "/" + part
            if mkdir(built, 0o755) != 0 && errno != EEXIST {
                throw TFTPFileError("cannot create \(built): \(String(cString: strerror(errno)))")
            }
        }
    }
}

struct TFTPFileError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

#if canImport(Glibc)
import Glibc
#endif
