import InetLine
/// A message as POP3 lists it.
public struct POP3Listing: Sendable, Equatable {
    public var number: Int
    public var size: Int
    public var uniqueID: String?
}

/// Reads a maildrop over POP3 (RFC 1939): USER/PASS, then LIST, UIDL, TOP, RETR and DELE; QUIT
/// ends the session and makes deletions take effect.
public final class POP3Client {
    private let connection: LineConnection

    init(connection: LineConnection) {
        self.connection = connection
    }

    /// Connects, logs in, runs `body`, and sends QUIT when `body` returns (deletions then apply).
    public static func session<Result: Sendable>(
        host: String, port: Int, user: String, password: String, timeout: Double = 30,
        trace: (@Sendable (String) -> Void)? = nil, _ body: (POP3Client) async throws -> Result
    ) async throws -> Result {
        try await LineConnection.withConnection(host: host, port: port, timeout: timeout, trace: trace) { connection in
            let client = POP3Client(connection: connection)
            _ = try await client.status("greeting")
            try await connection.send("USER \(user)")
            _ = try await client.status("USER")
            try await connection.send("PASS \(password)", traced: "PASS ********")
            _ = try await client.status("PASS")
            let result = try await body(client)
            try await connection.send("QUIT")
            _ = try await client.status("QUIT")
            return result
        }
    }

    /// The `+OK` line's text; throws with the `-ERR` text.
    @discardableResult
    func status(_ step: String) async throws -> String {
        let line = try await connection.readLine()
        if line.hasPrefix("+OK") { return String(line.dropFirst(3).drop { $0 == " " }) }
        throw MailClientError("\(step) refused: \(line)")
    }

    /// The lines of a multi-line answer, dot-unstuffed, up to the `.` line.
    private func multiline() async throws -> [[UInt8]] {
        var lines: [[UInt8]] = []
        while true {
            var line = try await connection.readRawLine()
            if line == [UInt8(ascii: ".")] { return lines }
            if line.first == UInt8(ascii: ".") { line.removeFirst() }
            lines.append(line)
        }
    }

    public func list() async throws -> [POP3Listing] {
        try await connection.send("LIST")
        try await status("LIST")
        var listings: [POP3Listing] = []
        for line in try await multiline() {
            let words = String(decoding: line, as: UTF8.self).split(separator: " ")
            guard words.count >= 2, let number = Int(words[0]), let size = Int(words[1]) else { continue }
            listings.append(POP3Listing(number: number, size: size))
        }
        try await connection.send("UIDL")
        if (try? await status("UIDL")) != nil {
            var ids: [Int: String] = [:]
            for line in try await multiline() {
                let words = String(decoding: line, as: UTF8.self).split(separator: " ")
                if words.count >= 2, let number = Int(words[0]) { ids[number] = String(words[1]) }
            }
            for index in listings.indices { listings[index].uniqueID = ids[listings[index].number] }
        }
        return listings
    }

    /// The whole message, lines joined with CRLF.
    public func retrieve(_ number: Int) async throws -> [UInt8] {
        try await connection.send("RETR \(number)")
        try await status("RETR \(number)")
        return Self.join(try await multiline())
    }

    /// The headers and the first `lines` lines of the body.
    public func top(_ number: Int, lines: Int) async throws -> [UInt8] {
        try await connection.send("TOP \(number) \(lines)")
        try await status("TOP \(number)")
        return Self.join(try await multiline())
    }

    public func delete(_ number: Int) async throws {
        try await connection.send("DELE \(number)")
        try await status("DELE \(number)")
    }

    private static func join(_ lines: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = []
        for line in lines {
            out += line
            out += [0x0D, 0x0A]
        }
        return out
    }

    /// The value of a header (first occurrence, unfolded) in a message's head.
    public static func header(_ name: String, in message: [UInt8]) -> String? {
        let text = String(decoding: message, as: UTF8.self)
        var value: String?
        for line in text.split(separator: "\r\n", omittingEmptySubsequences: false) {
            if line.isEmpty { break }
            if value != nil {
                if line.first == " " || line.first == "\t" {
                    value! += " " + line.drop { $0 == " " || $0 == "\t" }
                    continue
                }
                return value
            }
            if let colon = line.firstIndex(of: ":"), line[..<colon].lowercased() == name.lowercased() {
                value = String(line[line.index(after: colon)...].drop { $0 == " " })
            }
        }
        return value
    }
}
