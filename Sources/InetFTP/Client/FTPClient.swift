#if canImport(Glibc)
import InetCore
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import InetLine
import NIOCore
import NIOPosix

/// `ftp://[user[:password]@]host[:port]/path` (user and password percent-decoded).
public struct FTPURL: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String
    public var path: String

    public init?(_ text: String, defaultPort: Int) {
        guard text.lowercased().hasPrefix("ftp://") else { return nil }
        var rest = Substring(text.dropFirst(6))
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        var authority = rest[..<slash]
        path = slash < rest.endIndex ? Self.decode(rest[slash...]) : "/"
        rest = authority
        user = "anonymous"
        password = "inetkit@"
        if let at = authority.lastIndex(of: "@") {
            let credentials = authority[..<at]
            authority = authority[authority.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                user = Self.decode(credentials[..<colon])
                password = Self.decode(credentials[credentials.index(after: colon)...])
            } else {
                user = Self.decode(credentials)
            }
        }
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            port = after.isEmpty ? defaultPort : Int(after.dropFirst()) ?? -1
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            port = Int(authority[authority.index(after: colon)...]) ?? -1
        } else {
            host = String(authority)
            port = defaultPort
        }
        guard !host.isEmpty, (1...65_535).contains(port) else { return nil }
    }

    static func decode(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var index = text.utf8.startIndex
        let utf8 = text.utf8
        while index < utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "%"), let high = utf8.index(index, offsetBy: 1, limitedBy: utf8.endIndex), high < utf8.endIndex,
               let low = utf8.index(index, offsetBy: 2, limitedBy: utf8.endIndex), low < utf8.endIndex,
               let value = UInt8(String(decoding: [utf8[high], utf8[low]], as: UTF8.self), radix: 16) {
                bytes.append(value)
                index = utf8.index(after: low)
            } else {
                bytes.append(byte)
                index = utf8.index(after: index)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// An FTP reply: code and text lines.
public struct FTPReply: Sendable, CustomStringConvertible {
    public var code: Int
    public var lines: [String]
    public var description: String { "\(code) " + lines.joined(separator: " / ") }
}

/// A client session: login, then listings, downloads and uploads over passive (EPSV, then
/// PASV) or active (EPRT/PORT) data connections.
public final class FTPClientSession {
    private let connection: LineConnection
    private let active: Bool
    private let host: String
    private let timeout: Double

    init(connection: LineConnection, active: Bool, host: String, timeout: Double) {
        self.connection = connection
        self.active = active
        self.host = host
        self.timeout = timeout
    }

    /// Connects, logs in, runs `body`, and says QUIT.
    public static func session<T: Sendable>(_ url: FTPURL, active: Bool = false, timeout: Double = 30,
                                            trace: (@Sendable (String) -> Void)? = nil, _ body: (FTPClientSession) async throws -> T) async throws -> T {
        try await LineConnection.withConnection(host: url.host, port: url.port, timeout: timeout, trace: trace) { connection in
            let session = FTPClientSession(connection: connection, active: active, host: url.host, timeout: timeout)
            try session.expect(2, try await session.reply(), "greeting")
            try await connection.send("USER \(url.user)")
            var answer = try await session.reply()
            if answer.code == 331 {
                try await connection.send("PASS \(url.password)", traced: "PASS ********")
                answer = try await session.reply()
            }
            try session.expect(2, answer, "login")
            try await session.command("TYPE I", expect: 2)
            let result = try await body(session)
            try? await connection.send("QUIT")
            _ = try? await session.reply()
            return result
        }
    }

    func reply() async throws -> FTPReply {
        var lines: [String] = []
        let first = try await connection.readLine()
        guard first.utf8.count >= 3, let code = Int(first.prefix(3)) else { throw LineClientError("not an FTP reply: \(first)") }
        lines.append(String(first.dropFirst(4)))
        if first.dropFirst(3).first == "-" {
            while true {
                let line = try await connection.readLine()
                if line.hasPrefix("\(code) ") || line == "\(code)" { lines.append(String(line.dropFirst(4))); break }
                lines.append(line)
                guard lines.count < 100_000 else { throw LineClientError("the server's reply does not end") }
            }
        }
        return FTPReply(code: code, lines: lines)
    }

    func expect(_ kind: Int, _ reply: FTPReply, _ step: String) throws {
        guard reply.code / 100 == kind else { throw LineClientError("\(step) refused: \(reply)") }
    }

    @discardableResult
    public func command(_ text: String, expect kind: Int) async throws -> FTPReply {
        try await connection.send(text)
        let answer = try await reply()
        try expect(kind, answer, text.split(separator: " ").first.map(String.init) ?? text)
        return answer
    }

    public func size(_ path: String) async -> Int? {
        guard let answer = try? await command("SIZE \(path)", expect: 2) else { return nil }
        return Int(answer.lines.first ?? "")
    }

    /// Runs `command` with a data connection and hands its bytes to `sink` (downloads, listings).
    public func download(_ command: String, sink: (ByteBuffer) throws -> Void) async throws {
        let channel = try await begin(command)
        try await channel.executeThenClose { inbound, _ in
            for try await chunk in inbound { try sink(chunk) }
        }
        try expect(2, try await reply(), "transfer")
    }

    /// Runs `command` (STOR/APPE) with a data connection and sends `source`'s chunks.
    public func upload(_ command: String, source: () throws -> ByteBuffer?) async throws {
        let channel = try await begin(command)
        try await channel.executeThenClose { _, outbound in
            while let chunk = try source() { try await outbound.write(chunk) }
            outbound.finish()
        }
        try expect(2, try await reply(), "transfer")
    }

    /// Prepares a data connection, sends the transfer command and waits for its 1xx reply.
    private func begin(_ command: String) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        let data = try await openData()
        try await connection.send(command)
        let opening = try await reply()
        guard opening.code / 100 == 1 else {
            await data.cancel()
            throw LineClientError("\(command.split(separator: " ").first ?? "") refused: \(opening)")
        }
        return try await data.channel()
    }

    /// A data connection being set up: passive (already connected) or active (accepted later).
    struct DataSetup {
        var connected: NIOAsyncChannel<ByteBuffer, ByteBuffer>?
        var listener: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>?

        func channel() async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
            if let connected { return connected }
            guard let listener else { throw LineClientError("no data connection") }
            return try await listener.executeThenClose { inbound in
                for try await child in inbound { return child }
                throw LineClientError("the server never connected for the data")
            }
        }

        func cancel() async {
            if let connected { try? await connected.channel.close() }
            if let listener { try? await listener.channel.close() }
        }
    }

    private func openData() async throws -> DataSetup {
        let group = MultiThreadedEventLoopGroup.singleton
        if active {
            // Listen where the control connection comes from: the address the server can reach.
            guard let controlAddress = connection.localAddress?.ipAddress else { throw LineClientError("no local address for active mode") }
            let local = try await ServerBootstrap(group: group).bind(host: controlAddress, port: 0) { child in
                child.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: child) }
            }
            let address = local.channel.localAddress!
            let port = address.port!
            if let ip = address.ipAddress, !ip.contains(":") {
                let parts = ip.split(separator: ".").joined(separator: ",")
                try await command("PORT \(parts),\(port >> 8),\(port & 0xFF)", expect: 2)
            } else {
                try await command("EPRT |2|\(address.ipAddress ?? "::1")|\(port)|", expect: 2)
            }
            return DataSetup(connected: nil, listener: local)
        }
        var port: Int?
        var dataHost = host
        try await connection.send("EPSV")
        let extended = try await reply()
        if extended.code == 229, let text = extended.lines.first, let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")") {
            let inside = text[text.index(after: open)..<close]
            port = Int(inside.split(separator: inside.first!, omittingEmptySubsequences: true).first ?? "")
        } else {
            let passive = try await command("PASV", expect: 2)
            let text = passive.lines.first ?? ""
            let numbers = text.drop { !$0.isNumber }.split { !$0.isNumber }.compactMap { Int($0) }
            guard numbers.count >= 6 else { throw LineClientError("cannot read the PASV reply: \(text)") }
            dataHost = numbers[0..<4].map(String.init).joined(separator: ".")
            port = numbers[4] << 8 | numbers[5]
        }
        guard let port else { throw LineClientError("cannot read the passive port: \(extended)") }
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(.seconds(clamping: timeout))
            .connect(host: dataHost, port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        return DataSetup(connected: channel, listener: nil)
    }
}
