#if canImport(Glibc)
import Glibc
#endif
import NIOCore

public struct TFTPClientError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A TFTP client (one transfer, one UDP socket, blocking): options by OACK when the server
/// grants them, the server's TID learned from its first answer, foreign TIDs told ERROR 5.
public struct TFTPClient {
    public struct Options: Sendable {
        public var blockSize: Int?
        public var windowSize: Int?
        public var timeout = 1.0
        public var retries = 5
        public var netascii = false

        public init() {}
    }

    public let host: String
    public let port: Int
    public let options: Options

    public init(host: String, port: Int, options: Options = Options()) {
        self.host = host
        self.port = port
        self.options = options
    }

    /// Downloads `file` into `fd` (from offset 0); `progress(bytes, total)` as it goes. Returns the size.
    public func get(_ file: String, into fd: CInt, progress: (Int, Int?) -> Void = { _, _ in }) throws -> Int {
        let socket = try Socket(host: host, port: port, timeout: options.timeout)
        defer { socket.close() }
        var requested: [TFTPOption] = [TFTPOption(name: "tsize", value: "0")]
        if let blockSize = options.blockSize { requested.append(TFTPOption(name: "blksize", value: "\(blockSize)")) }
        if let windowSize = options.windowSize { requested.append(TFTPOption(name: "windowsize", value: "\(windowSize)")) }
        var last = TFTPPacket.readRequest(file: Array(file.utf8), mode: options.netascii ? "netascii" : "octet", options: requested).encode()
        try socket.sendToServer(last)
        var window = TFTPReceiveWindow(blockSize: 512, windowSize: 1)
        var total: Int?
        var received = 0
        var retries = 0
        var started = false
        var collected: [UInt8] = []
        while true {
            guard let (packet, _) = try socket.receive() else {
                retries += 1
                guard retries <= options.retries else { throw TFTPClientError("no answer from \(host):\(port)") }
                try socket.sendToServer(last)
                continue
            }
            switch packet {
            case .optionAck(let granted) where !started:
                started = true
                for option in granted {
                    switch option.name {
                    case "blksize": window = TFTPReceiveWindow(blockSize: Int(option.value) ?? 512, windowSize: window.windowSize)
                    case "windowsize": window = TFTPReceiveWindow(blockSize: window.blockSize, windowSize: Int(option.value) ?? 1)
                    case "tsize": total = Int(option.value)
                    default: break
                    }
                }
                last = TFTPPacket.ack(block: 0).encode()
                try socket.sendToServer(last)
            case .data(let block, let payload):
                started = true
                retries = 0
                switch window.data(block, count: payload.count) {
                case .reacknowledge:
                    last = TFTPPacket.ack(block: window.ackNumber).encode()
                    try socket.sendToServer(last)
                case .accept(let index, let ack):
                    let offset = Int(index - 1) * window.blockSize
                    if options.netascii {
                        collected += payload
                    } else {
                        let written = payload.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
                        guard written == payload.count else { throw TFTPClientError("cannot write: \(String(cString: strerror(errno)))") }
                    }
                    received = offset + payload.count
                    progress(received, total)
                    if ack {
                        last = TFTPPacket.ack(block: window.ackNumber).encode()
                        try socket.sendToServer(last)
                    }
                    if window.finished {
                        if options.netascii {
                            let local = NetASCII.decode(collected)
                            let written = local.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
                            guard written == local.count else { throw TFTPClientError("cannot write") }
                            return local.count
                        }
                        return received
                    }
                }
            case .error(let code, let message):
                throw TFTPClientError("server error \(code.rawValue): \(message)")
            default:
                continue
            }
        }
    }

    /// Uploads `size` bytes of `fd` as `file`.
    public func put(_ file: String, from fd: CInt, size: Int, progress: (Int, Int?) -> Void = { _, _ in }) throws {
        let socket = try Socket(host: host, port: port, timeout: options.timeout)
        defer { socket.close() }
        var requested: [TFTPOption] = [TFTPOption(name: "tsize", value: "\(size)")]
        if let blockSize = options.blockSize { requested.append(TFTPOption(name: "blksize", value: "\(blockSize)")) }
        if let windowSize = options.windowSize { requested.append(TFTPOption(name: "windowsize", value: "\(windowSize)")) }
        let request = TFTPPacket.writeRequest(file: Array(file.utf8), mode: "octet", options: requested).encode()
        try socket.sendToServer(request)
        var blockSize = 512, windowSize = 1
        var retries = 0
        // The request's answer: OACK or ACK 0.
        while true {
            guard let (packet, _) = try socket.receive() else {
                retries += 1
                guard retries <= options.retries else { throw TFTPClientError("no answer from \(host):\(port)") }
                try socket.sendToServer(request)
                continue
            }
            if case .error(let code, let message) = packet { throw TFTPClientError("server error \(code.rawValue): \(message)") }
            if case .optionAck(let granted) = packet {
                for option in granted {
                    if option.name == "blksize" { blockSize = Int(option.value) ?? 512 }
                    if option.name == "windowsize" { windowSize = Int(option.value) ?? 1 }
                }
                break
            }
            if case .ack(0) = packet { break }
        }
        var window = TFTPSendWindow(size: size, blockSize: blockSize, windowSize: windowSize)
        retries = 0
        func sendWindow() throws {
            guard let range = window.window() else { return }
            for block in range {
                let (offset, count) = window.range(of: block)
                var payload = [UInt8](repeating: 0, count: count)
                let read = payload.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
                guard read == count else { throw TFTPClientError("cannot read the file") }
                try socket.sendToServer(TFTPPacket.data(block: TFTPSendWindow.wire(block), payload: payload).encode())
            }
        }
        try sendWindow()
        while !window.finished {
            guard let (packet, _) = try socket.receive() else {
                retries += 1
                guard retries <= options.retries else { throw TFTPClientError("the server stopped answering") }
                try sendWindow()
                continue
            }
            switch packet {
            case .ack(let block):
                if window.acknowledge(block) == .advanced {
                    retries = 0
                    progress(min(size, Int(window.acknowledged) * blockSize), size)
                    try sendWindow()
                }
            case .error(let code, let message):
                throw TFTPClientError("server error \(code.rawValue): \(message)")
            default:
                continue
            }
        }
    }

    /// A UDP socket that learns the server's TID from its first answer.
    final class Socket {
        let fd: CInt
        let request: SocketAddress
        var server: [UInt8]?
        let timeout: Double

        init(host: String, port: Int, timeout: Double) throws {
            request = try SocketAddress.makeAddressResolvingHost(host, port: port)
            fd = socket(request.protocol.rawValue, Int32(SOCK_DGRAM.rawValue), 0)
            guard fd >= 0 else { throw TFTPClientError("cannot open a UDP socket") }
            self.timeout = timeout
            var size: CInt = 4 << 20
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<CInt>.size))
        }

        func close() { Glibc.close(fd) }

        func sendToServer(_ bytes: [UInt8]) throws {
            let sent: Int
            if let server {
                sent = server.withUnsafeBytes { address in
                    bytes.withUnsafeBytes { Glibc.sendto(fd, $0.baseAddress, $0.count, 0, address.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(address.count)) }
                }
            } else {
                sent = request.withSockAddr { address, length in
                    bytes.withUnsafeBytes { Glibc.sendto(fd, $0.baseAddress, $0.count, 0, address, socklen_t(length)) }
                }
            }
            guard sent == bytes.count else { throw TFTPClientError("cannot send: \(String(cString: strerror(errno)))") }
        }

        /// The next packet from the server (nil on timeout); packets from other ports get ERROR 5.
        func receive() throws -> (TFTPPacket, Int)? {
            var buffer = [UInt8](repeating: 0, count: 65_536)
            let deadline = Double(DispatchlessClock.now()) + timeout
            while true {
                let left = deadline - Double(DispatchlessClock.now())
                guard left > 0 else { return nil }
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let ready = poll(&poller, 1, CInt(max(1, left * 1000)))
                if ready < 0 && errno == EINTR { continue }
                guard ready > 0 else { return nil }
                var storage = sockaddr_storage()
                var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
                let count = buffer.withUnsafeMutableBytes { raw in
                    withUnsafeMutablePointer(to: &storage) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, raw.baseAddress, raw.count, 0, $0, &length) }
                    }
                }
                guard count >= 0 else { continue }
                let from = withUnsafeBytes(of: &storage) { Array($0.prefix(Int(length))) }
                if let server, server != from {
                    let error = TFTPPacket.error(.unknownTransferID, message: "unknown transfer ID").encode()
                    _ = from.withUnsafeBytes { address in
                        error.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, address.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(address.count)) }
                    }
                    continue
                }
                guard let packet = try? TFTPPacket.decode(Array(buffer[0..<count])) else { continue }
                if server == nil { server = from }
                return (packet, count)
            }
        }
    }
}

/// Monotonic seconds without Foundation or Dispatch.
enum DispatchlessClock {
    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
